package sketch

import (
	"math"
	"testing"
)

// miniOf counts n distinct addresses of set s (each twice).
func miniOf(s uint32, n int) *MiniHLL {
	var h MiniHLL
	for i := 0; i < n; i++ {
		x := HashAddr(addr(uint32(i)*2654435761 + s*0x9e3779b9 + s<<24))
		h.AddHash(x)
		h.AddHash(x) // a repeat does not count
	}
	return &h
}

// TestMiniHLLEstimate: against exact counts, one set each, the estimate is
// within the bound of its range: a few percent in linear counting's range,
// three standard errors (3 x 13 %) past it; and averaged over 50 sets it
// is unbiased within 4 %.
func TestMiniHLLEstimate(t *testing.T) {
	for _, tc := range []struct {
		n   int
		tol float64 // relative, one set
	}{
		{0, 0}, {1, 0}, {2, 0}, {10, 0.1}, {50, 0.15}, {100, 0.2},
		{1000, 0.39}, {10_000, 0.39}, {1_000_000, 0.39},
	} {
		got := float64(miniOf(1, tc.n).Estimate())
		if d := math.Abs(got - float64(tc.n)); d > tc.tol*float64(tc.n) {
			t.Errorf("n=%d: estimate %.0f, off by %.0f (more than %.0f %%)", tc.n, got, d, 100*tc.tol)
		}
		if tc.n < 1000 {
			continue
		}
		sum, sq := 0.0, 0.0
		for s := uint32(2); s < 52; s++ {
			e := float64(miniOf(s, tc.n).Estimate())/float64(tc.n) - 1
			sum += e
			sq += e * e
		}
		if mean, rms := sum/50, math.Sqrt(sq/50); math.Abs(mean) > 0.04 || rms > 0.18 {
			t.Errorf("n=%d over 50 sets: mean relative error %.3f, rms %.3f (1.04/sqrt(64) = 0.13)", tc.n, mean, rms)
		}
	}
}

// TestMiniHLLMerge: merging two sensors' counters is exactly the counter
// of the union (register maximum), whatever the order; an empty one
// changes nothing.
func TestMiniHLLMerge(t *testing.T) {
	a, b := miniOf(1, 3000), miniOf(2, 5000)
	var union MiniHLL
	for _, s := range []struct {
		set uint32
		n   int
	}{{1, 3000}, {2, 5000}} {
		for i := 0; i < s.n; i++ {
			union.AddHash(HashAddr(addr(uint32(i)*2654435761 + s.set*0x9e3779b9 + s.set<<24)))
		}
	}
	ab, ba := *a, *b
	ab.Merge(b)
	ba.Merge(a)
	if ab != union || ba != union {
		t.Errorf("merge is not the union's counter")
	}
	if got := float64(ab.Estimate()); math.Abs(got-8000) > 0.39*8000 {
		t.Errorf("union of 3,000 and 5,000 distinct: estimate %.0f", got)
	}
	var empty MiniHLL
	c := *a
	c.Merge(&empty)
	c.Merge(a)
	if c != *a || !empty.Empty() || a.Empty() {
		t.Errorf("merging an empty counter or itself changed it")
	}
	c.Reset()
	if !c.Empty() || c.Estimate() != 0 {
		t.Errorf("after Reset: %d", c.Estimate())
	}
}

func TestMiniHLLNoAllocs(t *testing.T) {
	var h MiniHLL
	x := uint64(1)
	if n := testing.AllocsPerRun(1000, func() { x = Mix64(x + 1); h.AddHash(x) }); n != 0 {
		t.Errorf("%.1f allocations per AddHash", n)
	}
}

// FuzzMiniHLLRegisters: registers from a record are untrusted: SetRegisters
// takes exactly 64 in range or refuses, never panics, and what it takes
// estimates finitely and merges into a counter that holds both.
func FuzzMiniHLLRegisters(f *testing.F) {
	r := miniOf(1, 500).Registers()
	f.Add(r[:])
	f.Add(make([]byte, 64))
	f.Add([]byte{255})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h MiniHLL
		if err := h.SetRegisters(b); err != nil {
			if !h.Empty() {
				t.Fatal("a refused record left registers set")
			}
			return
		}
		e := h.Estimate()
		if float64(e) > 64*math.Ldexp(1, miniMaxRank) {
			t.Fatalf("estimate %d beyond what 64 registers can say", e)
		}
		m := *miniOf(2, 100)
		m.Merge(&h)
		for i, v := range m.Registers() {
			if v < h.reg[i] {
				t.Fatal("merge lost a register")
			}
		}
	})
}

func BenchmarkMiniHLLAddHash(b *testing.B) {
	var h MiniHLL
	x := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		x += 0x9e3779b97f4a7c15
		h.AddHash(x)
	}
}
