package output

import (
	"context"
	"sync"
	"time"
)

// sendQueue is a network sink's queue between Emit and its one sender
// goroutine, over a ring: Emit puts (a live sensor's put never waits and
// refuses when full; a replay's waits for room, at most blockTimeout while
// the other end takes nothing, and then refuses at once until it takes
// events again); the sender takes the oldest items without removing them
// (next), writes them, and removes only what the other end took (done),
// so delivery is at least once. The syslog and Redis sinks share it. It
// is safe for concurrent use.
type sendQueue[T any] struct {
	block        bool
	blockTimeout time.Duration
	stop         <-chan struct{} // done: a waiting put gives up (nil: never)
	// trouble, if set, returns since when delivery has been failing (Unix
	// ns, 0: it is not): a waiting put's blockTimeout runs from the
	// earlier of that and its own start.
	trouble func() int64
	// recovered, if set, tells whether done's removals end a stall (the
	// queue's length and capacity after them); nil: any removal does.
	recovered func(queued, capacity int) bool
	// onStall is called, without the lock, when a put gave up waiting.
	onStall func()

	mu        sync.Mutex
	r         ring[T]
	closing   bool
	stalled   bool
	waitSince time.Time // when a put began to wait; cleared by a recovery

	wake   chan struct{} // items queued, or closing (cap 1)
	room   chan struct{} // room made (cap 1)
	closed chan struct{} // closed by close
}

// newSendQueue returns an empty queue of size items (at least 1); the
// caller sets the optional hooks before the first put.
func newSendQueue[T any](size int, block bool, blockTimeout time.Duration, stop <-chan struct{}) *sendQueue[T] {
	return &sendQueue[T]{block: block, blockTimeout: blockTimeout, stop: stop, r: newRing[T](size),
		wake: make(chan struct{}, 1), room: make(chan struct{}, 1), closed: make(chan struct{})}
}

// put queues v and reports whether it did; a refused item (full, closed,
// stalled, or the stop channel done while waiting) is the caller's to
// count.
func (q *sendQueue[T]) put(v T) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	q.mu.Lock()
	for {
		if q.closing {
			q.mu.Unlock()
			return false
		}
		if q.r.Push(v) {
			q.mu.Unlock()
			notify(q.wake)
			return true
		}
		if !q.block || q.stalled {
			q.mu.Unlock()
			return false
		}
		if q.waitSince.IsZero() {
			q.waitSince = time.Now()
		}
		since := q.waitSince
		if q.trouble != nil {
			if t := q.trouble(); t != 0 && time.Unix(0, t).Before(since) {
				since = time.Unix(0, t)
			}
		}
		left := time.Until(since.Add(q.blockTimeout))
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(max(left, 0))
		} else {
			timer.Reset(max(left, 0))
		}
		select {
		case <-q.room:
		case <-q.closed:
		case <-q.stop:
			return false
		case <-timer.C:
			q.mu.Lock()
			q.stalled = true
			q.mu.Unlock()
			if q.onStall != nil {
				q.onStall()
			}
		}
		q.mu.Lock()
	}
}

// next waits for queued items and appends up to most of the oldest to
// dst, leaving them queued. It returns dst unchanged when the queue is
// closing and empty, or ctx is done.
func (q *sendQueue[T]) next(ctx context.Context, dst []T, most int) []T {
	for {
		if ctx.Err() != nil {
			return dst
		}
		q.mu.Lock()
		n, closing := q.r.Len(), q.closing
		dst = q.r.Peek(dst, most)
		q.mu.Unlock()
		if n > 0 || closing {
			return dst
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
		}
	}
}

// done removes the k oldest items: delivered, or given up.
func (q *sendQueue[T]) done(k int) {
	if k == 0 {
		return
	}
	q.mu.Lock()
	q.r.Pop(k)
	if q.recovered == nil || q.recovered(q.r.Len(), q.r.Cap()) {
		q.stalled, q.waitSince = false, time.Time{}
	}
	q.mu.Unlock()
	notify(q.room)
}

// unstall ends a stall: the other end has been taking items again.
func (q *sendQueue[T]) unstall() {
	q.mu.Lock()
	q.stalled, q.waitSince = false, time.Time{}
	q.mu.Unlock()
}

// close refuses later puts, wakes the sender and the waiting puts, and
// reports whether the queue was stalled (the other end took nothing for
// blockTimeout: a close need not wait for it). Call it once.
func (q *sendQueue[T]) close() (stalled bool) {
	q.mu.Lock()
	q.closing = true
	stalled = q.stalled
	q.mu.Unlock()
	close(q.closed)
	notify(q.wake)
	return stalled
}

// len is the number of items queued.
func (q *sendQueue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.r.Len()
}

// capacity is the most items queued.
func (q *sendQueue[T]) capacity() int { return q.r.Cap() }

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
