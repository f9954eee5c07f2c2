package rules

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
)

// TestPresence: a clear bit proves a key absent, every key added may be
// held, and the filter asks to be rebuilt once half its bits are set.
func TestPresence(t *testing.T) {
	f := newPresence(10)
	var added []uint64
	for i := 0; !f.rebuildDue(); i++ {
		h := sketch.HashAddr(netip.AddrFrom16([16]byte{0x20, 1, 14: byte(i >> 8), 15: byte(i)}))
		f.add(h)
		added = append(added, h)
		if i > 4096 {
			t.Fatalf("%d keys added, %d bits set: never due", i, f.set)
		}
	}
	if f.set != 512 {
		t.Errorf("due at %d bits set of 1024, want 512", f.set)
	}
	for _, h := range added {
		if !f.mayHold(h) {
			t.Fatalf("key %x added, not held", h)
		}
	}
	absent := 0
	for i := 0; i < 1000; i++ {
		if !f.mayHold(sketch.HashAddr(netip.AddrFrom16([16]byte{0xfe, 0x80, 14: byte(i >> 8), 15: byte(i)}))) {
			absent++
		}
	}
	if absent < 400 || absent > 600 {
		t.Errorf("%d of 1,000 keys never added proved absent by a half-set filter, want ~500", absent)
	}
	f.reset()
	if f.set != 0 || f.mayHold(added[0]) {
		t.Errorf("reset: %d bits set, first key held %v", f.set, f.mayHold(added[0]))
	}
	if presenceBits(65536) != 20 || presenceBits(1024) != 14 || presenceBits(1) != 10 || presenceBits(1<<30) != 22 {
		t.Errorf("presenceBits: %d %d %d %d", presenceBits(65536), presenceBits(1024), presenceBits(1), presenceBits(1<<30))
	}
}

// TestNDSpoofPresenceHoldsEveryBinding: under churn (a full bindings
// table, bindings admitted and evicted by the thousand) every binding the
// table holds stays in the filter, across the rebuild the sweep does once
// half its bits are set, and the rebuild clears the bits of the bindings
// gone.
func TestNDSpoofPresenceHoldsEveryBinding(t *testing.T) {
	cfg := DefaultNDSpoofConfig()
	cfg.MaxBindings = 8 // a filter of 1,024 bits: due after ~600 bindings made
	r := NewNDSpoof(cfg)
	dec := detector.NewDecoder()
	var p detector.Packet
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	observe := func(i int, at time.Time) {
		target := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 13: 1, 14: byte(i >> 8), 15: byte(i)})
		mac := synth.MAC(uint32(1000 + i))
		b := synth.Msg{Src: target, Dst: netip.MustParseAddr("ff02::1"), SrcMAC: mac, Type: 136,
			Rest: synth.NA(target, false, false, true, synth.LinkAddrOpt(2, mac))}.Frame()
		if rc := dec.Decode(detector.LinkEthernet, b, at, len(b), &p); rc != detector.ReasonOK {
			t.Fatal(rc)
		}
		p.TimeNs = at.UnixNano() // (the engine's clock)
		r.Observe(&p, detector.Reporter{})
	}
	check := func(when string) {
		t.Helper()
		n := 0
		r.bindings.Range(func(a netip.Addr, _ *ndBinding) bool {
			n++
			if !r.known.mayHold(sketch.HashAddr(a)) {
				t.Fatalf("%s: binding of %v held, not in the filter", when, a)
			}
			return true
		})
		if n != cfg.MaxBindings {
			t.Fatalf("%s: %d bindings, want a full table (%d)", when, n, cfg.MaxBindings)
		}
	}
	at := t0
	for i := 0; i < 1200; i++ {
		observe(i, at)
		observe(i, at) // admitted at its second (the table is full)
		at = at.Add(time.Millisecond)
	}
	check("before the sweep")
	if !r.known.rebuildDue() {
		t.Fatalf("%d bits set after 1,200 bindings made: want a rebuild due", r.known.set)
	}
	r.Tick(at, detector.Reporter{})
	check("after the sweep")
	if r.known.set > cfg.MaxBindings {
		t.Errorf("%d bits set after the rebuild, want at most the %d bindings held", r.known.set, cfg.MaxBindings)
	}
}
