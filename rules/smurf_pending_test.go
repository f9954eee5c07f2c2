package rules

import (
	"net/netip"
	"testing"
)

// TestPendingSet pins the outstanding-request table's contract: exact keys
// for IPv4 (and IPv4-mapped IPv6, the same host), fingerprints for IPv6,
// broadcast times kept apart (0 reads as never), the oldest live request
// evicted and counted when a bucket is full, and sweeps.
func TestPendingSet(t *testing.T) {
	const timeout = 10e9
	v4 := netip.MustParseAddr("192.0.2.7")
	mapped := netip.MustParseAddr("::ffff:192.0.2.7")
	v6 := netip.MustParseAddr("2001:db8::7")

	s := newPendingSet(64, timeout)
	s.touch(v4, 1, 100, false)
	s.touch(v6, 1, 200, true)
	for _, tc := range []struct {
		name            string
		host            netip.Addr
		id              uint16
		last, lastBcast int64
		ok              bool
	}{
		{"ipv4", v4, 1, 100, 0, true},
		{"ipv4-mapped is the same host", mapped, 1, 100, 0, true},
		{"other id", v4, 2, 0, 0, false},
		{"ipv6 with broadcast", v6, 1, 200, 200, true},
		{"other ipv6 host", netip.MustParseAddr("2001:db8::8"), 1, 0, 0, false},
	} {
		last, lb, ok := s.lookup(tc.host, tc.id)
		if last != tc.last || lb != tc.lastBcast || ok != tc.ok {
			t.Errorf("%s: lookup = (%d, %d, %v), want (%d, %d, %v)", tc.name, last, lb, ok, tc.last, tc.lastBcast, tc.ok)
		}
	}
	s.touch(mapped, 1, 300, true) // refreshes v4's entry, now with a broadcast
	if last, lb, _ := s.lookup(v4, 1); last != 300 || lb != 300 || s.Len() != 2 {
		t.Errorf("after refresh: last %d bcast %d len %d", last, lb, s.Len())
	}
	s.touch(v4, 1, 400, false) // a unicast request keeps the broadcast time
	if last, lb, _ := s.lookup(v4, 1); last != 400 || lb != 300 {
		t.Errorf("after unicast: last %d bcast %d", last, lb)
	}
	s.touch(v6, 1, 0, true) // a broadcast at time 0 reads as never, as before
	if _, lb, _ := s.lookup(v6, 1); lb != 0 {
		t.Errorf("broadcast at 0: bcast %d", lb)
	}
	s.sweep(350) // drops v6 (last 0), keeps v4 (last 400)
	if _, _, ok := s.lookup(v6, 1); ok || s.Len() != 1 {
		t.Errorf("after sweep: v6 kept=%v len %d", ok, s.Len())
	}

	// One bucket of four ways: the fifth live request evicts the oldest.
	b := newPendingSet(4, timeout)
	for i := range 4 {
		b.touch(v4, uint16(i), int64(10+i), false)
	}
	b.touch(v4, 1, 20, false) // id 0 is now the oldest
	b.touch(v4, 9, 30, false)
	if _, _, ok := b.lookup(v4, 0); ok || b.Evicted() != 1 || b.Len() != 4 {
		t.Errorf("full bucket: id 0 kept=%v evicted %d len %d", ok, b.Evicted(), b.Len())
	}
	b.touch(v4, 10, 30+timeout+1, false) // every other request timed out: no eviction
	if b.Evicted() != 1 {
		t.Errorf("timed-out way reused: evicted %d", b.Evicted())
	}
}
