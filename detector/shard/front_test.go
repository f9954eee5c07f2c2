package shard_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/shard"
	"github.com/icmpids/icmpids/detector/sketch"
)

// split deals frames to n producers by a hash of the frame's addresses
// that is symmetric in source and destination, as AF_PACKET fanout's flow
// hash is: a request and its reply go to the same producer.
func split(t testing.TB, frames []synth.Frame, n int) [][]synth.Frame {
	dec := detector.NewDecoder()
	var p detector.Packet
	out := make([][]synth.Frame, n)
	for _, f := range frames {
		dec.Decode(detector.LinkEthernet, f.Data, f.Time, len(f.Data), &p)
		i := 0
		if p.Src.IsValid() {
			h := sketch.HashAddr(p.Src) ^ sketch.HashAddr(p.Dst)
			i = int((h >> 33) % uint64(n))
		}
		out[i] = append(out[i], f)
	}
	for i, part := range out {
		if len(part) == 0 {
			t.Fatalf("producer %d of %d gets no frame", i, n)
		}
	}
	return out
}

// TestFrontsReportWhatOneEngineReports: the scenario dealt by flow to 2 and
// 3 producers, each feeding its own Front from its own goroutine, paced in
// steps of packet time as live capture paces them, raises the attacks one
// engine raises and counts every frame once, for 1, 2 and 3 workers.
// Stats and a rules reload from the supervising goroutine while the
// fronts run are safe (run with -race).
func TestFrontsReportWhatOneEngineReports(t *testing.T) {
	frames := scenario(t)
	var one collector
	e, err := detector.New(detector.DefaultConfig(), &one, allRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	e.Close(detector.EndInputEnd)
	want := fmt.Sprint(one.sorted())
	const step = 20 * time.Millisecond // packet time fed between two barriers
	for _, workers := range []int{1, 2, 3} {
		for _, producers := range []int{2, 3} {
			t.Run(fmt.Sprintf("%dworkers/%dproducers", workers, producers), func(t *testing.T) {
				var got collector
				s, err := shard.New(shard.Config{Workers: workers}, &got, func(i int, sink detector.Sink) (*detector.Engine, error) {
					return detector.New(detector.DefaultConfig(), sink, allRules(t)...)
				})
				if err != nil {
					t.Fatal(err)
				}
				parts := split(t, frames, producers)
				end := frames[len(frames)-1].Time
				steps := int(end.Sub(epoch)/step) + 1
				var wg sync.WaitGroup
				barriers := make([]sync.WaitGroup, steps)
				for i := range barriers {
					barriers[i].Add(producers)
				}
				for _, part := range parts {
					f, err := s.Front()
					if err != nil {
						t.Fatal(err)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						j := 0
						for k := range steps {
							limit := epoch.Add(time.Duration(k+1) * step)
							for ; j < len(part) && part[j].Time.Before(limit); j++ {
								fr := part[j]
								f.HandleFrame(detector.LinkEthernet, fr.Data, fr.Time, len(fr.Data))
							}
							f.Flush() // live: the read timeout hands partial batches over
							barriers[k].Done()
							barriers[k].Wait()
						}
					}()
				}
				// The supervisor reads figures and reloads rules meanwhile.
				for i := 0; i < 5; i++ {
					s.Stats()
					if err := s.SetRules(func(int) ([]detector.Rule, error) { return allRules(t), nil }); err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Millisecond)
				}
				wg.Wait()
				s.Close(detector.EndInputEnd)
				if g := fmt.Sprint(got.sorted()); g != want {
					t.Errorf("events\n got %v\nwant %v", g, want)
				}
				if st := s.Stats(); st.Frames != uint64(len(frames)) {
					t.Errorf("frames counted: %d, want %d", st.Frames, len(frames))
				}
			})
		}
	}
}

// TestFrontDispatchDoesNotAllocate: routing through a Front costs no
// allocation either.
func TestFrontDispatchDoesNotAllocate(t *testing.T) {
	frames := scenario(t)[:5000]
	s, err := shard.New(shard.Config{Workers: 2}, detector.SinkFunc(func(*detector.Event) {}), func(i int, sink detector.Sink) (*detector.Engine, error) {
		return detector.New(detector.DefaultConfig(), sink, allRules(t)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Front()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(detector.EndInputEnd)
	ts := epoch
	feed := func() {
		for _, fr := range frames[:100] {
			ts = ts.Add(10 * time.Millisecond) // slow: no attack, no event
			f.HandleFrame(detector.LinkEthernet, fr.Data, ts, len(fr.Data))
		}
	}
	for i := 0; i < 50; i++ {
		feed()
	}
	if a := testing.AllocsPerRun(100, feed); a != 0 {
		t.Fatalf("%.1f allocations per 100 frames", a)
	}
}

// TestSingle: several fronts feed one engine built elsewhere.
func TestSingle(t *testing.T) {
	frames := scenario(t)
	var got collector
	e, err := detector.New(detector.DefaultConfig(), &got, allRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := shard.Single(shard.Config{}, e)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, part := range split(t, frames, 2) {
		f, err := s.Front()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, fr := range part {
				f.HandleFrame(detector.LinkEthernet, fr.Data, fr.Time, len(fr.Data))
			}
		}()
	}
	wg.Wait()
	s.Close(detector.EndInputEnd)
	if st := s.Stats(); st.Frames != uint64(len(frames)) || s.Workers() != 1 {
		t.Errorf("frames counted: %d, want %d (workers %d)", st.Frames, len(frames), s.Workers())
	}
	if len(got.evs) == 0 {
		t.Error("no events")
	}
}
