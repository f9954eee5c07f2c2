// Package table provides Table, a map with a hard capacity for state keyed
// by values an attacker controls (addresses, fragment ids). When full it
// evicts the least recently touched of a small sample of entries and counts
// the eviction, so a flood of new keys costs evictions, not memory. The
// sample is the next few slab slots under a rotating hand: eviction is
// deterministic (replays give the same figures) and costs a few array
// reads, not a map iteration.
// Entries live in a slab reused through a free list: after warm-up, inserts
// and deletes do not allocate.
package table

import (
	"math"
	"slices"
)

// sampleSize is how many entries an eviction looks at to pick the stalest.
const sampleSize = 8

// Table is a capacity-bounded map from K to V. It is not safe for
// concurrent use.
type Table[K comparable, V any] struct {
	index    map[K]int32
	keys     []K
	vals     []V
	touched  []int64
	free     []int32
	capacity int
	evicted  uint64
	hand     int   // next slab slot eviction samples
	last     int32 // slot of the last key found: floods hit one key again and again
}

// freeSlot marks a free slab slot in touched (no clock reads math.MinInt64).
const freeSlot = math.MinInt64

// New returns an empty table that holds at most capacity entries
// (capacity < 1 is treated as 1).
func New[K comparable, V any](capacity int) *Table[K, V] {
	if capacity < 1 {
		capacity = 1
	}
	hint := capacity
	if hint > 4096 {
		hint = 4096 // grow on demand; do not reserve the worst case up front
	}
	return &Table[K, V]{index: make(map[K]int32, hint), capacity: capacity}
}

// Get returns the entry for k, creating a zero one when absent (evicting
// another if the table is full). now is the caller's clock (packet time in
// nanoseconds) and marks the entry as touched. The pointer is valid until
// the next call that inserts into or deletes from the table.
func (t *Table[K, V]) Get(k K, now int64) (v *V, created bool) {
	if i := t.last; int(i) < len(t.keys) && t.keys[i] == k && t.touched[i] != freeSlot {
		t.touched[i] = now
		return &t.vals[i], false
	}
	if i, ok := t.index[k]; ok {
		t.touched[i] = now
		t.last = i
		return &t.vals[i], false
	}
	if len(t.index) >= t.capacity {
		t.evictOne()
	}
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		var zero V
		t.keys[i], t.vals[i], t.touched[i] = k, zero, now
	} else {
		i = int32(len(t.keys))
		if len(t.keys) == cap(t.keys) {
			t.grow()
		}
		var zero V
		t.keys = append(t.keys, k)
		t.vals = append(t.vals, zero)
		t.touched = append(t.touched, now)
	}
	t.index[k] = i
	t.last = i
	return &t.vals[i], true
}

// grow doubles the slab (at least 64 entries, at most the capacity).
// append alone grows large slices by a quarter at a time: a table of large
// values filling up to its capacity copied its slab some ten times over.
func (t *Table[K, V]) grow() {
	n := min(max(64, 2*cap(t.keys)), t.capacity) - len(t.keys)
	if n <= 0 {
		return
	}
	t.keys = slices.Grow(t.keys, n)
	t.vals = slices.Grow(t.vals, n)
	t.touched = slices.Grow(t.touched, n)
}

// Lookup returns the entry for k without creating or touching it.
func (t *Table[K, V]) Lookup(k K) (*V, bool) {
	if i, ok := t.index[k]; ok {
		return &t.vals[i], true
	}
	return nil, false
}

// Delete removes k if present.
func (t *Table[K, V]) Delete(k K) {
	if i, ok := t.index[k]; ok {
		t.remove(k, i)
	}
}

func (t *Table[K, V]) remove(k K, i int32) {
	delete(t.index, k)
	var zeroK K
	var zeroV V
	t.keys[i], t.vals[i], t.touched[i] = zeroK, zeroV, freeSlot
	t.free = append(t.free, i)
}

// evictOne removes the stalest of the next sampleSize used slab slots
// after the hand.
func (t *Table[K, V]) evictOne() {
	var victimIdx int32 = -1
	n := len(t.keys)
	for seen, tries := 0, 0; seen < sampleSize && tries < n; tries++ {
		i := int32(t.hand)
		if t.hand++; t.hand >= n {
			t.hand = 0
		}
		if t.touched[i] == freeSlot {
			continue
		}
		if victimIdx < 0 || t.touched[i] < t.touched[victimIdx] {
			victimIdx = i
		}
		seen++
	}
	if victimIdx >= 0 {
		t.remove(t.keys[victimIdx], victimIdx)
		t.evicted++
	}
}

// Sweep deletes every entry for which expired returns true, and returns how
// many it deleted. It visits all entries: call it periodically, not per packet.
func (t *Table[K, V]) Sweep(expired func(k K, v *V, touched int64) bool) int {
	n := 0
	for k, i := range t.index {
		if expired(k, &t.vals[i], t.touched[i]) {
			t.remove(k, i)
			n++
		}
	}
	return n
}

// DropIdle deletes every entry last touched before the given time and
// returns how many it deleted. Like Sweep, it visits all entries.
func (t *Table[K, V]) DropIdle(before int64) int {
	n := 0
	for k, i := range t.index {
		if t.touched[i] < before {
			t.remove(k, i)
			n++
		}
	}
	return n
}

// Range calls fn for every entry until fn returns false. fn must not insert
// into or delete from the table.
func (t *Table[K, V]) Range(fn func(k K, v *V) bool) {
	for k, i := range t.index {
		if !fn(k, &t.vals[i]) {
			return
		}
	}
}

// Len is the number of entries held.
func (t *Table[K, V]) Len() int { return len(t.index) }

// Cap is the table's capacity.
func (t *Table[K, V]) Cap() int { return t.capacity }

// Evicted is how many entries were evicted to make room since the table was made.
func (t *Table[K, V]) Evicted() uint64 { return t.evicted }
