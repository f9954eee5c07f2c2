package shard

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// slowRule counts the packets it sees and takes about 2 µs over each, so
// that the engine is the slower side and the dispatcher must wait for
// empty batches.
type slowRule struct{ seen *atomic.Int64 }

func (r slowRule) Info() detector.RuleInfo { return detector.RuleInfo{Name: "slow_test"} }

func (r slowRule) Observe(*detector.Packet, detector.Reporter) {
	r.seen.Add(1)
	for t := time.Now(); time.Since(t) < 2*time.Microsecond; {
	}
}

func (r slowRule) Tick(time.Time, detector.Reporter) {}

// TestDispatcherWaitsForSlowEngine: with the engine slower than the
// dispatcher, the dispatcher sleeps until the worker hands batches back
// (Front.take, worker.handBack) and is always woken — for every queue
// length, including those where half the queue is one batch — and no
// frame is lost: the rule sees each one and the Set counts each once.
func TestDispatcherWaitsForSlowEngine(t *testing.T) {
	frames, err := synth.Flood{Target: netip.MustParseAddr("10.0.0.5"), Spoofed: true, Seed: 1,
		Start: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), Rate: 100000, Count: 6000}.Frames()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []int{2, 3, 8} {
		t.Run(fmt.Sprint("queue", q), func(t *testing.T) {
			var seen atomic.Int64
			s, err := New(Config{Workers: 2, BatchFrames: 8, Queue: q}, detector.SinkFunc(func(*detector.Event) {}),
				func(int, detector.Sink) (*detector.Engine, error) {
					return detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), slowRule{&seen})
				})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for _, f := range frames {
					s.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
				}
				s.Close(detector.EndInputEnd)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the dispatcher was never woken: still waiting for an empty batch after 30 s")
			}
			if n := seen.Load(); n != int64(len(frames)) {
				t.Errorf("the rule saw %d frames, want %d", n, len(frames))
			}
			if st := s.Stats(); st.Frames != uint64(len(frames)) {
				t.Errorf("frames counted: %d, want %d", st.Frames, len(frames))
			}
			if s.main.waits == 0 {
				t.Errorf("the dispatcher never waited for an empty batch: the test did not exercise the wait")
			}
		})
	}
}
