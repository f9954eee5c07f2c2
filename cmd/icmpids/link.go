package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// linkGoneFor is how long the capture interface may be gone (deleted, not
// merely down) before `run` gives up and exits with status 1.
const linkGoneFor = 5 * time.Minute

// linkWatch follows the capture interface's state so that the sensor rides
// out a link flap or a NIC reset: it logs the link going down and coming up
// once each, counts the downs, and tells the readers whether a read error
// is worth retrying. Safe for concurrent use.
type linkWatch struct {
	iface string
	log   *logrus.Logger

	mu        sync.Mutex
	up        bool
	downs     uint64
	downSince time.Time // zero while up
	downSeen  time.Time // first check that saw it down (zero: seen up)
	goneSince time.Time // zero while the interface exists
}

func newLinkWatch(iface string, log *logrus.Logger) *linkWatch {
	return &linkWatch{iface: iface, log: log, up: true}
}

// linkDebounce is how long a link must be seen down before it is said to
// be: a carrier coming up a moment after the link is set up is no flap.
const linkDebounce = 500 * time.Millisecond

// check reads the interface's state now and logs a change.
func (w *linkWatch) check(now time.Time) {
	ifc, err := net.InterfaceByName(w.iface)
	exists := err == nil
	up := exists && ifc.Flags&net.FlagUp != 0 && ifc.Flags&net.FlagRunning != 0
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !exists && w.goneSince.IsZero():
		w.goneSince = now
	case exists:
		w.goneSince = time.Time{}
	}
	if up {
		w.downSeen = time.Time{}
	} else if w.downSeen.IsZero() {
		w.downSeen = now
	}
	if up == w.up || !up && now.Sub(w.downSeen) < linkDebounce {
		return
	}
	w.up = up
	if !up {
		w.downs++
		w.downSince = now
		w.log.WithFields(logrus.Fields{"interface": w.iface, "exists": exists}).Warn("capture: link down: keeping the sensor and its open attacks, retrying until it comes back")
		return
	}
	w.log.WithFields(logrus.Fields{"interface": w.iface, "down_for": now.Sub(w.downSince).Round(time.Millisecond).String()}).Info("capture: link up again")
	w.downSince = time.Time{}
}

// state returns whether the link is up and how often it went down.
func (w *linkWatch) state() (up bool, downs uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.up, w.downs
}

// retry handles a read error: it checks the link, and unless the interface
// has been gone for linkGoneFor, waits (backoff, at most 2 s, or until ctx
// ends) and returns nil so the reader tries again; else it returns err.
func (w *linkWatch) retry(ctx context.Context, err error, attempt int) error {
	now := time.Now()
	w.check(now)
	w.mu.Lock()
	gone := !w.goneSince.IsZero() && now.Sub(w.goneSince) >= linkGoneFor
	w.mu.Unlock()
	if gone {
		return fmt.Errorf("interface %s gone for %v: %w", w.iface, linkGoneFor, err)
	}
	if attempt == 0 {
		w.log.WithError(err).WithField("interface", w.iface).Debug("capture: read failed; retrying")
	}
	d := min(50*time.Millisecond<<min(attempt, 6), 2*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return nil
}
