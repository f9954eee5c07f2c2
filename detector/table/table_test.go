package table

import "testing"

func TestTableGetCreatesAndFinds(t *testing.T) {
	tb := New[int, int](4)
	v, created := tb.Get(1, 10)
	if !created || *v != 0 {
		t.Fatalf("first Get: created=%v v=%d", created, *v)
	}
	*v = 42
	v, created = tb.Get(1, 11)
	if created || *v != 42 {
		t.Fatalf("second Get: created=%v v=%d", created, *v)
	}
	if p, ok := tb.Lookup(1); !ok || *p != 42 {
		t.Fatal("Lookup lost the entry")
	}
	if _, ok := tb.Lookup(2); ok {
		t.Fatal("Lookup found an absent key")
	}
}

// TestTableEvictsStalestWhenFull: the cap holds under a stream of new keys,
// every eviction is counted, and eviction prefers entries not touched
// recently (with a sample of 8 of 8 entries, exactly the stalest).
func TestTableEvictsStalestWhenFull(t *testing.T) {
	tb := New[int, int](8)
	for k := 0; k < 8; k++ {
		tb.Get(k, int64(k))
	}
	tb.Get(0, 100) // touch key 0: now key 1 is the stalest
	tb.Get(99, 101)
	if _, ok := tb.Lookup(1); ok {
		t.Fatal("the stalest entry (key 1) survived the eviction")
	}
	if _, ok := tb.Lookup(0); !ok {
		t.Fatal("a recently touched entry was evicted")
	}
	if tb.Len() != 8 || tb.Evicted() != 1 {
		t.Fatalf("len=%d evicted=%d", tb.Len(), tb.Evicted())
	}
	for k := 1000; k < 101000; k++ {
		tb.Get(k, int64(k))
	}
	if tb.Len() != 8 || tb.Evicted() != 100001 {
		t.Fatalf("after 100,000 new keys: len=%d evicted=%d", tb.Len(), tb.Evicted())
	}
}

func TestTableDeleteAndSweep(t *testing.T) {
	tb := New[int, int](100)
	for k := 0; k < 50; k++ {
		v, _ := tb.Get(k, int64(k))
		*v = k
	}
	tb.Delete(3)
	if _, ok := tb.Lookup(3); ok || tb.Len() != 49 {
		t.Fatal("Delete did not delete")
	}
	n := tb.Sweep(func(_ int, _ *int, touched int64) bool { return touched < 25 })
	if n != 24 || tb.Len() != 25 {
		t.Fatalf("Sweep removed %d, len %d", n, tb.Len())
	}
	seen := 0
	tb.Range(func(k int, v *int) bool {
		if *v != k {
			t.Errorf("entry %d holds %d after slot reuse", k, *v)
		}
		seen++
		return true
	})
	if seen != 25 {
		t.Fatalf("Range saw %d", seen)
	}
	// Slots freed by Delete and Sweep are reused with zero values.
	v, created := tb.Get(1000, 0)
	if !created || *v != 0 {
		t.Fatalf("reused slot not zeroed: %d", *v)
	}
}

func TestTableSteadyStateDoesNotAllocate(t *testing.T) {
	tb := New[int, [4]uint64](1024)
	k := 0
	for ; k < 5000; k++ { // warm up: fill, evict, reuse slots
		tb.Get(k, int64(k))
	}
	allocs := testing.AllocsPerRun(10000, func() {
		tb.Get(k, int64(k))
		k++
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocations per insert with eviction", allocs)
	}
}

func TestTableDropIdle(t *testing.T) {
	tb := New[int, int](10)
	for k := 0; k < 10; k++ {
		tb.Get(k, int64(k*10))
	}
	if n := tb.DropIdle(50); n != 5 || tb.Len() != 5 {
		t.Fatalf("DropIdle removed %d, %d left", n, tb.Len())
	}
	if _, ok := tb.Lookup(4); ok {
		t.Fatal("idle entry 4 kept")
	}
	if _, ok := tb.Lookup(5); !ok {
		t.Fatal("entry 5, touched at the cut, dropped")
	}
}
