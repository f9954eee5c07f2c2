package table

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/detector/sketch"
)

// unmix64 inverts the murmur3 finalizer sketch.HashAddr is built from.
func unmix64(y uint64) uint64 {
	inv := func(c uint64) uint64 { // multiplicative inverse mod 2^64 (c odd)
		x := c
		for i := 0; i < 5; i++ {
			x *= 2 - c*x
		}
		return x
	}
	y ^= y >> 33
	y *= inv(0xc4ceb9fe1a85ec53)
	y ^= y >> 33
	y *= inv(0xff51afd7ed558ccd)
	y ^= y >> 33
	return y
}

// collidingAddrs returns n distinct IPv6 addresses, one per /64, that all
// have the same sketch.HashAddr: what an attacker who knows the (public,
// unkeyed) hash can send toward a sensor.
func collidingAddrs(n int, h uint64) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		hi := 0x20010db800000000 | uint64(i+1)
		lo := unmix64(h) ^ sketch.Mix64(hi)
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], hi)
		binary.BigEndian.PutUint64(b[8:], lo)
		out[i] = netip.AddrFrom16(b)
	}
	return out
}

// maxProbe is the longest distance, in index positions, from an entry's
// home position to where it sits: the cost of the worst lookup.
func maxProbe[K comparable, V any](t *Table[K, V]) int {
	worst := 0
	for pos, e := range t.index {
		if e == 0 {
			continue
		}
		home := uint32(e>>32) & t.mask
		if d := int((uint32(pos) - home) & t.mask); d > worst {
			worst = d
		}
	}
	return worst
}

// TestDefaultHashResistsCollisions: keys chosen to collide under the
// public address hash pile into one probe chain when that hash indexes
// the table (the attack), and spread out under the default keyed hash.
func TestDefaultHashResistsCollisions(t *testing.T) {
	keys := collidingAddrs(4000, 0x1234_5678_9abc_def0)
	if sketch.HashAddr(keys[0]) != sketch.HashAddr(keys[1]) || keys[0] == keys[1] {
		t.Fatal("the test's colliding keys do not collide")
	}
	for _, tc := range []struct {
		name     string
		hash     func(netip.Addr) uint64
		minProbe int
		maxProbe int
	}{
		{"public hash (attackable)", sketch.HashAddr, 3000, 1 << 30},
		{"default keyed hash", nil, 0, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := New[netip.Addr, int](8192, tc.hash)
			for i, k := range keys {
				tb.Get(k, int64(i))
			}
			if got := maxProbe(tb); got < tc.minProbe || got > tc.maxProbe {
				t.Fatalf("longest probe chain %d, want [%d, %d]", got, tc.minProbe, tc.maxProbe)
			}
		})
	}
}
