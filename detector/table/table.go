// Package table provides Table, a map with a hard capacity for state keyed
// by values an attacker controls (addresses, fragment ids). When full it
// evicts the least recently touched of a small sample of entries and counts
// the eviction, so a flood of new keys costs evictions, not memory. The
// sample is the next few slab slots under a rotating hand: eviction is
// deterministic (replays give the same figures) and costs a few array
// reads, not a map iteration.
// Entries live in a slab reused through a free list: after warm-up, inserts
// and deletes do not allocate. The index is an open-addressing hash table
// of the caller's hash (power-of-two size, at most half full, linear
// probing, deletion by backward shift): a lookup reads one 8-byte index
// entry and the key it names, where a Go map keyed by netip.Addr hashed 24
// bytes and probed a swiss table. Sweep, DropIdle and Range visit entries
// in slab order, so a replay frees and reuses slots, and evicts, the same
// way every time.
package table

import (
	"hash/maphash"
	"math"
	"slices"
)

// sampleSize is how many entries an eviction looks at to pick the stalest.
const sampleSize = 8

// Table is a capacity-bounded map from K to V. It is not safe for
// concurrent use.
type Table[K comparable, V any] struct {
	hash func(K) uint64
	// index holds, per used position, the key's 32-bit hash in the high
	// half and its slab slot + 1 in the low half (0: empty position). A
	// key's home position is its hash & mask.
	index    []uint64
	mask     uint32
	n        int // entries held
	keys     []K
	vals     []V
	touched  []int64
	hashes   []uint32 // 32-bit hash of keys[i]: removal finds the index entry without rehashing
	free     []int32
	capacity int
	evicted  uint64
	hand     int   // next slab slot eviction samples
	last     int32 // slot of the last key found: floods hit one key again and again
}

// freeSlot marks a free slab slot in touched (no clock reads math.MinInt64).
const freeSlot = math.MinInt64

// New returns an empty table that holds at most capacity entries
// (capacity < 1 is treated as 1). hash is the index hash; nil (what every
// table keyed by attacker-chosen values must use) selects hash/maphash
// with a random per-table seed, so that nobody can aim keys at one index
// position and turn every lookup into a walk of a long probe chain. A
// caller's hash must give equal keys equal hashes, spread its low 32 bits
// and not allocate (tests use it to force collisions). Results never depend
// on the hash: eviction, Sweep and Range follow slab order. The index
// starts small and doubles as entries arrive: the worst case is not
// reserved up front.
func New[K comparable, V any](capacity int, hash func(K) uint64) *Table[K, V] {
	if capacity < 1 {
		capacity = 1
	}
	if hash == nil {
		hash = RandomHash[K]()
	}
	const initial = 16
	return &Table[K, V]{hash: hash, index: make([]uint64, initial), mask: initial - 1, capacity: capacity}
}

// RandomHash returns the hash New uses when given none: hash/maphash
// with a random seed of its own. Tables given the same one hash a key
// alike, so that a caller looking a key up in several hashes it once
// (Hash, then TouchHashed, GetHashed, DeleteHashed on each).
func RandomHash[K comparable]() func(K) uint64 {
	seed := maphash.MakeSeed()
	return func(k K) uint64 { return maphash.Comparable(seed, k) }
}

// Hash returns the table's hash of k, for the calls that take it
// (TouchHashed, GetHashed, DeleteHashed) on this table or another made
// with the same hash function.
func (t *Table[K, V]) Hash(k K) uint64 { return t.hash(k) }

// find returns the index position of k (hash h) and its slab slot, or
// slot -1 when k is absent.
func (t *Table[K, V]) find(k K, h uint32) (pos uint32, slot int32) {
	for pos = h & t.mask; ; pos = (pos + 1) & t.mask {
		e := t.index[pos]
		if e == 0 {
			return pos, -1
		}
		if uint32(e>>32) == h {
			if i := int32(uint32(e)) - 1; t.keys[i] == k {
				return pos, i
			}
		}
	}
}

// insert adds slab slot i with hash h to the index (i is not in it).
func (t *Table[K, V]) insert(h uint32, i int32) {
	pos := h & t.mask
	for t.index[pos] != 0 {
		pos = (pos + 1) & t.mask
	}
	t.index[pos] = uint64(h)<<32 | uint64(uint32(i)+1)
}

// unindex removes slab slot i from the index, shifting back the entries
// that follow it in its probe run so that no tombstone is left.
func (t *Table[K, V]) unindex(i int32) {
	h := t.hashes[i]
	want := uint32(i) + 1
	pos := h & t.mask
	for uint32(t.index[pos]) != want {
		pos = (pos + 1) & t.mask
	}
	for j := pos; ; {
		j = (j + 1) & t.mask
		e := t.index[j]
		if e == 0 {
			break
		}
		// The entry at j may move to pos when its home is not cyclically
		// within (pos, j]: it stays reachable from its home.
		if (j-uint32(e>>32))&t.mask >= (j-pos)&t.mask {
			t.index[pos] = e
			pos = j
		}
	}
	t.index[pos] = 0
}

// rehash doubles the index and reinserts every entry in slab order.
func (t *Table[K, V]) rehash() {
	size := 2 * len(t.index)
	t.index = Prefault(make([]uint64, size)) // probes read it before inserts write it
	t.mask = uint32(size - 1)
	for i := range t.keys {
		if t.touched[i] != freeSlot {
			t.insert(t.hashes[i], int32(i))
		}
	}
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
	return t.get(k, uint32(t.hash(k)), now)
}

// GetHashed is Get of k whose hash (Hash) is h.
func (t *Table[K, V]) GetHashed(k K, h uint64, now int64) (v *V, created bool) {
	if i := t.last; int(i) < len(t.keys) && t.keys[i] == k && t.touched[i] != freeSlot {
		t.touched[i] = now
		return &t.vals[i], false
	}
	return t.get(k, uint32(h), now)
}

// get is Get past the last key's check (h: k's hash).
func (t *Table[K, V]) get(k K, h uint32, now int64) (v *V, created bool) {
	if _, i := t.find(k, h); i >= 0 {
		t.touched[i] = now
		t.last = i
		return &t.vals[i], false
	}
	if t.n >= t.capacity {
		t.evictOne()
	}
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		var zero V
		t.keys[i], t.vals[i], t.touched[i], t.hashes[i] = k, zero, now, h
	} else {
		i = int32(len(t.keys))
		if len(t.keys) == cap(t.keys) {
			t.grow()
		}
		var zero V
		t.keys = append(t.keys, k)
		t.vals = append(t.vals, zero)
		t.touched = append(t.touched, now)
		t.hashes = append(t.hashes, h)
	}
	if 2*(t.n+1) > len(t.index) {
		t.rehash() // keeps the index at most half full; i is not in it yet
	}
	t.insert(h, i)
	t.n++
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
	t.hashes = slices.Grow(t.hashes, n)
}

// Again is Get's and Touch's first test alone, small enough to inline:
// when k is the key found last it marks k's entry as touched at now and
// returns it; otherwise it changes nothing and returns false (then call
// Get or Touch). A flood's every packet finds its key so, without a call.
func (t *Table[K, V]) Again(k K, now int64) (v *V, ok bool) {
	if i := t.last; int(i) < len(t.keys) && t.keys[i] == k && t.touched[i] != freeSlot {
		t.touched[i] = now
		return &t.vals[i], true
	}
	return nil, false
}

// Touch returns the entry for k and marks it as touched at now, like Get,
// but never creates one: ok is false when k is absent. Callers that admit
// keys only after some test (e.g. a rate estimate) call Touch first and Get
// on admission.
func (t *Table[K, V]) Touch(k K, now int64) (v *V, ok bool) {
	if t.n == 0 {
		return nil, false // (no hash to work out)
	}
	if i := t.last; int(i) < len(t.keys) && t.keys[i] == k && t.touched[i] != freeSlot {
		t.touched[i] = now
		return &t.vals[i], true
	}
	return t.touch(k, uint32(t.hash(k)), now)
}

// TouchHashed is Touch of k whose hash (Hash) is h.
func (t *Table[K, V]) TouchHashed(k K, h uint64, now int64) (v *V, ok bool) {
	if t.n == 0 {
		return nil, false
	}
	if i := t.last; int(i) < len(t.keys) && t.keys[i] == k && t.touched[i] != freeSlot {
		t.touched[i] = now
		return &t.vals[i], true
	}
	return t.touch(k, uint32(h), now)
}

// touch is Touch past the last key's check (h: k's hash).
func (t *Table[K, V]) touch(k K, h uint32, now int64) (v *V, ok bool) {
	if _, i := t.find(k, h); i >= 0 {
		t.touched[i] = now
		t.last = i
		return &t.vals[i], true
	}
	return nil, false
}

// Lookup returns the entry for k without creating or touching it.
func (t *Table[K, V]) Lookup(k K) (*V, bool) {
	if t.n == 0 {
		return nil, false
	}
	if _, i := t.find(k, uint32(t.hash(k))); i >= 0 {
		return &t.vals[i], true
	}
	return nil, false
}

// Delete removes k if present.
func (t *Table[K, V]) Delete(k K) {
	if _, i := t.find(k, uint32(t.hash(k))); i >= 0 {
		t.remove(i)
	}
}

// DeleteHashed is Delete of k whose hash (Hash) is h.
func (t *Table[K, V]) DeleteHashed(k K, h uint64) {
	if _, i := t.find(k, uint32(h)); i >= 0 {
		t.remove(i)
	}
}

// remove frees slab slot i, which holds an entry.
func (t *Table[K, V]) remove(i int32) {
	t.unindex(i)
	t.n--
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
		t.remove(victimIdx)
		t.evicted++
	}
}

// Sweep deletes every entry for which expired returns true, and returns how
// many it deleted. It visits all entries, in slab order: call it
// periodically, not per packet.
func (t *Table[K, V]) Sweep(expired func(k K, v *V, touched int64) bool) int {
	n := 0
	for i := range t.keys {
		if t.touched[i] != freeSlot && expired(t.keys[i], &t.vals[i], t.touched[i]) {
			t.remove(int32(i))
			n++
		}
	}
	return n
}

// DropIdle deletes every entry last touched before the given time and
// returns how many it deleted. Like Sweep, it visits all entries.
func (t *Table[K, V]) DropIdle(before int64) int {
	n := 0
	for i, touched := range t.touched {
		if touched != freeSlot && touched < before {
			t.remove(int32(i))
			n++
		}
	}
	return n
}

// Range calls fn for every entry, in slab order, until fn returns false.
// fn must not insert into or delete from the table.
func (t *Table[K, V]) Range(fn func(k K, v *V) bool) {
	for i := range t.keys {
		if t.touched[i] != freeSlot && !fn(t.keys[i], &t.vals[i]) {
			return
		}
	}
}

// Len is the number of entries held.
func (t *Table[K, V]) Len() int { return t.n }

// Cap is the table's capacity.
func (t *Table[K, V]) Cap() int { return t.capacity }

// Evicted is how many entries were evicted to make room since the table was made.
func (t *Table[K, V]) Evicted() uint64 { return t.evicted }
