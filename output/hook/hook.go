// Package hook holds the outputs that act on alerts: Exec runs a command
// per event (the hook people use for RTBH or FlowSpec through ExaBGP or
// GoBGP, for tickets and chat), Webhook POSTs each event to an HTTP
// endpoint (Slack, Teams or PagerDuty relays). Each event goes out as its
// EVE JSON object.
//
// Both sit behind the same bounded queue as the other sinks
// (output.Queue) in a live sensor: a hook that is slow or hangs costs
// queued alerts (the oldest are dropped and counted), never packets. In a
// replay (Options.Live false) Emit delivers before it returns, so a replay
// delivers every alert; Options.Stop (the signal) ends every wait at once.
// Failures and drops are counted (Output.Stats) and logged once per run of
// failures, never once per event.
package hook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/output"
)

// Options are the run-time choices of a hook output that are not
// configuration.
type Options struct {
	// Live puts the hook behind a queue of QueueSize events whose Emit
	// never blocks (a full queue drops its oldest event and counts it);
	// without it Emit delivers, waiting as long as delivery takes.
	Live      bool
	QueueSize int
	// Log receives the hook's messages; nil discards them.
	Log *logrus.Entry
	// Stop, when done, ends every wait at once (the event is dropped and
	// counted): a replay stops on a signal. Nil never stops.
	Stop context.Context
}

// deliverer is what Exec and Webhook implement: deliver one event (and
// count it), and close within a deadline.
type deliverer interface {
	detector.Sink
	setMeta(m output.Meta)
	close(ctx context.Context) error
	counters() *counts
}

// Output is a hook as the sensor wires it: its deliverer, behind a queue
// in a live sensor. It implements detector.Sink.
type Output struct {
	name string
	d    deliverer
	q    *output.Queue // nil: Emit delivers
	log  *logrus.Entry
	// dropLogged is set once the first queue drop is logged.
	dropLogged atomic.Bool
}

func newOutput(name string, d deliverer, opts Options) *Output {
	o := &Output{name: name, d: d, log: opts.Log}
	if opts.Live {
		o.q = output.NewQueue(d, opts.QueueSize, opts.Log)
	}
	return o
}

// Name is the output's name in metrics and logs: "exec" or "webhook".
func (o *Output) Name() string { return o.name }

// SetMeta sets what later events say of their sensor and input.
func (o *Output) SetMeta(m output.Meta) { o.d.setMeta(m) }

// Emit implements detector.Sink.
func (o *Output) Emit(ev *detector.Event) {
	if o.q == nil {
		o.d.Emit(ev)
		return
	}
	o.q.Emit(ev)
	if o.q.Dropped() > 0 && o.dropLogged.CompareAndSwap(false, true) {
		o.log.WithField("queue_size", o.q.Cap()).Warn("output: the queue is full: the oldest alerts are dropped (counted in icmpids_output_events_dropped_total; not logged again)")
	}
}

// Close delivers what is queued and waits for deliveries under way, at
// most until ctx is done; then what still runs is stopped (a command is
// killed, a request cancelled) and the error says what was lost. Without
// a queue (a replay) an alert that was not delivered is an error too.
func (o *Output) Close(ctx context.Context) error {
	var qerr error
	if o.q != nil {
		qerr = o.q.Close(ctx)
	}
	err := errors.Join(qerr, o.d.close(ctx))
	c := o.d.counters()
	failed, dropped := c.failed.Load(), c.dropped.Load()
	if failed > 0 {
		o.log.WithFields(logrus.Fields{"failed": failed, "sent": c.sent.Load()}).Warn("output: deliveries failed")
	}
	if o.q == nil && failed+dropped > 0 {
		// A replay delivers every alert, or says it did not (exit 1).
		err = errors.Join(err, fmt.Errorf("output.%s: %d of %d alerts not delivered", o.name, failed+dropped, failed+dropped+c.sent.Load()))
	}
	return err
}

// Stats returns the output's delivery figures: Sent counts events
// delivered, Rejected those whose delivery failed (a command that failed
// or was killed at its timeout, a request that failed after its retries),
// Dropped those the queue had no room for or a stop cut short.
func (o *Output) Stats() output.SinkStats {
	c := o.d.counters()
	st := output.SinkStats{Name: o.name, Sent: c.sent.Load(), Rejected: c.failed.Load(), Dropped: c.dropped.Load()}
	if o.q != nil {
		st.Queued, st.Capacity = int(o.q.Pending()), o.q.Cap()
		st.Dropped += o.q.Dropped()
	}
	return st
}

// counts are a deliverer's figures, and its log-once of failures.
type counts struct {
	log                   *logrus.Entry
	sent, failed, dropped atomic.Uint64
	failing               atomic.Bool // a failure was logged, no success since
}

// ok counts a delivery; the first after failures is logged.
func (c *counts) ok() {
	c.sent.Add(1)
	if c.failing.CompareAndSwap(true, false) {
		c.log.Info("output: delivery works again")
	}
}

// fail counts a failed delivery; the first of a run of failures is
// logged, with its cause.
func (c *counts) fail(err error) {
	c.failed.Add(1)
	if c.failing.CompareAndSwap(false, true) {
		c.log.WithError(err).Warn("output: delivery failed (further failures are counted, not logged, until one succeeds)")
	}
}

// discardLog is a logger that writes nothing, for a nil Options.Log.
func discardLog(l *logrus.Entry) *logrus.Entry {
	if l != nil {
		return l
	}
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	return logrus.NewEntry(lg)
}

// stopChan is ctx's Done channel, or nil (never ready) for a nil ctx.
func stopChan(ctx context.Context) <-chan struct{} {
	if ctx == nil {
		return nil
	}
	return ctx.Done()
}
