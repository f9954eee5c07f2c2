// Package sketch holds the fixed-size summaries the engine keeps per attack:
// a HyperLogLog counter for distinct sources and a space-saving top-k for
// heavy hitters; and MiniHLL, a 64-register HyperLogLog rules keep per key
// for the fleet's mergeable distinct counts. All have a fixed memory
// footprint whatever an attacker sends, never allocate after creation,
// and are deterministic (no random seeds), so replays give identical
// figures.
package sketch

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// hllPrecision gives 2^10 = 1024 one-byte registers: 1 KiB per counter and
// a standard error of about 1.04/sqrt(1024) = 3.3 %.
const hllPrecision = 10

const hllRegisters = 1 << hllPrecision

// HLL is a HyperLogLog distinct-count estimator for IP addresses.
// The zero value is an empty counter.
type HLL struct {
	reg [hllRegisters]uint8
}

// Add counts a.
func (h *HLL) Add(a netip.Addr) { h.AddHash(HashAddr(a)) }

// AddHash counts the address whose HashAddr is x, for callers that hash
// the address once for several sketches.
func (h *HLL) AddHash(x uint64) {
	idx := x >> (64 - hllPrecision)
	w := x<<hllPrecision | 1<<(hllPrecision-1) // guard bit bounds the rank
	rank := uint8(bits.LeadingZeros64(w)) + 1
	if rank > h.reg[idx] {
		h.reg[idx] = rank
	}
}

// Estimate returns the estimated number of distinct addresses added.
func (h *HLL) Estimate() uint64 {
	return hllEstimate(h.reg[:], 0.7213/(1+1.079/float64(hllRegisters)))
}

// Reset empties the counter.
func (h *HLL) Reset() { h.reg = [hllRegisters]uint8{} }

// HashPrefix is HashAddr of the /24 (IPv4) or /64 (IPv6) holding a.
func HashPrefix(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		b[3] = 0
		return HashAddr(netip.AddrFrom4(b))
	}
	b := a.As16()
	clear(b[8:])
	return HashAddr(netip.AddrFrom16(b))
}

// HashAddr is a fixed, seedless 64-bit hash of an address (the murmur3
// finalizer over its 16-byte form), used for sketches and for sharding.
func HashAddr(a netip.Addr) uint64 {
	if a.Is4() {
		// The 16-byte form is ::ffff:a.b.c.d: its high half is 0 and its
		// low half is 0xffff<<32 | a.b.c.d. Reading the 4 bytes spares
		// As16's 16-byte reload of two 8-byte stores (a store-forwarding
		// stall on every packet).
		b4 := a.As4()
		return Mix64(0xffff<<32 | uint64(binary.BigEndian.Uint32(b4[:])))
	}
	b := a.As16()
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	if hi == 0 { // IPv4 (::ffff:a.b.c.d): Mix64(0) is 0, skip it
		return Mix64(lo)
	}
	return Mix64(Mix64(hi) ^ lo)
}

// Mix64 is the murmur3 64-bit finalizer: a fixed bijection that spreads
// every input bit over the output (HashAddr is built from it).
func Mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// TopKSize is how many heavy hitters a TopK keeps.
const TopKSize = 16

// TopK is a space-saving heavy-hitter summary (Metwally et al.) over
// TopKSize counters. While it has seen at most TopKSize distinct keys its
// counts are exact; after that a key that took over a slot inherits the
// slot's count, so each entry carries the bound of its overcount. The zero
// value is empty.
//
// Each slot also holds a 64-bit hash of its key, and a one-byte tag of
// that hash packed eight to a word: a lookup compares the key's tag with
// all sixteen in two word operations, and only a slot whose tag matches
// (1 in 256 by chance) costs a hash and a key comparison. A spoofed
// source, absent from the summary, thus costs a few instructions to show
// absent rather than a scan of sixteen hashes. Feed a summary through
// Add, or through AddHash with one hash function (HashAddr for
// addresses), not both.
type TopK[K comparable] struct {
	hashes   [TopKSize]uint64
	keys     [TopKSize]K
	counts   [TopKSize]uint64
	errs     [TopKSize]uint64
	tags     [TopKSize / 8]uint64 // byte i%8 of word i/8: slot i's tag (tagOf its hash)
	n        int
	replaced bool
	last     uint8 // the slot Add or Count matched or filled last (Add's and Recount's first guess)
	// The least count of a full summary, and the slots holding it (bit
	// i: slot i), kept so that a new key takes over a slot without a
	// scan for the minimum. Counts only grow: a slot leaves the mask when
	// its count does, and the mask is recomputed when it empties — once
	// every TopKSize new keys in a flood of spoofed sources.
	minCount uint64
	minMask  uint32
}

// Entry is one heavy hitter: Count may overstate its true count by at most
// Err, so Count-Err is a guaranteed lower bound.
type Entry[K comparable] struct {
	Key   K
	Count uint64
	Err   uint64
}

// Min is the guaranteed lower bound of the entry's count.
func (e Entry[K]) Min() uint64 { return e.Count - e.Err }

const (
	lowBits  = 0x0101010101010101
	low7Bits = 0x7f7f7f7f7f7f7f7f
)

// tagOf is the tag of hash h: its top byte.
func tagOf(h uint64) uint64 { return h >> 56 }

// Add counts one more occurrence of k (weight w). It is AddHash(k, 0, w):
// every key compares by value; the slot Add found last is tried first (a
// flood repeats one ICMP type).
func (t *TopK[K]) Add(k K, w uint64) {
	if i := t.last; int(i) < t.n && t.hashes[i] == 0 && t.keys[i] == k {
		t.bump(int(i), w)
		return
	}
	t.last = uint8(t.add(k, 0, w))
}

// Again is Add's first guess alone, small enough to inline: when k is the
// key Add counted last it counts w more of it and returns true; otherwise
// it changes nothing and returns false (then call Add).
// (Add's keys carry no hash: it is Recount with hash 0.)
func (t *TopK[K]) Again(k K, w uint64) bool { return t.Recount(k, 0, w) }

// AddHash counts one more occurrence of k (weight w), h being k's hash.
// One look at the tags finds k or, when it is absent and the summary
// full, k takes over the slot with the least count (the first of equals).
func (t *TopK[K]) AddHash(k K, h, w uint64) { t.add(k, h, w) }

// bump adds w to slot i's count.
func (t *TopK[K]) bump(i int, w uint64) {
	t.counts[i] += w
	if w != 0 && t.n == TopKSize {
		t.minMask &^= 1 << i
	}
}

// tagMatches has the high bit of each byte of x that is 0 set, and no
// other bit (no carry crosses a byte): with x the tags xor a key's tag
// broadcast, the slots whose tag is the key's.
func tagMatches(x uint64) uint64 { return ^((x&low7Bits + low7Bits) | x | low7Bits) }

// find is the slot holding k (hash h), or -1.
func (t *TopK[K]) find(k K, h uint64) int {
	want := tagOf(h) * lowBits
	m0, m1 := tagMatches(t.tags[0]^want), tagMatches(t.tags[1]^want)
	if m0|m1 == 0 {
		return -1 // the common answer in a flood of spoofed keys
	}
	return t.match(k, h, m0, m1)
}

// match is the slot holding k (hash h) among the candidates whose tags
// match (m0: slots 0-7, m1: 8-15, tagMatches'), or -1.
func (t *TopK[K]) match(k K, h, m0, m1 uint64) int {
	for ; m0 != 0; m0 &= m0 - 1 {
		if i := bits.TrailingZeros64(m0) >> 3; i < t.n && t.hashes[i] == h && t.keys[i] == k {
			return i
		}
	}
	for ; m1 != 0; m1 &= m1 - 1 {
		if i := 8 + bits.TrailingZeros64(m1)>>3; i < t.n && t.hashes[i] == h && t.keys[i] == k {
			return i
		}
	}
	return -1
}

// add counts k (hash h, weight w) and returns its slot.
func (t *TopK[K]) add(k K, h, w uint64) int {
	if i := t.find(k, h); i >= 0 {
		t.bump(i, w)
		return i
	}
	return t.put(k, h, w)
}

// Count is AddHash for a key that would take over no slot: it counts k
// when the summary holds it or has a free slot, and tells whether it did.
// When it did not (k is absent and the summary full) the caller says
// whether k takes over a slot (Replace) or goes uncounted (Pass): an
// admission test in front of the summary.
func (t *TopK[K]) Count(k K, h, w uint64) bool {
	// find, written out: a spoofed key costs no call.
	want := tagOf(h) * lowBits
	if m0, m1 := tagMatches(t.tags[0]^want), tagMatches(t.tags[1]^want); m0|m1 != 0 {
		if i := t.match(k, h, m0, m1); i >= 0 {
			t.bump(i, w)
			t.last = uint8(i)
			return true
		}
	}
	if t.n < TopKSize {
		t.last = uint8(t.put(k, h, w))
		return true
	}
	return false
}

// Recount is Count's first guess alone, small enough to inline: when k
// (hash h) is the key Count found or put last (a flood from one source),
// it counts w more of it and returns true; otherwise it changes nothing
// and returns false (then call Count).
func (t *TopK[K]) Recount(k K, h, w uint64) bool {
	i := t.last
	if int(i) >= t.n || t.hashes[i] != h || t.keys[i] != k {
		return false
	}
	t.counts[i] += w
	if w != 0 {
		t.minMask &^= 1 << i // a no-op on a summary with room (its mask is empty)
	}
	return true
}

// Crowded tells, in a few instructions (it inlines), that the key whose
// hash is h is absent from the summary and the summary is full: Count
// would count nothing and return false. False says nothing (call Count).
func (t *TopK[K]) Crowded(h uint64) bool {
	want := tagOf(h) * lowBits
	return t.n == TopKSize && tagMatches(t.tags[0]^want)|tagMatches(t.tags[1]^want) == 0
}

// Replace puts k (hash h, absent: Count said so) in the slot with the
// least count, as AddHash would, with weight w.
func (t *TopK[K]) Replace(k K, h, w uint64) { t.last = uint8(t.put(k, h, w)) }

// Pass records that a key absent from the full summary went uncounted:
// the summary is no longer exact.
func (t *TopK[K]) Pass() { t.replaced = true }

// put puts absent key k (hash h) in a free slot, or in the first of the
// slots with the least count, with weight w, and returns the slot.
func (t *TopK[K]) put(k K, h, w uint64) int {
	i, c, e := t.n, w, uint64(0)
	if i < TopKSize {
		t.n++
	} else {
		if t.minMask == 0 {
			t.findMin()
		}
		// The first of the slots with the least count, as one scan finds.
		i, e = bits.TrailingZeros32(t.minMask), t.minCount
		c += e
		if w != 0 {
			t.minMask &^= 1 << i
		}
		t.replaced = true
	}
	t.hashes[i], t.keys[i], t.counts[i], t.errs[i] = h, k, c, e
	sh := uint(i%8) * 8
	t.tags[i/8] = t.tags[i/8]&^(0xff<<sh) | tagOf(h)<<sh
	return i
}

// findMin sets minCount and minMask from the counts of a full summary.
func (t *TopK[K]) findMin() {
	m := t.counts[0]
	for _, c := range t.counts[1:] {
		m = min(m, c)
	}
	var mask uint32
	for i, c := range t.counts {
		if c == m {
			mask |= 1 << i
		}
	}
	t.minCount, t.minMask = m, mask
}

// Exact tells whether every key added still has its own exact counter
// (no more than TopKSize distinct keys were ever added).
func (t *TopK[K]) Exact() bool { return !t.replaced }

// Len is the number of keys held.
func (t *TopK[K]) Len() int { return t.n }

// MaxCount is the largest count held (an upper bound of the top key's
// true count), without allocating.
func (t *TopK[K]) MaxCount() uint64 {
	var m uint64
	for _, c := range t.counts[:t.n] {
		m = max(m, c)
	}
	return m
}

// Top returns up to n entries whose guaranteed count (Min) is at least
// minCount, largest guaranteed count first (ties: the earlier slot first,
// so results are deterministic).
func (t *TopK[K]) Top(n int, minCount uint64) []Entry[K] {
	out := make([]Entry[K], 0, t.n)
	for i := 0; i < t.n; i++ {
		if e := (Entry[K]{t.keys[i], t.counts[i], t.errs[i]}); e.Min() >= minCount {
			out = append(out, e)
		}
	}
	if n > len(out) {
		n = len(out)
	}
	// insertion sort: at most TopKSize entries
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Min() > out[j-1].Min(); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out[:n]
}

// Reset empties the summary.
func (t *TopK[K]) Reset() { *t = TopK[K]{} }
