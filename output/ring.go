package output

// ring is a bounded FIFO over a fixed array, for a sink whose sender
// delivers at least once: the sender peeks at the oldest items (copies,
// leaving them queued), writes them, and pops only what the other end
// took, so that what a broken connection lost is sent again on the next
// one. It is not safe for concurrent use: its owner holds its own lock
// around it (with the state that goes with it: closing, stalls).
type ring[T any] struct {
	buf     []T
	head, n int
}

// newRing returns an empty ring of size items (at least 1).
func newRing[T any](size int) ring[T] {
	return ring[T]{buf: make([]T, max(size, 1))}
}

// Len is the number of items queued.
func (r *ring[T]) Len() int { return r.n }

// Cap is the most items the ring holds.
func (r *ring[T]) Cap() int { return len(r.buf) }

// Push queues v after the newest item; it reports false, queuing nothing,
// when the ring is full.
func (r *ring[T]) Push(v T) bool {
	if r.n == len(r.buf) {
		return false
	}
	r.buf[(r.head+r.n)%len(r.buf)] = v
	r.n++
	return true
}

// Peek appends up to most of the oldest items to dst, oldest first,
// leaving them queued, and returns dst.
func (r *ring[T]) Peek(dst []T, most int) []T {
	for i := 0; i < r.n && i < most; i++ {
		dst = append(dst, r.buf[(r.head+i)%len(r.buf)])
	}
	return dst
}

// Pop takes the k oldest items off the ring (all of them if k is more)
// and clears their slots, so that the ring holds no reference to what it
// delivered.
func (r *ring[T]) Pop(k int) {
	k = min(k, r.n)
	var zero T
	for i := 0; i < k; i++ {
		r.buf[(r.head+i)%len(r.buf)] = zero
	}
	r.head = (r.head + k) % len(r.buf)
	r.n -= k
}
