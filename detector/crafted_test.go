package detector_test

import (
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// craftedFrames is n frames of the crafted flood kind (synth.Crafted
// defaults, seed 1).
func craftedFrames(tb testing.TB, kind string, n int) [][]byte {
	tb.Helper()
	next, err := synth.Crafted{Kind: kind, Seed: 1}.Gen()
	if err != nil {
		tb.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		if out[i], err = next(i); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// TestCraftedFloodsDoNotAllocate: every flood of the worst-input suite
// (synth.CraftedKinds: long patterns, options, quotes, tunnels, fragment
// trains), decoded and detected with every rule on at a million packets/s,
// allocates nothing per packet once the tables are full and the attacks
// open — and every frame decodes (a frame given up would test nothing).
func TestCraftedFloodsDoNotAllocate(t *testing.T) {
	for _, kind := range synth.CraftedKinds {
		t.Run(kind, func(t *testing.T) {
			frames := craftedFrames(t, kind, 3000)
			e, events := newEngine(t)
			ts := epoch
			feed := func() {
				for _, f := range frames {
					ts = ts.Add(time.Microsecond)
					e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
				}
			}
			for i := 0; i < 20; i++ { // warm up: tables full, attacks open
				feed()
			}
			st := e.Stats()
			if st.ICMP+st.ICMPv6 == 0 || st.DecodeErrors() != 0 {
				t.Fatalf("%s: the frames did not decode as ICMP: %+v", kind, st)
			}
			before := *events
			if a := testing.AllocsPerRun(10, feed); a != 0 {
				t.Errorf("%s: %.1f allocations per %d frames (%d events meanwhile), want 0", kind, a, len(frames), *events-before)
			}
		})
	}
}

// BenchmarkCraftedFloods times the engine, every rule on, on each flood of
// the worst-input suite: ns per frame (bench/rulecost splits it by rule).
func BenchmarkCraftedFloods(b *testing.B) {
	for _, kind := range append([]string{synth.CraftEchoZero}, synth.CraftedKinds[1:]...) {
		b.Run(kind, func(b *testing.B) {
			frames := craftedFrames(b, kind, 4096)
			e, _ := newEngine(b)
			ts := epoch
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f := frames[i%len(frames)]
				i++
				ts = ts.Add(time.Microsecond)
				e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
			}
		})
	}
}
