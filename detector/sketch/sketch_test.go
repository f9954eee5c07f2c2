package sketch

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func addr(i uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestHLLEstimate(t *testing.T) {
	for _, n := range []int{0, 1, 10, 100, 1000, 10000, 100000, 1000000} {
		var h HLL
		for i := 0; i < n; i++ {
			h.Add(addr(uint32(i)*2654435761 + 7))
			h.Add(addr(uint32(i)*2654435761 + 7)) // duplicates do not count
		}
		got := float64(h.Estimate())
		tol := math.Max(2, 0.10*float64(n)) // 3.3 % standard error: 3 sigma
		if math.Abs(got-float64(n)) > tol {
			t.Errorf("n=%d: estimate %.0f, off by more than %.0f", n, got, tol)
		}
	}
}

// TestHLLUnbiased: averaged over 20 independent sets, the estimate is
// within 2 % of the truth across the small-to-large range.
func TestHLLUnbiased(t *testing.T) {
	for _, n := range []int{3000, 10000, 100000} {
		sum := 0.0
		for s := uint32(0); s < 20; s++ {
			var h HLL
			for i := 0; i < n; i++ {
				h.Add(addr(uint32(i)*2654435761 + s*7919 + s<<20))
			}
			sum += float64(h.Estimate())/float64(n) - 1
		}
		if mean := sum / 20; math.Abs(mean) > 0.02 {
			t.Errorf("n=%d: mean relative error %.4f", n, mean)
		}
	}
}

func TestHLLReset(t *testing.T) {
	var h HLL
	h.Add(addr(1))
	h.Reset()
	if e := h.Estimate(); e != 0 {
		t.Fatalf("after Reset: %d", e)
	}
}

func TestHashAddrIsDeterministicAndSpreads(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::1")
	if HashAddr(a) != HashAddr(netip.MustParseAddr("2001:db8::1")) {
		t.Fatal("hash not deterministic")
	}
	var buckets [16]int
	for i := 0; i < 16000; i++ {
		buckets[HashAddr(addr(uint32(i)))%16]++
	}
	for i, b := range buckets {
		if b < 800 || b > 1200 {
			t.Errorf("bucket %d holds %d of 16000 sequential addresses", i, b)
		}
	}
}

func TestTopKExactWhileFewKeys(t *testing.T) {
	var tk TopK[int]
	for k := 0; k < TopKSize; k++ {
		tk.Add(k, uint64(k+1))
	}
	if !tk.Exact() || tk.Len() != TopKSize {
		t.Fatalf("exact=%v len=%d", tk.Exact(), tk.Len())
	}
	top := tk.Top(3, 1)
	want := []Entry[int]{{15, 16, 0}, {14, 15, 0}, {13, 14, 0}}
	for i := range want {
		if top[i] != want[i] {
			t.Fatalf("top = %v, want %v", top, want)
		}
	}
}

// TestTopKFindsHeavyHitterInNoise: one source sending 10 % of a flood of
// unique spoofed sources is found, with a guaranteed count that is a true
// lower bound; the spoofed noise never qualifies as a top source.
func TestTopKFindsHeavyHitterInNoise(t *testing.T) {
	var tk TopK[netip.Addr]
	heavy := netip.MustParseAddr("198.51.100.7")
	var heavyCount uint64
	for i := 0; i < 100000; i++ {
		if i%10 == 0 {
			tk.Add(heavy, 1)
			heavyCount++
			continue
		}
		tk.Add(addr(uint32(i)*2654435761+99), 1)
	}
	if tk.Exact() {
		t.Fatal("90,000 distinct keys reported as exact")
	}
	top := tk.Top(5, 2)
	if len(top) != 1 || top[0].Key != heavy {
		t.Fatalf("top = %v, want only the heavy hitter", top)
	}
	if top[0].Min() > heavyCount || top[0].Count < heavyCount {
		t.Fatalf("heavy hitter bounds [%d, %d] do not contain its true count %d", top[0].Min(), top[0].Count, heavyCount)
	}
}

func TestSketchesDoNotAllocate(t *testing.T) {
	var h HLL
	var tk TopK[netip.Addr]
	i := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		a := addr(i)
		i++
		h.Add(a)
		tk.Add(a, 1)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per Add", allocs)
	}
}

func BenchmarkHLLAdd(b *testing.B) {
	var h HLL
	i := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		h.Add(addr(i))
		i++
	}
}

func BenchmarkTopKAddSpoofed(b *testing.B) {
	var tk TopK[netip.Addr]
	i := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		tk.Add(addr(i), 1)
		i++
	}
}

// TestTopKAddHashMatchesAdd: fed the same stream, with a hash per key,
// AddHash gives the entries Add gives, in the same order.
func TestTopKAddHashMatchesAdd(t *testing.T) {
	var a, b TopK[netip.Addr]
	for i := 0; i < 50000; i++ {
		k := addr(uint32(i)*2654435761 + 3)
		if i%7 == 0 {
			k = addr(uint32(i % 5))
		}
		a.Add(k, uint64(1+i%3))
		b.AddHash(k, HashAddr(k), uint64(1+i%3))
	}
	ta, tb := a.Top(TopKSize, 0), b.Top(TopKSize, 0)
	if len(ta) != len(tb) || a.Exact() != b.Exact() {
		t.Fatalf("Add: %v; AddHash: %v", ta, tb)
	}
	for i := range ta {
		if ta[i] != tb[i] {
			t.Fatalf("entry %d: Add %v, AddHash %v", i, ta[i], tb[i])
		}
	}
}

func BenchmarkTopKAddHashSpoofed(b *testing.B) {
	var tk TopK[netip.Addr]
	var h HLL
	i := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		a := addr(i)
		x := HashAddr(a)
		h.AddHash(x)
		tk.AddHash(a, x, 1)
		i++
	}
}

func TestHashPrefix(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.254", true},
		{"192.0.2.1", "192.0.3.1", false},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
	} {
		ha, hb := HashPrefix(netip.MustParseAddr(tc.a)), HashPrefix(netip.MustParseAddr(tc.b))
		if (ha == hb) != tc.same {
			t.Errorf("HashPrefix(%s) == HashPrefix(%s): %v, want %v", tc.a, tc.b, ha == hb, tc.same)
		}
	}
	if HashPrefix(netip.MustParseAddr("192.0.2.7")) != HashAddr(netip.MustParseAddr("192.0.2.0")) {
		t.Error("HashPrefix of an IPv4 address is not HashAddr of its /24")
	}
}

// refTopK is the summary as it was written first: one scan per new key for
// the least count (the first of equals).
type refTopK struct {
	keys   []uint16
	counts []uint64
	errs   []uint64
}

func (r *refTopK) add(k uint16, w uint64) {
	for i := range r.keys {
		if r.keys[i] == k {
			r.counts[i] += w
			return
		}
	}
	if len(r.keys) < TopKSize {
		r.keys, r.counts, r.errs = append(r.keys, k), append(r.counts, w), append(r.errs, 0)
		return
	}
	minI := 0
	for i := range r.counts {
		if r.counts[i] < r.counts[minI] {
			minI = i
		}
	}
	r.keys[minI], r.errs[minI], r.counts[minI] = k, r.counts[minI], r.counts[minI]+w
}

// TestTopKLikeOneScan: the summary that keeps its least count between new
// keys holds, after every addition, exactly the slots, counts and bounds
// of the one-scan summary — on streams of few keys, of spoofed keys, of
// heavy hitters among noise, with weights (0 included); fed through Add, or
// through Again and Add when Again does not count the key.
func TestTopKLikeOneScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	streams := map[string]func() (uint16, uint64){
		"few keys": func() (uint16, uint64) { return uint16(rng.IntN(12)), 1 },
		"spoofed":  func() (uint16, uint64) { return uint16(rng.IntN(65536)), 1 },
		"heavy+noise": func() (uint16, uint64) {
			k := uint16(rng.IntN(4))
			if rng.IntN(3) == 0 {
				k = uint16(rng.IntN(5000))
			}
			return k, 1
		},
		"weighted":     func() (uint16, uint64) { return uint16(rng.IntN(40)), uint64(rng.IntN(1500)) },
		"zero weights": func() (uint16, uint64) { return uint16(rng.IntN(30)), uint64(rng.IntN(3)) },
	}
	for name, next := range streams {
		var got TopK[uint16]
		var want refTopK
		for i := 0; i < 20000; i++ {
			k, w := next()
			if i%2 == 0 || !got.Again(k, w) { // Again, then Add, as the tracker counts types
				got.Add(k, w)
			}
			want.add(k, w)
			for j := range want.keys {
				if got.keys[j] != want.keys[j] || got.counts[j] != want.counts[j] || got.errs[j] != want.errs[j] {
					t.Fatalf("%s, after %d additions: slot %d holds %d (%d, err %d), want %d (%d, err %d)", name, i+1, j,
						got.keys[j], got.counts[j], got.errs[j], want.keys[j], want.counts[j], want.errs[j])
				}
			}
		}
	}
}

// TestTopKAddHashLikeOneScan: fed through AddHash, the summary holds the
// one-scan summary's slots, counts and bounds after every addition,
// whatever the tags: with HashAddr, with hashes whose tags all collide
// (only the hash and key comparisons tell slots apart) and with hashes
// that collide whole (only the key comparison does).
func TestTopKAddHashLikeOneScan(t *testing.T) {
	hashes := map[string]func(k uint16) uint64{
		"HashAddr":       func(k uint16) uint64 { return HashAddr(addr(uint32(k))) },
		"one tag":        func(k uint16) uint64 { return 0xab<<56 | uint64(k) },
		"three tags":     func(k uint16) uint64 { return uint64(k%3)<<56 | uint64(k)<<8 },
		"colliding hash": func(k uint16) uint64 { return uint64(k % 2) },
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for name, hash := range hashes {
		var got TopK[uint16]
		var want refTopK
		for i := 0; i < 20000; i++ {
			k := uint16(rng.IntN(3))
			if rng.IntN(2) == 0 {
				k = uint16(rng.IntN(4000))
			}
			w := uint64(rng.IntN(3))
			got.AddHash(k, hash(k), w)
			want.add(k, w)
			for j := range want.keys {
				if got.keys[j] != want.keys[j] || got.counts[j] != want.counts[j] || got.errs[j] != want.errs[j] {
					t.Fatalf("%s, after %d additions: slot %d holds %d (%d, err %d), want %d (%d, err %d)", name, i+1, j,
						got.keys[j], got.counts[j], got.errs[j], want.keys[j], want.counts[j], want.errs[j])
				}
			}
		}
	}
}

// TestDoorkeeper: a key is admitted on its second sighting, not its first;
// a flood of new keys is never admitted (but for fingerprint collisions,
// which are rare), and a key seen twice within the flood's horizon is.
func TestDoorkeeper(t *testing.T) {
	d := NewDoorkeeper(14)
	h := HashAddr(netip.MustParseAddr("192.0.2.1"))
	if d.Seen(h) {
		t.Fatal("admitted at its first sighting")
	}
	if !d.Seen(h) {
		t.Fatal("not admitted at its second sighting")
	}
	if d.Seen(h) {
		t.Fatal("admitted again with its cell cleared: its table holds it now")
	}
	admitted := 0
	for i := 0; i < 1_000_000; i++ {
		if d.Seen(HashAddr(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))) {
			admitted++
		}
	}
	if admitted > 2 {
		t.Fatalf("%d of a million new keys admitted", admitted)
	}
	// A real key every 1,000 packets of a spoofed flood is admitted
	// (2^14 cells outlast 1,000 writes most of the time).
	real, in := HashAddr(netip.MustParseAddr("192.0.2.9")), false
	for i := 0; i < 3000 && !in; i++ {
		if i%1000 == 0 {
			in = d.Seen(real)
		} else {
			d.Seen(HashAddr(netip.AddrFrom4([4]byte{11, 0, byte(i >> 8), byte(i)})))
		}
	}
	if !in {
		t.Fatal("a key seen every 1,000 flood packets was not admitted")
	}
	if d.Admitted == 0 || d.Rejected < 1_000_000 {
		t.Fatalf("counts %d admitted, %d rejected", d.Admitted, d.Rejected)
	}
	allocs := testing.AllocsPerRun(1000, func() { d.Seen(h) })
	if allocs != 0 {
		t.Fatalf("%.0f allocations per Seen", allocs)
	}
}

// TestTopKCrowdedAgreesWithCount: Crowded says true only where Count
// would count nothing (the key absent, the summary full), and it does say
// so for nearly every absent key of a full summary (a tag collision, 1 in
// ~16 at sixteen slots, leaves the answer to Count).
func TestTopKCrowdedAgreesWithCount(t *testing.T) {
	var k TopK[netip.Addr]
	crowded := 0
	for i := uint32(0); i < 5000; i++ {
		a := addr(i*2654435761 + 3)
		if i%3 == 0 && i > 0 {
			a = addr(7) // a source that repeats: present once the summary holds it
		}
		h := HashAddr(a)
		c := k.Crowded(h)
		probe := k // Count on a copy: what it would do
		counted := probe.Count(a, h, 1)
		if c && counted {
			t.Fatalf("packet %d: Crowded said the summary would not count %v, Count did", i, a)
		}
		if c {
			crowded++
		}
		if !k.Count(a, h, 1) {
			k.Pass()
		}
	}
	if absent := 5000 * 2 / 3; crowded < absent*8/10 {
		t.Errorf("Crowded true for %d keys, want most of the ~%d absent ones", crowded, absent)
	}
}

// TestTopKRecountLikeCount: a summary fed through Crowded, Recount, then
// Count (the tracker's order) ends in the state of one fed through Count
// alone, on a stream of runs of one key, repeating keys and new ones.
func TestTopKRecountLikeCount(t *testing.T) {
	var a, b TopK[netip.Addr]
	rng := rand.New(rand.NewPCG(3, 4))
	recounted := 0
	for i := 0; i < 20000; i++ {
		var k netip.Addr
		switch r := rng.IntN(10); {
		case r < 4:
			k = addr(1) // runs of one source
		case r < 7:
			k = addr(uint32(2 + rng.IntN(40))) // a few that repeat
		default:
			k = addr(rng.Uint32()) // spoofed
		}
		h := HashAddr(k)
		if !a.Count(k, h, 1) {
			a.Pass()
		}
		switch {
		case b.Crowded(h):
			b.Pass()
		case b.Recount(k, h, 1):
			recounted++
		case !b.Count(k, h, 1):
			b.Pass()
		}
		a.last = b.last // Recount's guess is b's own business
		if a != b {
			t.Fatalf("packet %d (%v): the summaries differ", i, k)
		}
	}
	if recounted < 2000 {
		t.Errorf("Recount counted %d packets, want the runs' (~5,000)", recounted)
	}
}
