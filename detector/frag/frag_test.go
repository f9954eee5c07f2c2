package frag

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

var (
	src4 = netip.MustParseAddr("198.51.100.7")
	dst4 = netip.MustParseAddr("10.0.0.5")
	src6 = netip.MustParseAddr("2001:db8:1::2")
	dst6 = netip.MustParseAddr("2001:db8:1::1")
	t0   = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC).UnixNano()
)

// train cuts [0, total) into pieces of size bytes for an ICMP echo train.
func makeTrain(v6 bool, id uint32, total, size int) []Fragment {
	src, dst, hl, proto := src4, dst4, 20, uint8(1)
	if v6 {
		src, dst, hl, proto = src6, dst6, 40, 58
	}
	var out []Fragment
	for off := 0; off < total; off += size {
		n := min(size, total-off)
		f := Fragment{IPv6: v6, Src: src, Dst: dst, ID: id, Proto: proto, Offset: off, Len: n,
			More: off+n < total, HeaderLen: hl, Sum: uint32(off)*2654435761 ^ uint32(n)}
		if off == 0 {
			f.HasICMP, f.Echo = true, true
			f.ICMPType = 8
			if v6 {
				f.ICMPType = 128
			}
		}
		out = append(out, f)
	}
	return out
}

type summary struct {
	newTrains, completed, oversize, overlap, tiny, dups int
	maxSize, oversizeAt                                 int
	conflict                                            Conflict
}

func run(t *testing.T, tr *Tracker, frags []Fragment) summary {
	t.Helper()
	var s summary
	s.oversizeAt = -1
	for i := range frags {
		f := frags[i]
		f.Time = t0 + int64(i)*int64(time.Millisecond)
		v := tr.Observe(&f)
		if v.NewTrain {
			s.newTrains++
		}
		if v.Completed {
			s.completed++
		}
		if v.Oversize {
			s.oversize++
			s.oversizeAt = i
		}
		if v.Overlap {
			s.overlap++
			s.conflict = v.Conflict
		}
		if v.Tiny {
			s.tiny++
		}
		if v.Duplicate {
			s.dups++
		}
		s.maxSize = max(s.maxSize, v.Size)
	}
	return s
}

func reversed(f []Fragment) []Fragment {
	out := make([]Fragment, len(f))
	for i := range f {
		out[len(f)-1-i] = f[i]
	}
	return out
}

func shuffled(f []Fragment, seed uint64) []Fragment {
	out := append([]Fragment(nil), f...)
	r := rand.New(rand.NewPCG(seed, 1))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func duplicated(f []Fragment) []Fragment {
	var out []Fragment
	for _, x := range f {
		out = append(out, x, x)
	}
	return out
}

func interleave(a, b []Fragment) []Fragment {
	var out []Fragment
	for i := 0; i < max(len(a), len(b)); i++ {
		if i < len(a) {
			out = append(out, a[i])
		}
		if i < len(b) {
			out = append(out, b[i])
		}
	}
	return out
}

func TestTrains(t *testing.T) {
	// IPv4: total length = 20 + payload; IPv6: payload length = fragmentable bytes.
	v4Limit := makeTrain(false, 1, 65535-20, 1480)
	v4Over := makeTrain(false, 2, 65536-20, 1480)
	v6Limit := makeTrain(true, 3, 65535, 1232)
	v6Over := makeTrain(true, 4, 65536, 1232)
	ping65000 := makeTrain(false, 5, 65000-20, 1480)
	ping8000 := makeTrain(false, 6, 8000-20, 1480)
	tests := []struct {
		name   string
		frags  []Fragment
		want   summary
		overAt int // index of the crossing fragment, -1 for none
	}{
		{"v4 65535 in order", v4Limit, summary{newTrains: 1, completed: 1, maxSize: 65535}, -1},
		{"v4 65536 in order", v4Over, summary{newTrains: 1, completed: 1, oversize: 1, maxSize: 65536}, len(v4Over) - 1},
		{"v4 65536 reversed", reversed(v4Over), summary{newTrains: 1, completed: 1, oversize: 1, maxSize: 65536}, 0},
		{"v4 65535 reversed", reversed(v4Limit), summary{newTrains: 1, completed: 1, maxSize: 65535}, -1},
		{"v4 65536 shuffled", shuffled(v4Over, 7), summary{newTrains: 1, completed: 1, oversize: 1, maxSize: 65536}, -2},
		{"v4 65536 duplicated", duplicated(v4Over), summary{newTrains: 1, completed: 1, oversize: 1, dups: len(v4Over), maxSize: 65536}, 2*len(v4Over) - 2},
		{"v6 65535 in order", v6Limit, summary{newTrains: 1, completed: 1, maxSize: 65535}, -1},
		{"v6 65536 in order", v6Over, summary{newTrains: 1, completed: 1, oversize: 1, maxSize: 65536}, len(v6Over) - 1},
		{"v6 65536 reversed", reversed(v6Over), summary{newTrains: 1, completed: 1, oversize: 1, maxSize: 65536}, 0},
		// 54 fragments in random order outgrow the 16 spans: the train can
		// no longer complete, but its size is still exact.
		{"v6 65535 shuffled", shuffled(v6Limit, 9), summary{newTrains: 1, maxSize: 65535}, -1},
		{"v6 8000 shuffled", shuffled(makeTrain(true, 8, 8000, 1232), 9), summary{newTrains: 1, completed: 1, maxSize: 8000}, -1},
		{"v6 65536 duplicated", duplicated(v6Over), summary{newTrains: 1, completed: 1, oversize: 1, dups: len(v6Over), maxSize: 65536}, 2*len(v6Over) - 2},
		{"interleaved v4 pair", interleave(v4Over, ping65000), summary{newTrains: 2, completed: 2, oversize: 1, maxSize: 65536}, -2},
		{"interleaved shuffled", shuffled(interleave(v6Over, ping8000), 3), summary{newTrains: 2, completed: 2, oversize: 1, maxSize: 65536}, -2},
		{"legal 65000 ping", ping65000, summary{newTrains: 1, completed: 1, maxSize: 65000}, -1},
		{"legal 8000 ping", ping8000, summary{newTrains: 1, completed: 1, maxSize: 8000}, -1},
		{"single last fragment past the end", []Fragment{{Src: src4, Dst: dst4, ID: 9, Proto: 17, Offset: 65480, Len: 32708, HeaderLen: 60}},
			summary{newTrains: 1, oversize: 1, maxSize: 60 + 65480 + 32708}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(DefaultConfig())
			got := run(t, tr, tc.frags)
			at := got.oversizeAt
			got.oversizeAt = 0
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			switch {
			case tc.overAt == -1 && at != -1, tc.overAt >= 0 && at != tc.overAt:
				t.Errorf("oversize at fragment %d, want %d", at, tc.overAt)
			}
			if tc.want.completed == tc.want.newTrains && tr.open.head != -1 {
				t.Errorf("open trains left after completion")
			}
		})
	}
}

func TestConflicts(t *testing.T) {
	f := func(off, n int, more bool, sum uint32) Fragment {
		return Fragment{Src: src4, Dst: dst4, ID: 242, Proto: 17, Offset: off, Len: n, More: more, HeaderLen: 20, Sum: sum}
	}
	tests := []struct {
		name     string
		frags    []Fragment
		overlap  int
		conflict Conflict
		dups     int
		tiny     int
	}{
		{"teardrop", []Fragment{f(0, 36, true, 1), f(24, 4, false, 2)}, 1, ConflictOverlap, 0, 0},
		{"nestea second first fragment", []Fragment{f(0, 18, true, 1), f(0, 232, true, 2)}, 1, ConflictOverlap, 0, 0},
		{"exact duplicate is not a conflict", []Fragment{f(0, 18, true, 1), f(0, 18, true, 1), f(48, 116, false, 3)}, 0, 0, 1, 0},
		{"same range different data", []Fragment{f(0, 408, true, 1), f(408, 400, true, 2), f(408, 400, true, 3)}, 1, ConflictData, 0, 0},
		{"data past the declared end", []Fragment{f(48, 116, false, 1), f(0, 304, true, 2)}, 1, ConflictOverlap, 0, 0},
		{"past end without overlap", []Fragment{f(8, 8, true, 1), f(16, 16, false, 2), f(64, 8, true, 3)}, 1, ConflictPastEnd, 0, 0},
		{"two different ends", []Fragment{f(8, 8, false, 1), f(32, 8, false, 2)}, 1, ConflictEnd, 0, 0},
		{"overlap reported once", []Fragment{f(0, 36, true, 1), f(24, 4, true, 2), f(16, 16, true, 3), f(8, 8, true, 4)}, 1, ConflictOverlap, 0, 0},
		{"adjacent is no overlap", []Fragment{f(0, 16, true, 1), f(16, 16, true, 2), f(32, 16, false, 3)}, 0, 0, 0, 0},
		{"tiny udp first", []Fragment{f(0, 0, true, 1), f(8, 8, false, 2)}, 0, 0, 0, 1},
		{"udp first of 8 is enough", []Fragment{f(0, 8, true, 1)}, 0, 0, 0, 0},
		{"tiny tcp first", []Fragment{{Src: src4, Dst: dst4, ID: 1, Proto: 6, Offset: 0, Len: 16, More: true, HeaderLen: 20}}, 0, 0, 0, 1},
		{"tiny icmpv6 after ext headers", []Fragment{{IPv6: true, Src: src6, Dst: dst6, ID: 1, Proto: 58, Len: 16, UpperOff: 16, More: true, HeaderLen: 40}}, 0, 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, New(DefaultConfig()), tc.frags)
			if got.overlap != tc.overlap || got.conflict != tc.conflict || got.dups != tc.dups || got.tiny != tc.tiny {
				t.Errorf("got overlap %d (%v) dups %d tiny %d, want %d (%v) %d %d",
					got.overlap, got.conflict, got.dups, got.tiny, tc.overlap, tc.conflict, tc.dups, tc.tiny)
			}
			if got.oversize != 0 {
				t.Errorf("conflicting train raised oversize")
			}
		})
	}
}

func TestTimeoutAndEviction(t *testing.T) {
	tr := New(Config{Timeout: 2 * time.Second, MaxTrains: 3})
	open := func(id uint32, at int64) Verdict {
		f := Fragment{Time: at, Src: src4, Dst: dst4, ID: id, Proto: 1, Len: 8, More: true, HeaderLen: 20}
		return tr.Observe(&f)
	}
	for id := uint32(1); id <= 3; id++ {
		open(id, t0)
	}
	if v := open(4, t0+1); !v.NewTrain {
		t.Fatal("train 4 not new")
	}
	if s := tr.Stats(); s.Len != 3 || s.Evicted != 1 {
		t.Fatalf("after 4 trains in a table of 3: %+v", s)
	}
	// Train 1 was the oldest: it is gone, so it comes back as new.
	if v := open(1, t0+2); !v.NewTrain {
		t.Error("evicted train 1 came back as known")
	}
	if v := open(4, t0+3); v.NewTrain {
		t.Error("train 4 forgotten")
	}
	tr.Expire(t0 + int64(2*time.Second) + 2)
	if s := tr.Stats(); s.Len != 0 || s.Timeouts != 3 {
		t.Fatalf("after the timeout: %+v", s)
	}
	// The timeout counts from the first fragment, not the last.
	open(7, t0+int64(3*time.Second))
	open(7, t0+int64(4*time.Second))
	if v := open(7, t0+int64(5*time.Second)); !v.NewTrain {
		t.Error("train 7 outlived its timeout")
	}
	// A jump back in packet time flushes what belongs to another time.
	open(8, t0+int64(5*time.Second))
	if v := open(8, t0-int64(time.Hour)); !v.NewTrain || tr.Len() != 1 {
		t.Errorf("jump back kept old trains: len %d", tr.Len())
	}
}

func TestSpanOverflow(t *testing.T) {
	tr := New(DefaultConfig())
	// 40 disjoint 8-byte fragments with holes between them: spans fill up
	// with nothing to merge; the train overflows but stays bounded.
	var frags []Fragment
	for i := 0; i < 40; i++ {
		frags = append(frags, Fragment{Src: src4, Dst: dst4, ID: 5, Proto: 17, Offset: 16 * i, Len: 8, More: true, HeaderLen: 20, Sum: uint32(i)})
	}
	got := run(t, tr, frags)
	if got.newTrains != 1 || got.overlap != 0 {
		t.Errorf("got %+v", got)
	}
	if s := tr.Stats(); s.Overflows != 40-MaxSpans {
		t.Errorf("overflows = %d, want %d", s.Overflows, 40-MaxSpans)
	}
	// A long in-order train merges its lowest spans and still completes.
	got = run(t, tr, makeTrain(false, 77, 64000, 1000))
	if got.completed != 1 || got.overlap != 0 {
		t.Errorf("64-fragment train: %+v", got)
	}
}

// TestMillionTrains opens a million trains that never complete: the table
// stays at its cap, the rest are evicted and counted, and the heap stays
// under a fixed bound.
func TestMillionTrains(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 1_000_000
	cfg := DefaultConfig()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tr := New(cfg)
	f := Fragment{Src: src4, Dst: dst4, Proto: 17, Len: 1480, More: true, HeaderLen: 20}
	for i := 0; i < n; i++ {
		f.Time = t0 + int64(i)*1000 // 1 µs apart: no timeouts
		f.ID = uint32(i)
		f.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tr.Observe(&f)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	s := tr.Stats()
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d trains: len %d cap %d evicted %d timeouts %d; heap %.1f MB (%.0f B/train held)",
		n, s.Len, s.Cap, s.Evicted, s.Timeouts, float64(heap)/1e6, float64(heap)/float64(s.Len))
	if s.Len != cfg.MaxTrains || s.Evicted != uint64(n-cfg.MaxTrains) {
		t.Errorf("len %d evicted %d, want %d and %d", s.Len, s.Evicted, cfg.MaxTrains, n-cfg.MaxTrains)
	}
	const bound = 40 << 20
	if heap > bound {
		t.Errorf("heap grew by %d bytes, over the %d bound", heap, bound)
	}
	runtime.KeepAlive(tr)
}

// TestObserveNoAllocs: once warm, tracking complete and incomplete trains
// does not allocate.
func TestObserveNoAllocs(t *testing.T) {
	tr := New(Config{Timeout: time.Minute, MaxTrains: 1024})
	frags := makeTrain(false, 1, 8000, 1480)
	now := t0
	step := func() {
		for i := range frags {
			now += 1000
			f := frags[i]
			f.Time = now
			f.ID = uint32(now/1000) % 4096
			tr.Observe(&f) // opens a new train per fragment: evictions
		}
		for i := range frags {
			now += 1000
			f := frags[i]
			f.Time = now
			tr.Observe(&f) // one train completing
		}
	}
	for i := 0; i < 2000; i++ {
		step()
	}
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Errorf("Observe allocates %.2f times per %d fragments", a, 2*len(frags))
	}
}

func BenchmarkObserveCompleteTrain(b *testing.B) {
	tr := New(DefaultConfig())
	frags := makeTrain(false, 1, 8000, 1480)
	b.ReportAllocs()
	now := t0
	for b.Loop() {
		for i := range frags {
			now++
			f := &frags[i]
			f.Time = now
			tr.Observe(f)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frags)), "ns/frag")
}

func BenchmarkObserveFlood(b *testing.B) {
	tr := New(DefaultConfig())
	f := Fragment{Src: src4, Dst: dst4, Proto: 17, Len: 1480, More: true, HeaderLen: 20}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		f.Time = t0 + int64(i)
		f.ID = uint32(i)
		tr.Observe(&f)
	}
}

// FuzzFragTrains feeds random fragment trains (7 bytes a fragment) to a
// small tracker: no panic, state within its cap, spans sorted and bounded,
// one-shot flags at most once per train.
func FuzzFragTrains(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 10, 1, 0, 0, 0, 0, 3, 5, 0, 0})
	f.Add([]byte{1, 0x1f, 0xff, 0xff, 0xff, 0, 1, 1, 0, 0, 0, 8, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := New(Config{Timeout: time.Second, MaxTrains: 8})
		now := t0
		oversize := map[uint32]int{}
		for len(data) >= 7 {
			b := data[:7]
			data = data[7:]
			id := uint32(b[0] & 0x0f)
			v6 := b[0]&0x10 != 0
			off := int(binary.BigEndian.Uint16(b[1:3])&0x1fff) * 8
			n := int(binary.BigEndian.Uint16(b[3:5])) - 8
			now += int64(b[6]) * int64(10*time.Millisecond)
			fr := Fragment{Time: now, IPv6: v6, Src: src4, Dst: dst4, ID: id, Proto: b[5] & 7, Offset: off, Len: n,
				More: b[6]&1 != 0, HeaderLen: 20 + int(b[5]>>4)*4, UpperOff: int(b[5] >> 6), Sum: uint32(b[6])}
			v := tr.Observe(&fr)
			if v.NewTrain {
				delete(oversize, id)
			}
			if v.Oversize {
				oversize[id]++
				if oversize[id] > 1 {
					t.Fatalf("oversize twice for train %d", id)
				}
			}
			if tr.Len() > 8 || len(tr.slab) > 8 {
				t.Fatalf("table over its cap: len %d slab %d", tr.Len(), len(tr.slab))
			}
		}
		tr.index.slots(func(i int32) {
			x := &tr.slab[i]
			for j := 1; j < int(x.n); j++ {
				if x.spans[j-1].start > x.spans[j].start {
					t.Fatalf("spans out of order: %+v", x.spans[:x.n])
				}
			}
		})
	})
}
