package output

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestSendQueue: a live (non-blocking) put refuses at once when full; a
// blocking put waits for the sender's done, gives up after blockTimeout
// (stall: onStall, then refusals at once) until done recovers, and ends
// on stop; next leaves items queued, and returns empty once closed and
// drained. The time bounds are behaviour bounds (a wait that must end),
// with slack for a loaded machine.
func TestSendQueue(t *testing.T) {
	ctx := context.Background()
	t.Run("live", func(t *testing.T) {
		q := newSendQueue[int](2, false, time.Minute, nil)
		if !q.put(1) || !q.put(2) || q.put(3) {
			t.Fatal("want 2 taken, the third refused")
		}
		if got := q.next(ctx, nil, 10); !slices.Equal(got, []int{1, 2}) || q.len() != 2 {
			t.Errorf("next %v, len %d; want [1 2] left queued", got, q.len())
		}
		q.done(1)
		if got := q.next(ctx, nil, 10); !slices.Equal(got, []int{2}) {
			t.Errorf("after done(1): %v", got)
		}
	})
	t.Run("blocking_waits_for_room", func(t *testing.T) {
		q := newSendQueue[int](1, true, time.Minute, nil)
		q.put(1)
		took := make(chan bool)
		go func() { took <- q.put(2) }()
		select {
		case <-took:
			t.Fatal("a blocking put into a full queue did not wait")
		case <-time.After(50 * time.Millisecond):
		}
		q.done(1)
		if !<-took || !slices.Equal(q.next(ctx, nil, 10), []int{2}) {
			t.Error("the waiting put did not queue once room was made")
		}
	})
	t.Run("stall", func(t *testing.T) {
		q := newSendQueue[int](1, true, 100*time.Millisecond, nil)
		var stalls atomic.Int32
		q.onStall = func() { stalls.Add(1) }
		q.put(1)
		began := time.Now()
		q.put(2) // waits out blockTimeout, then refused
		if d := time.Since(began); d < 100*time.Millisecond || d > 5*time.Second || stalls.Load() != 1 {
			t.Errorf("stalled put took %v, %d stalls; want ~100ms and 1", d, stalls.Load())
		}
		began = time.Now()
		if q.put(3) || time.Since(began) > 50*time.Millisecond {
			t.Error("while stalled a put must be refused at once")
		}
		q.done(1) // the other end takes again
		if !q.put(4) {
			t.Error("after the recovery a put is refused")
		}
	})
	t.Run("recovered_hook", func(t *testing.T) {
		q := newSendQueue[int](4, true, 50*time.Millisecond, nil)
		q.recovered = func(queued, capacity int) bool { return queued <= capacity/2 }
		for i := range 5 {
			q.put(i) // the fifth stalls
		}
		q.done(1) // 3 left of 4: no recovery yet
		if q.put(9) && q.put(10) {
			t.Error("a removal that the hook does not count as recovery ended the stall")
		}
		q.done(2)
		if !q.put(11) {
			t.Error("draining to half did not end the stall")
		}
	})
	t.Run("stop_and_close", func(t *testing.T) {
		stop := make(chan struct{})
		q := newSendQueue[int](1, true, time.Minute, stop)
		q.put(1)
		took := make(chan bool)
		go func() { took <- q.put(2) }()
		close(stop)
		if <-took {
			t.Error("stop did not end the wait with a refusal")
		}
		if q.close() {
			t.Error("close reports a stall that was not")
		}
		if q.put(3) {
			t.Error("a put after close was taken")
		}
		if got := q.next(ctx, nil, 10); !slices.Equal(got, []int{1}) {
			t.Errorf("closing, next %v, want the queued [1]", got)
		}
		q.done(1)
		if got := q.next(ctx, nil, 10); len(got) != 0 {
			t.Errorf("closed and drained, next %v, want nothing", got)
		}
	})
}
