package window

import (
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

func TestCounterSlides(t *testing.T) {
	width := 100 * ms // 10 buckets: a 1 s window
	var c Counter
	// 10 packets per 100 ms for 1 s: 100 packets in the window.
	for i := int64(0); i < 100; i++ {
		c.Add(i*10*ms, width, 100)
	}
	if c.Packets() != 100 || c.Bytes() != 10000 {
		t.Fatalf("packets=%d bytes=%d, want 100 and 10000", c.Packets(), c.Bytes())
	}
	pps, bps := c.Rates(time.Second)
	if pps != 100 || bps != 80000 {
		t.Fatalf("rates %v pps %v bps", pps, bps)
	}
	// Half a second later, half the window has slid out.
	c.Advance(1490*ms, width)
	if c.Packets() != 50 {
		t.Fatalf("after 0.5 s of silence: %d packets, want 50", c.Packets())
	}
	// A jump longer than the window empties it.
	c.Advance(5000*ms, width)
	if c.Packets() != 0 || c.Bytes() != 0 {
		t.Fatalf("after a long silence: %d packets", c.Packets())
	}
}

func TestCounterOutOfOrderAndBackwards(t *testing.T) {
	width := 100 * ms
	var c Counter
	c.Add(1000*ms, width, 1)
	c.Add(950*ms, width, 1) // slightly out of order: still counted
	if c.Packets() != 2 {
		t.Fatalf("out-of-order packet lost: %d", c.Packets())
	}
	c.Add(-5000*ms, width, 1) // the clock went back past the window
	if c.Packets() != 1 {
		t.Fatalf("after a clock reset: %d packets, want 1", c.Packets())
	}
}

func TestCounterSeedBucket(t *testing.T) {
	var c Counter
	c.SeedBucket(20, 15, 3, 300) // five buckets back: in the window
	c.SeedBucket(20, 10, 7, 700) // ten buckets back: outside, ignored
	c.SeedBucket(20, 21, 7, 700) // newer than head: ignored
	if c.Packets() != 3 || c.Bytes() != 300 {
		t.Fatalf("after seeding: %d packets, %d bytes; want 3, 300", c.Packets(), c.Bytes())
	}
	c.AddBucket(24, 1)
	if c.Packets() != 4 {
		t.Fatalf("seed lost early: %d packets", c.Packets())
	}
	c.AdvanceBucket(25) // bucket 15 leaves the window
	if c.Packets() != 1 || c.Bytes() != 1 {
		t.Fatalf("seed did not leave with its bucket: %d packets, %d bytes", c.Packets(), c.Bytes())
	}
}

// TestCounterNegativeTimes: packet times before 1970 (a hostile capture)
// give negative bucket indexes; they must count, not panic.
func TestCounterNegativeTimes(t *testing.T) {
	width := 100 * ms
	var c Counter
	for i := int64(0); i < 30; i++ {
		ts := -5000*ms + i*10*ms
		c.Add(ts, width, 1)
		c.SeedBucket(ts/width, ts/width-3, 1, 1)
	}
	if c.Packets() == 0 {
		t.Fatal("nothing counted before 1970")
	}
}

// TestAddBothMatchesAddBucket: AddBoth counts like AddBucket on both
// counters, through bucket rolls, gaps longer than the window and
// out-of-order packets, with packets counted by one counter between.
func TestAddBothMatchesAddBucket(t *testing.T) {
	var a, b, ra, rb Counter
	idx := int64(1000)
	for i := 0; i < 5000; i++ {
		switch {
		case i%997 == 0:
			idx += 3 * Buckets // a gap: the window empties
		case i%31 == 0:
			idx -= 2 // slightly out of order
		case i%7 == 0:
			idx++
		}
		n, both := 60+i%40, i%3 != 0
		if both {
			a.AddBoth(&b, idx, n)
			rb.AddBucket(idx, n)
		} else {
			a.AddBucket(idx, n)
			b.AdvanceBucket(idx)
			rb.AdvanceBucket(idx)
		}
		ra.AddBucket(idx, n)
		if a != ra || b != rb {
			t.Fatalf("packet %d (bucket %d): AddBoth gave %+v / %+v, AddBucket %+v / %+v", i, idx, a, b, ra, rb)
		}
	}
}
