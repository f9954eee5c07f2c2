package table

import (
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/detector/sketch"
)

// hashInt is the tests' hash for int keys (a murmur3 finalizer).
func hashInt(k int) uint64 {
	x := uint64(k)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func TestTableGetCreatesAndFinds(t *testing.T) {
	tb := New[int, int](4, hashInt)
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

// TestTableTouch: Touch finds and touches present keys (on the fast path
// and off it) and never creates one.
func TestTableTouch(t *testing.T) {
	tb := New[int, int](4, hashInt)
	if _, ok := tb.Touch(1, 10); ok || tb.Len() != 0 {
		t.Fatal("Touch created an entry")
	}
	v, _ := tb.Get(1, 10)
	*v = 7
	tb.Get(2, 11)
	for _, k := range []int{1, 1} { // off the fast path, then on it
		if p, ok := tb.Touch(k, 20); !ok || *p != 7 {
			t.Fatalf("Touch(%d) = %v, %v", k, p, ok)
		}
	}
	// 2 is now the stalest: a full table evicts it, not 1.
	tb.Get(3, 21)
	tb.Get(4, 22)
	tb.Get(5, 23)
	if _, ok := tb.Lookup(1); !ok {
		t.Fatal("Touch did not mark the entry as touched")
	}
}

// TestTableAgain: Again finds the key found last, and touches it (a full
// table then evicts another), and nothing else: not another present
// key, nor the last key once deleted, nor anything in an empty table.
func TestTableAgain(t *testing.T) {
	tb := New[int, int](4, hashInt)
	if _, ok := tb.Again(0, 1); ok {
		t.Fatal("Again found a key in an empty table")
	}
	tb.Get(2, 20)
	v, _ := tb.Get(1, 10) // found last, touched before 2
	*v = 7
	if p, ok := tb.Again(1, 30); !ok || *p != 7 {
		t.Fatalf("Again(1) = %v, %v after 1 was found last", p, ok)
	}
	if _, ok := tb.Again(2, 31); ok {
		t.Fatal("Again found 2, which was not found last")
	}
	// Again touched 1: 2 is now the stalest, and a full table evicts it.
	tb.Get(3, 31)
	tb.Get(4, 32)
	tb.Get(5, 33)
	if _, ok := tb.Lookup(1); !ok {
		t.Fatal("Again did not mark the entry as touched")
	}
	tb.Touch(1, 34)
	tb.Delete(1)
	if _, ok := tb.Again(1, 35); ok {
		t.Fatal("Again found a deleted key")
	}
}

// TestTableEvictsStalestWhenFull: the cap holds under a stream of new keys,
// every eviction is counted, and eviction prefers entries not touched
// recently (with a sample of 8 of 8 entries, exactly the stalest).
func TestTableEvictsStalestWhenFull(t *testing.T) {
	tb := New[int, int](8, hashInt)
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
	tb := New[int, int](100, hashInt)
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
	tb := New[int, [4]uint64](1024, hashInt)
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
	tb := New[int, int](10, hashInt)
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

// TestTableIndexMatchesMap drives a table and a Go map with the same
// random touches, inserts, deletes, sweeps and evictions, with a good hash
// and with one that piles keys into a few probe runs (backward-shift
// deletion and wrap-around at the end of the index), through the calls
// that hash the key and those given its hash, and checks that both hold
// the same keys and values throughout.
func TestTableIndexMatchesMap(t *testing.T) {
	colliding := func(k int) uint64 { return uint64(k%5) | 0xfffffff0 }
	for _, tc := range []struct {
		name   string
		hash   func(int) uint64
		hashed bool // through the calls given the key's hash (GetHashed, ...)
	}{
		{"good hash", hashInt, false},
		{"colliding hash", colliding, false},
		{"good hash, hashed calls", hashInt, true},
		{"colliding hash, hashed calls", colliding, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const capacity = 300
			tb := New[int, int](capacity, tc.hash)
			model := map[int]int{}
			x := uint64(1)
			rnd := func(n int) int { x = x*6364136223846793005 + 1442695040888963407; return int(x>>33) % n }
			check := func(step int) {
				t.Helper()
				if tb.Len() != len(model) {
					t.Fatalf("step %d: len %d, model %d", step, tb.Len(), len(model))
				}
				for k, want := range model {
					if v, ok := tb.Lookup(k); !ok || *v != want {
						t.Fatalf("step %d: key %d lost or wrong (ok=%v)", step, k, ok)
					}
				}
				seen := 0
				tb.Range(func(k int, v *int) bool {
					if model[k] != *v {
						t.Fatalf("step %d: Range gives %d=%d, model %d", step, k, *v, model[k])
					}
					seen++
					return true
				})
				if seen != len(model) {
					t.Fatalf("step %d: Range saw %d of %d", step, seen, len(model))
				}
			}
			for step := 0; step < 20000; step++ {
				k := rnd(1000)
				get, del, touch := tb.Get, tb.Delete, tb.Touch
				if tc.hashed {
					h := tb.Hash(k)
					get = func(k int, now int64) (*int, bool) { return tb.GetHashed(k, h, now) }
					del = func(k int) { tb.DeleteHashed(k, h) }
					touch = func(k int, now int64) (*int, bool) { return tb.TouchHashed(k, h, now) }
				}
				if v, ok := touch(k, int64(step)); ok != (model[k] != 0) || ok && *v != model[k] {
					t.Fatalf("step %d: Touch of %d gives ok=%v, the model %d", step, k, ok, model[k])
				}
				switch op := rnd(10); {
				case op < 6:
					before := tb.Evicted()
					v, _ := get(k, int64(step))
					*v = k + 1
					if tb.Evicted() != before { // drop the evicted key from the model
						for mk := range model {
							if _, ok := tb.Lookup(mk); !ok {
								delete(model, mk)
							}
						}
					}
					model[k] = k + 1
				case op < 9:
					del(k)
					delete(model, k)
				default:
					cut := rnd(1000)
					tb.Sweep(func(k int, _ *int, _ int64) bool { return k%97 == cut%97 })
					for mk := range model {
						if mk%97 == cut%97 {
							delete(model, mk)
						}
					}
				}
				if step%500 == 0 {
					check(step)
				}
			}
			check(-1)
		})
	}
}

func TestTableAddrKeysDoNotAllocate(t *testing.T) {
	tb := New[netip.Addr, [4]uint64](4096, sketch.HashAddr)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	i := 0
	for ; i < 20000; i++ {
		tb.Get(addr(i), int64(i))
	}
	allocs := testing.AllocsPerRun(10000, func() {
		tb.Get(addr(i), int64(i))
		tb.Lookup(addr(i - 100))
		i++
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocations per insert", allocs)
	}
	if tb.Len() != 4096 {
		t.Fatalf("len %d", tb.Len())
	}
}
