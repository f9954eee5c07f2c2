package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/output"
)

// syslogCheckTimeout bounds a replay's first connection to the collector.
const syslogCheckTimeout = 10 * time.Second

// addSyslog makes the syslog sink for output.syslog and registers it to be
// closed (flushed, within the sensor's close deadline) after the other
// outputs.
//
// A live sensor's sink never blocks: an alert that finds the queue
// (syslog.queue_size) full is dropped and counted, because capture must
// not stall. A replay's sink blocks instead, so a replay delivers every
// alert; it first checks that the collector answers, so a replay to a
// collector that is down fails at once (exit 1) rather than after a
// timeout.
func (s *sensor) addSyslog(cfg Config, live bool) (detector.Sink, error) {
	sl, err := output.NewSyslog(cfg.Output.Syslog, cfg.Syslog, output.SyslogOptions{
		Block:   !live,
		Version: version,
		Log:     s.log.WithField("component", "syslog"),
		Stop:    s.stop,
	})
	if err != nil {
		return nil, configError{err}
	}
	if !live {
		ctx, cancel := context.WithTimeout(s.stop, syslogCheckTimeout)
		defer cancel()
		if err := sl.Check(ctx); err != nil {
			closeNow(sl)
			return nil, fmt.Errorf("output.syslog: %s: %w", sl.Target(), err)
		}
	}
	s.syslog = sl
	// Closed last: the local queues and files flush in milliseconds, and
	// a collector that is down must not eat their share of the deadline.
	s.closers = append(s.closers, sl.Close)
	return sl, nil
}

// closeNow closes a sink that holds nothing yet.
func closeNow(sl *output.Syslog) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sl.Close(ctx)
}

// sinkName names a queued sink for metrics.
func sinkName(sk detector.Sink) string {
	switch sk.(type) {
	case *output.Text:
		return "stdout_text"
	case *output.EVE:
		return "stdout_eve"
	case *output.EVEFile:
		return "eve_file"
	}
	return fmt.Sprintf("%T", sk)
}

// sinkStats returns every output's delivery figures; safe from any
// goroutine (atomics and the sinks' own locks).
func (s *sensor) sinkStats() []output.SinkStats {
	var st []output.SinkStats
	for i, q := range s.queues {
		st = append(st, output.SinkStats{
			Name:     s.queueNames[i],
			Queued:   int(q.Pending()),
			Capacity: q.Cap(),
			Sent:     q.Sent(),
			Dropped:  q.Dropped(),
		})
	}
	if s.syslog != nil {
		st = append(st, s.syslog.Stats())
	}
	for _, h := range s.hooks {
		st = append(st, h.Stats())
	}
	return append(st, s.fleet.stats()...)
}

// alertsDropped is the number of alerts the outputs lost (queues full,
// undelivered at close).
func (s *sensor) alertsDropped() uint64 {
	var n uint64
	for _, st := range s.sinkStats() {
		n += st.Dropped + st.Undelivered
	}
	return n
}

func (c MetricsConfig) validate() error {
	if c.Addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("metrics.addr: %q is not host:port (e.g. 127.0.0.1:9478, :9478)", c.Addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("metrics.addr: %q: port %q is not in [0, 65535]", c.Addr, port)
	}
	_ = host
	return nil
}
