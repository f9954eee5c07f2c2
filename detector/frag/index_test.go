package frag

import (
	"math/rand/v2"
	"testing"
)

// TestIndexAgainstMap drives the index with random inserts and removals
// under hashes drawn from a few values (long runs, wrapping at the table's
// end, every removal a backward shift through colliding entries) and
// checks each lookup against a Go map, and that the table never grows past
// the power of two at or above twice the cap.
func TestIndexAgainstMap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cap     int
		hashes  uint32 // distinct hash values drawn
		highBit bool   // hashes near the top of the table: runs wrap
	}{
		{"spread", 200, 1 << 30, false},
		{"few hashes", 64, 5, false},
		{"one hash", 16, 1, false},
		{"wrapping runs", 64, 3, true},
		{"grown past the first trains", warmTrains + 1000, 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.cap), uint64(tc.hashes)))
			x := newIndex(tc.cap)
			slab := make([]train, tc.cap)
			held := map[int32]uint32{} // slot -> hash
			var free []int32
			for i := range slab {
				slab[i].key.id = uint32(i)
				free = append(free, int32(i))
			}
			for op := 0; op < 20000; op++ {
				if len(free) > 0 && (len(held) == 0 || r.IntN(3) != 0) {
					i := free[len(free)-1]
					free = free[:len(free)-1]
					h := r.Uint32N(tc.hashes)
					if tc.highBit {
						h = ^h // the table's last positions
					}
					x.insert(h, i)
					held[i] = h
				} else {
					for i, h := range held {
						x.remove(h, i)
						delete(held, i)
						free = append(free, i)
						break
					}
				}
				if x.n != len(held) {
					t.Fatalf("op %d: n %d, want %d", op, x.n, len(held))
				}
				if len(x.pos) > indexInitial && len(x.pos) >= 4*tc.cap { // the power of two at or above 2*cap
					t.Fatalf("op %d: %d positions for a cap of %d", op, len(x.pos), tc.cap)
				}
				if op%97 == 0 {
					for i := range slab {
						h, in := held[int32(i)]
						if !in {
							h = uint32(i) // any hash: absent either way
						}
						got := x.find(slab, &slab[i].key, h)
						if in && got != int32(i) || !in && got >= 0 {
							t.Fatalf("op %d: find slot %d (held %v) = %d", op, i, in, got)
						}
					}
				}
			}
			if tc.cap > warmTrains && len(x.pos) == x.initial {
				t.Errorf("%d entries held at most, and the table never grew from %d positions", tc.cap, x.initial)
			}
		})
	}
}

// TestIndexHashSeeded: two trackers hash the same key differently (the
// seed is per tracker), and the hash covers every field of the key.
func TestIndexHashSeeded(t *testing.T) {
	a, b := newIndex(16), newIndex(16)
	k := key{src: src6.As16(), dst: dst6.As16(), id: 7, proto: 58, v6: true}
	if a.hash(&k) == b.hash(&k) {
		t.Errorf("two indexes gave key %+v the same hash %#x", k, a.hash(&k))
	}
	seen := map[uint32]string{a.hash(&k): "base"}
	for name, mut := range map[string]func(k *key){
		"src": func(k *key) { k.src[15] ^= 1 }, "src high": func(k *key) { k.src[0] ^= 1 },
		"dst": func(k *key) { k.dst[15] ^= 1 }, "dst high": func(k *key) { k.dst[0] ^= 1 },
		"id": func(k *key) { k.id++ }, "proto": func(k *key) { k.proto++ }, "family": func(k *key) { k.v6 = false },
	} {
		m := k
		mut(&m)
		h := a.hash(&m)
		if other, dup := seen[h]; dup {
			t.Errorf("changing %s gives the hash of %s", name, other)
		}
		seen[h] = name
	}
}
