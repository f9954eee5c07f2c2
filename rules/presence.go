package rules

import "github.com/icmpids/icmpids/detector/table"

// presence is a filter of the keys a table may hold, in front of it: one
// bit per bucket of the keys' 64-bit hash (sketch.HashAddr), set when a
// key is inserted and cleared only when the filter is rebuilt from the
// table's keys. A clear bit proves the key absent, so a flood of new keys
// (a forged router or neighbor per packet) costs a bit read instead of a
// keyed hash and a probe of the table; a set bit says nothing (a lookup
// follows). Evicted and deleted keys leave their bits set (a lookup more);
// once half the bits are set the owner rebuilds it (rebuildDue). The hash
// need not be secret: an attacker who aims at set bits only buys the
// lookups the table did anyway. Fixed memory, no allocation after
// newPresence.
type presence struct {
	bits  []uint64
	shift uint // 64 - log2 of the bit count
	set   int  // bits set
}

// newPresence returns a filter of 2^logBits bits (logBits in [6, 24]).
func newPresence(logBits int) presence {
	logBits = min(max(logBits, 6), 24)
	return presence{bits: make([]uint64, 1<<(logBits-6)), shift: uint(64 - logBits)}
}

// presenceBits is the filter size (log2 of its bits) for a table of at
// most capacity keys: 16 bits a key (a full table sets 1 bit in 16), from
// 2^10 to 2^22 bits (512 KiB).
func presenceBits(capacity int) int {
	b := 10
	for b < 22 && 1<<b < 16*capacity {
		b++
	}
	return b
}

// add records a key of hash h as (maybe) held.
func (f *presence) add(h uint64) {
	i := h >> f.shift
	w, b := &f.bits[i>>6], uint64(1)<<(i&63)
	if *w&b == 0 {
		*w |= b
		f.set++
	}
}

// mayHold tells whether a key of hash h may be held: false proves it is
// not.
func (f *presence) mayHold(h uint64) bool {
	i := h >> f.shift
	return f.bits[i>>6]&(1<<(i&63)) != 0
}

// rebuildDue tells whether half the bits are set: the owner clears the
// filter (reset) and adds back the keys its table holds.
func (f *presence) rebuildDue() bool { return 2*f.set >= 64*len(f.bits) }

// reset clears every bit.
func (f *presence) reset() {
	clear(f.bits)
	f.set = 0
}

// warm writes the filter's pages before the first packet (see
// detector.Warmer).
func (f *presence) warm() { table.Prefault(f.bits) }
