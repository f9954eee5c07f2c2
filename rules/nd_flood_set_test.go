package rules

import (
	"math/bits"
	"net/netip"
	"testing"
)

// TestNDFloodSetForMatchesEstimate: nd_flood tests a key's distinct
// targets by comparing its set bits with setFor's count instead of taking
// the estimate's logarithm per packet; for every count of set bits and
// every threshold the two agree, and the count kept as bits are set equals
// a popcount of the two bitmaps across epochs.
func TestNDFloodSetForMatchesEstimate(t *testing.T) {
	for _, d := range []float64{0, 0.5, 1, 7.5, 15, 16, 100, 511, 3000, 3194, 1e6} {
		m := setFor(d)
		for s := 0; s <= 512; s++ {
			if got, want := s < m, distinctOf(s) < d; got != want {
				t.Fatalf("d %v, set %d: set < setFor (%d) is %v, estimate %.2f < d is %v", d, s, m, got, distinctOf(s), want)
			}
		}
	}
	var c ndCounter
	const windowNs = int64(1e9)
	for i := 0; i < 3000; i++ {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 14: byte(i >> 8), 15: byte(i)})
		c.addTarget(a, int64(i)*windowNs/400, windowNs) // 400 a window: epochs turn over
		n := 0
		for w := range c.targets[0] {
			n += bits.OnesCount64(c.targets[0][w] | c.targets[1][w])
		}
		if c.set != n {
			t.Fatalf("after %d targets: set %d, bitmaps hold %d", i+1, c.set, n)
		}
	}
}
