package rules

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector/window"
)

// TestRateCountsMatchLevel: judging a window by its counts (rateCounts)
// gives the level that level gives of its rates, for windows of whole and
// odd lengths, levels and stop ratios with and without rounding
// trouble, at the thresholds' counts and beside them.
func TestRateCountsMatchLevel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		window                    time.Duration
		startPPS, startBPS, ratio float64
	}{
		{time.Second, 1000, 20e6, 0.5},            // icmp_flood's echo defaults
		{time.Second, 2000, 40e6, 0.5},            // its any-ICMP defaults
		{3 * time.Second, 1000, 20e6, 1.0 / 3},    // a third: rounding at every threshold
		{700 * time.Millisecond, 333.3, 1e7, 0.7}, // an odd window
		{10 * time.Millisecond, 1, 8, 0.01},       // a rate of one packet and one byte
		{time.Minute, 1e9, 1e15, 0.9},             // large counts
	} {
		secs := tc.window.Seconds()
		rc := newRateCounts(tc.startPPS, tc.startBPS, tc.ratio, secs)
		check := func(pkts, bytes uint64) {
			t.Helper()
			var c window.Counter
			c.SeedBucket(0, 0, uint32(min(pkts, 1<<32-1)), bytes)
			pkts = c.Packets()
			pps, bps := c.RatesOver(secs)
			want := level(pps, bps, tc.startPPS, tc.startBPS, tc.ratio)
			if got := rc.level(&c); got != want {
				t.Fatalf("%v window, start %v pps / %v bps, ratio %v: %d packets, %d bytes judged %v, their rates %v", tc.window, tc.startPPS, tc.startBPS, tc.ratio, pkts, bytes, got, want)
			}
		}
		for _, n := range []uint64{rc.firePkts, rc.sustainPkts} {
			for d := uint64(0); d <= 4; d++ {
				check(max(n, 2)-2+d, 0)
			}
		}
		for _, b := range []uint64{rc.fireBytes, rc.sustainBytes} {
			for d := uint64(0); d <= 4; d++ {
				check(0, max(b, 2)-2+d)
			}
		}
		for i := 0; i < 2000; i++ {
			check(rng.Uint64N(2*rc.firePkts+2), rng.Uint64N(2*rc.fireBytes+2))
		}
	}
}

// TestLeastCountEdges: no window or an unreachable level.
func TestLeastCountEdges(t *testing.T) {
	for _, tc := range []struct {
		lvl, mul, secs float64
		want           uint64
	}{
		{1, 1, 0, 1<<64 - 1}, // no window: every rate is 0, below 1
		{0, 1, 0, 0},         // ... and at 0
		{1e300, 1, 1, 1<<64 - 1},
		{1, 1, 1, 1},
		{0.5, 1, 1, 1},
		{8, 8, 1, 1},
	} {
		if got := leastCount(tc.lvl, tc.mul, tc.secs); got != tc.want {
			t.Errorf("leastCount(%v, %v, %v) = %d, want %d", tc.lvl, tc.mul, tc.secs, got, tc.want)
		}
	}
}
