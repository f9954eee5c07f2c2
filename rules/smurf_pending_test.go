package rules

import (
	"net/netip"
	"testing"
)

// TestPendingSet pins the outstanding-request table's contract: IPv4 and
// IPv4-mapped IPv6 are the same host, other hosts and ids are apart,
// broadcast times kept apart (0 reads as never), requests kept to the
// microsecond, the oldest live request evicted and counted when a bucket
// is full, and sweeps.
func TestPendingSet(t *testing.T) {
	const timeout = 10e9
	const us = 1000
	v4 := netip.MustParseAddr("192.0.2.7")
	mapped := netip.MustParseAddr("::ffff:192.0.2.7")
	v6 := netip.MustParseAddr("2001:db8::7")

	s := newPendingSet(64, timeout)
	s.touch(v4, 1, 100*us, false)
	s.touch(v6, 1, 200*us, true)
	for _, tc := range []struct {
		name       string
		host       netip.Addr
		id         uint16
		lastBcast  int64
		ok, liveAt bool
	}{
		{"ipv4", v4, 1, 0, true, true},
		{"ipv4-mapped is the same host", mapped, 1, 0, true, true},
		{"other id", v4, 2, 0, false, false},
		{"ipv6 with broadcast", v6, 1, 200 * us, true, true},
		{"other ipv6 host", netip.MustParseAddr("2001:db8::8"), 1, 0, false, false},
		{"other ipv4 host", netip.MustParseAddr("192.0.2.8"), 1, 0, false, false},
	} {
		live, lb, ok := s.lookup(tc.host, tc.id, 100*us+timeout)
		if live != tc.liveAt || lb != tc.lastBcast || ok != tc.ok {
			t.Errorf("%s: lookup = (%v, %d, %v), want (%v, %d, %v)", tc.name, live, lb, ok, tc.liveAt, tc.lastBcast, tc.ok)
		}
	}
	// The time-out is exact to the microsecond.
	if live, _, _ := s.lookup(v4, 1, 100*us+timeout+us); live {
		t.Errorf("v4 live 1 µs past its time-out")
	}
	s.touch(mapped, 1, 300*us, true) // refreshes v4's entry, now with a broadcast
	if live, lb, _ := s.lookup(v4, 1, 300*us+timeout); !live || lb != 300*us || s.Len() != 2 {
		t.Errorf("after refresh: live %v bcast %d len %d", live, lb, s.Len())
	}
	s.touch(v4, 1, 400*us, false) // a unicast request keeps the broadcast time
	if live, lb, _ := s.lookup(v4, 1, 400*us+timeout); !live || lb != 300*us {
		t.Errorf("after unicast: live %v bcast %d", live, lb)
	}
	s.touch(v6, 1, 0, true) // a broadcast at time 0 reads as never, as before
	if _, lb, _ := s.lookup(v6, 1, 0); lb != 0 {
		t.Errorf("broadcast at 0: bcast %d", lb)
	}
	s.sweep(350*us + timeout) // drops v6 (last 0), keeps v4 (last 400 µs)
	if _, _, ok := s.lookup(v6, 1, 0); ok || s.Len() != 1 {
		t.Errorf("after sweep: v6 kept=%v len %d", ok, s.Len())
	}

	// One bucket of four ways: the fifth live request evicts the oldest.
	b := newPendingSet(4, timeout)
	for i := range 4 {
		b.touch(v4, uint16(i), int64(10+i)*us, false)
	}
	b.touch(v4, 1, 20*us, false) // id 0 is now the oldest
	b.touch(v4, 9, 30*us, false)
	if _, _, ok := b.lookup(v4, 0, 30*us); ok || b.Evicted() != 1 || b.Len() != 4 {
		t.Errorf("full bucket: id 0 kept=%v evicted %d len %d", ok, b.Evicted(), b.Len())
	}
	b.touch(v4, 10, 30*us+timeout+us, false) // every other request timed out: no eviction
	if b.Evicted() != 1 {
		t.Errorf("timed-out way reused: evicted %d", b.Evicted())
	}
}

// The 32-bit microsecond times wrap every 71 minutes of packet time: a
// request just before a wrap still solicits replies just after it, and
// times out as it should.
func TestPendingSetTimeWrap(t *testing.T) {
	const timeout = 600e9 // the largest request_timeout
	h := netip.MustParseAddr("192.0.2.7")
	wrap := int64(1<<32) * 1000 * 400_000 // a multiple of 2^32 µs, in ns
	s := newPendingSet(64, timeout)
	s.touch(h, 1, wrap-60e9, false)
	for _, tc := range []struct {
		at   int64
		live bool
	}{
		{wrap - 60e9, true}, {wrap, true}, {wrap - 60e9 + timeout, true}, {wrap - 60e9 + timeout + 1000, false},
	} {
		if live, _, ok := s.lookup(h, 1, tc.at); !ok || live != tc.live {
			t.Errorf("at %d: live %v ok %v, want live %v", tc.at-wrap, live, ok, tc.live)
		}
	}
	s.sweep(wrap + 10*timeout/10)
	if s.Len() != 0 {
		t.Errorf("sweep after the time-out across the wrap kept %d", s.Len())
	}
}

// Attack twin of the 32-bit times: a victim's request, then a quiet gap in
// packet time longer than the ages a way can read (2^31 µs, ~35.8
// minutes) and shorter than twice that. Read modulo 2^32 µs, the old
// request's age comes out negative, as fresh: a reflected flood's replies
// to that id would read as solicited, and the stale entry would look the
// newest of its bucket. The sweep after the gap frees it; a gap within the
// ages' range still sweeps by age.
func TestPendingSetQuietGap(t *testing.T) {
	const timeout = 10e9
	h := netip.MustParseAddr("192.0.2.7")
	t0 := int64(1_700_000_000) * 1e9
	for _, tc := range []struct {
		name string
		gap  int64
		kept bool
	}{
		{"gap of 40 minutes", 40 * 60e9, false},
		{"gap of 70 minutes", 70 * 60e9, false},
		{"gap of 5 s, within the time-out", 5e9, true},
		{"gap of 30 minutes", 30 * 60e9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPendingSet(64, timeout)
			s.sweep(t0)
			s.touch(h, 1, t0, false)
			now := t0 + tc.gap
			s.sweep(now)
			live, _, ok := s.lookup(h, 1, now)
			if ok != tc.kept || live != tc.kept || s.Len() != map[bool]int{true: 1}[tc.kept] {
				t.Errorf("after the sweep: entry %v, live %v, %d kept; want entry and live %v", ok, live, s.Len(), tc.kept)
			}
		})
	}
}

// sameBucket returns n (host, id) of distinct spoofed IPv4 hosts that
// share (host0, id0)'s bucket: what an attacker who knows the bucket hash
// (it is not keyed) sends to fill a victim's bucket.
func sameBucket(s *pendingSet, host0 netip.Addr, id0 uint16, n int) []netip.Addr {
	_, want := s.locate(host0, id0)
	var out []netip.Addr
	for i := uint32(1); len(out) < n; i++ {
		a := netip.AddrFrom4([4]byte{203, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, f := s.locate(a, id0); f == want {
			out = append(out, a)
		}
	}
	return out
}

// Attack twin: spoofed requests aimed at a victim's bucket evict its
// outstanding request (its answers then read as unsolicited) only with
// as many of them as before (four: the bucket's ways), and the eviction
// is counted. Forged requests from other hosts sharing the
// bucket never make the victim's replies solicited: the fingerprint is
// keyed per table, so no host can be picked to match it.
func TestPendingSetBucketAttack(t *testing.T) {
	const timeout = 10e9
	victim := netip.MustParseAddr("192.0.2.7")
	s := newPendingSet(65536, timeout)
	s.touch(victim, 77, 1e9, false)
	const fill = 3 // spoofed requests the victim's bucket holds beside it, as the 16-byte ways did
	spoofed := sameBucket(s, victim, 77, fill+1)
	for i, a := range spoofed[:fill] {
		s.touch(a, 77, 2e9+int64(i)*1000, false)
	}
	if live, _, ok := s.lookup(victim, 77, 3e9); !ok || !live || s.Evicted() != 0 {
		t.Fatalf("victim's request lost to %d spoofed requests in its bucket (evicted %d)", fill, s.Evicted())
	}
	s.touch(spoofed[fill], 77, 4e9, false)
	if _, _, ok := s.lookup(victim, 77, 4e9); ok || s.Evicted() != 1 {
		t.Errorf("bucket of %d: victim kept=%v evicted %d, want evicted and counted", fill+1, ok, s.Evicted())
	}

	// No request but the victim's own answers for it.
	f := newPendingSet(65536, timeout)
	for _, a := range sameBucket(f, victim, 77, 4*pendingWays) {
		for id := range uint16(64) {
			f.touch(a, 77+id, 1e9, false)
			if _, _, ok := f.lookup(victim, 77, 1e9); ok {
				t.Fatalf("request from %v id %d answers for %v id 77", a, 77+id, victim)
			}
		}
	}
	// The key is the table's own: two tables tag a key differently (but
	// for a 2^-30 chance), so a tag learnt from one aims at nothing.
	t1, _ := newPendingSet(64, timeout).locate(victim, 77)
	t2, _ := newPendingSet(64, timeout).locate(victim, 77)
	t3, _ := newPendingSet(64, timeout).locate(victim, 77)
	if t1 == t2 && t2 == t3 {
		t.Errorf("three tables share the tag %#x: the fingerprint is not keyed", t1)
	}
}
