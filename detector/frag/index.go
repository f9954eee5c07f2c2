package frag

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// index maps a train's key to its slab slot: an open-addressing hash table
// (power-of-two size, at most half full, linear probing, deletion by
// backward shift) of a seeded hash of the key. An entry holds the key's
// 32-bit hash in its high half and the slot + 1 in its low half (0: empty
// position), so a probe compares 8 bytes before it reads a train's key.
// The table is allocated at the first insert, for the tracker's first
// trains (warmTrains), and doubles as trains arrive, up to twice the
// tracker's cap: the worst case is not reserved up front, and once that
// size is reached inserts and deletes never allocate. Its hash is seeded at
// random per tracker (the key is attacker-chosen: sources, ids), so nobody
// can aim keys at one position and make every lookup walk a long chain.
// Which train is kept or evicted never depends on the hash (the tracker's
// lists decide).
type index struct {
	pos     []uint64 // nil until the first insert
	mask    uint32
	n       int
	initial int // the size allocated at the first insert
	max     int // the size the table may reach
	seed    [4]uint64
}

// indexInitial is the smallest table.
const indexInitial = 16

// warmTrains is how many trains the tracker makes room for at its first
// fragment (slab and index), as the Go map it replaces was sized: the
// tables of a test's or a capture's first thousands of trains are
// allocated once, not doubled one train after another.
const warmTrains = 4096

func newIndex(capacity int) index {
	size := func(n int) int {
		s := indexInitial
		for s < 2*n {
			s *= 2
		}
		return s
	}
	x := index{initial: size(min(capacity, warmTrains)), max: size(capacity)}
	for i := range x.seed {
		x.seed[i] = rand.Uint64() | 1
	}
	return x
}

// mix is wyhash's multiply-and-fold.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash is the seeded hash of k, 32 bits.
func (x *index) hash(k *key) uint32 {
	s := &x.seed
	h := mix(binary.LittleEndian.Uint64(k.src[0:8])^s[0], binary.LittleEndian.Uint64(k.src[8:16])^s[1])
	h = mix(h^binary.LittleEndian.Uint64(k.dst[0:8])^s[2], binary.LittleEndian.Uint64(k.dst[8:16])^s[3])
	tail := uint64(k.id) | uint64(k.proto)<<32
	if k.v6 {
		tail |= 1 << 40
	}
	h = mix(h^tail^s[1], s[0]^0x9e3779b97f4a7c15)
	return uint32(h) ^ uint32(h>>32)
}

// find returns the slot of the train with key k (hash h), or -1.
func (x *index) find(slab []train, k *key, h uint32) int32 {
	if x.n == 0 {
		return -1
	}
	for p := h & x.mask; ; p = (p + 1) & x.mask {
		e := x.pos[p]
		if e == 0 {
			return -1
		}
		if uint32(e>>32) == h {
			if i := int32(uint32(e)) - 1; slab[i].key == *k {
				return i
			}
		}
	}
}

// insert indexes slot i under hash h; the key must be absent.
func (x *index) insert(h uint32, i int32) {
	if x.pos == nil {
		x.pos, x.mask = make([]uint64, x.initial), uint32(x.initial-1)
	}
	if 2*(x.n+1) > len(x.pos) && len(x.pos) < x.max {
		x.grow()
	}
	x.put(h, i)
	x.n++
}

func (x *index) put(h uint32, i int32) {
	p := h & x.mask
	for x.pos[p] != 0 {
		p = (p + 1) & x.mask
	}
	x.pos[p] = uint64(h)<<32 | uint64(uint32(i)+1)
}

// grow doubles the table and re-places every entry.
func (x *index) grow() {
	old := x.pos
	x.pos = make([]uint64, 2*len(old))
	x.mask = uint32(len(x.pos) - 1)
	for _, e := range old {
		if e != 0 {
			x.put(uint32(e>>32), int32(uint32(e))-1)
		}
	}
}

// remove drops slot i (hash h) from the table, shifting back the entries
// that follow it in its run so that no probe chain is cut.
func (x *index) remove(h uint32, i int32) {
	want := uint64(h)<<32 | uint64(uint32(i)+1)
	p := h & x.mask
	for x.pos[p] != want {
		if x.pos[p] == 0 {
			return // not indexed
		}
		p = (p + 1) & x.mask
	}
	// Backward shift: move up each later entry of the run that may sit
	// at the hole (its home is not cyclically in (hole, its position]).
	hole := p
	for q := (p + 1) & x.mask; x.pos[q] != 0; q = (q + 1) & x.mask {
		home := uint32(x.pos[q]>>32) & x.mask
		if (q-home)&x.mask >= (q-hole)&x.mask {
			x.pos[hole] = x.pos[q]
			hole = q
		}
	}
	x.pos[hole] = 0
	x.n--
}

// slots calls fn with every indexed slot (tests).
func (x *index) slots(fn func(i int32)) {
	for _, e := range x.pos {
		if e != 0 {
			fn(int32(uint32(e)) - 1)
		}
	}
}
