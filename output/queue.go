package output

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/icmpids/icmpids/detector"
)

// flusher is a sink that buffers and can be told to write out (EVEFile).
type flusher interface {
	Flush() error
}

// closer is a sink that must be closed within a deadline (Queue).
type closer interface {
	Close(ctx context.Context) error
}

// Queue puts a bounded queue in front of a sink, so that a slow or dead
// output never stalls the capture goroutine. Emit never blocks: when the
// queue is full the oldest queued event is dropped (and counted) to make
// room, so the latest state of each attack, its end above all, gets out. One goroutine delivers
// queued events to the sink in order; when the queue runs empty it flushes
// the sink if the sink buffers (has a Flush() error method). Queue is safe
// for concurrent use.
type Queue struct {
	sink detector.Sink
	ch   chan *detector.Event
	log  *logrus.Entry

	mu     sync.RWMutex // Emit holds it shared; Close exclusively, to close
	closed bool

	accepted, sent, dropped atomic.Uint64

	abandon chan struct{} // closed when Close gives up on delivery
	done    chan struct{} // closed when the delivery goroutine returns
	once    sync.Once
	result  error
}

// NewQueue starts a queue of size events (at least 1) in front of sink. log
// (may be nil) receives the queue's own messages: flush failures and what
// Close could not deliver.
func NewQueue(sink detector.Sink, size int, log *logrus.Entry) *Queue {
	if size < 1 {
		size = 1
	}
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = logrus.NewEntry(l)
	}
	q := &Queue{
		sink:    sink,
		ch:      make(chan *detector.Event, size),
		log:     log,
		abandon: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go q.run()
	return q
}

// Emit implements detector.Sink. It never blocks: when the queue is full
// the oldest queued event is dropped to make room; an event that finds the
// queue closed is dropped. Both are counted.
func (q *Queue) Emit(ev *detector.Event) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.dropped.Add(1)
		return
	}
	select {
	case q.ch <- ev:
		q.accepted.Add(1)
		return
	default:
	}
	// Full: drop the oldest queued event rather than this one, as
	// Prometheus's notifier does. The newest carries an attack's latest
	// state — its end above all: dropping ends leaves a SIEM with attacks
	// that never close.
	select {
	case <-q.ch:
		q.accepted.Add(^uint64(0)) // it leaves the queue undelivered
		q.dropped.Add(1)
	default:
	}
	select {
	case q.ch <- ev:
		q.accepted.Add(1)
	default: // another producer took the room
		q.dropped.Add(1)
	}
}

// Sent returns how many events were delivered to the sink.
func (q *Queue) Sent() uint64 { return q.sent.Load() }

// Dropped returns how many events were dropped because the queue was full
// or closed.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Pending returns how many accepted events have not been delivered yet
// (queued, or being delivered).
func (q *Queue) Pending() uint64 { return q.accepted.Load() - q.sent.Load() }

// Cap returns the queue's size.
func (q *Queue) Cap() int { return cap(q.ch) }

func (q *Queue) run() {
	defer close(q.done)
	f, _ := q.sink.(flusher)
	failing := false
	flush := func() {
		if f == nil {
			return
		}
		err := f.Flush()
		switch {
		case err != nil && !failing:
			q.log.WithError(err).Warn("output: flushing alerts failed")
		case err == nil && failing:
			q.log.Info("output: flushing alerts works again")
		}
		failing = err != nil
	}
	for ev := range q.ch {
		select {
		case <-q.abandon:
			return
		default:
		}
		q.sink.Emit(ev)
		q.sent.Add(1)
		if len(q.ch) == 0 {
			flush()
		}
	}
	flush()
}

// Close stops accepting events and delivers what is queued, waiting at most
// until ctx is done. If delivery does not finish in time it gives up, logs
// how many events were not delivered and returns an error saying so; the
// delivery goroutine then stops after the event it is delivering, if the
// sink ever returns. Later calls return the first call's result.
func (q *Queue) Close(ctx context.Context) error {
	q.once.Do(func() {
		q.mu.Lock()
		q.closed = true
		close(q.ch) // no Emit can send: they hold the lock shared
		q.mu.Unlock()
		select {
		case <-q.done:
		case <-ctx.Done():
			select {
			case <-q.done: // finished just in time
				return
			default:
			}
			if q.Pending() == 0 {
				// Nothing left to deliver: the drain loop is about to
				// exit; an expired context is no failure then.
				select {
				case <-q.done:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			close(q.abandon)
			n := q.Pending()
			q.log.WithField("undelivered", n).Warn("output: queue closed before every alert was delivered")
			q.result = fmt.Errorf("output: closing queue: %d alerts not delivered: %w", n, ctx.Err())
		}
	})
	return q.result
}

// Multi fans each event out to several sinks, in order. The sinks share the
// Event and must not modify it (none in this package does). Put each slow
// sink behind its own Queue so that one cannot hold up the others.
type Multi []detector.Sink

// Emit implements detector.Sink.
func (m Multi) Emit(ev *detector.Event) {
	for _, s := range m {
		s.Emit(ev)
	}
}

// Flush flushes the sinks that buffer.
func (m Multi) Flush() error {
	var errs []error
	for _, s := range m {
		if f, ok := s.(flusher); ok {
			if err := f.Flush(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Close closes the sinks that are closed with a deadline (Queues), all at
// once and sharing ctx, and returns their errors joined.
func (m Multi) Close(ctx context.Context) error {
	errs := make([]error, len(m))
	var wg sync.WaitGroup
	for i, s := range m {
		if c, ok := s.(closer); ok {
			wg.Go(func() { errs[i] = c.Close(ctx) })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}
