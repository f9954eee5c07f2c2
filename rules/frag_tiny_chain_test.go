package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// TestFragTinyIncompleteHeaderChain: an IPv6 first fragment that holds the
// fragment header and only the first 8 of a 24-byte destination-options
// header — the ICMPv6 header follows in the second fragment (RFC 7112
// forbids it; firewalls that look for the upper-layer header in the first
// fragment are evaded). The first fragment must still be decoded and
// tracked, and raise frag_tiny.
func TestFragTinyIncompleteHeaderChain(t *testing.T) {
	src, dst := netip.MustParseAddr("2001:db8::66"), netip.MustParseAddr("2001:db8::1")
	// Destination options, 24 bytes: next header 58 (ICMPv6), length 2.
	dopts := make([]byte, 24)
	dopts[0], dopts[1] = 58, 2
	dopts[2], dopts[3] = 1, 20 // PadN over the rest
	echo := synth.ICMPEcho(true, 128, 7, 1, 16)
	rest := append(append([]byte{}, dopts[8:]...), echo...)
	first := synth.IPv6(src, dst, []synth.IPv6Ext{synth.FragmentHeader(0, true, 99)}, 60, dopts[:8])
	second := synth.IPv6(src, dst, []synth.IPv6Ext{synth.FragmentHeader(8, false, 99)}, 60, rest)
	var got []string
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) {
		got = append(got, ev.Rule.Name+" "+ev.Target.String())
		if ev.Extra["header_chain_incomplete"] != true {
			t.Errorf("alert context lacks header_chain_incomplete: %v", ev.Extra)
		}
	}), rules.NewFragTiny(rules.DefaultFragTinyConfig()))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	e.HandleFrame(detector.LinkRaw, first, t0, len(first))
	e.HandleFrame(detector.LinkRaw, second, t0.Add(time.Millisecond), len(second))
	e.Close(detector.EndInputEnd)
	if len(got) != 1 || got[0] != "frag_tiny "+dst.String() {
		t.Fatalf("alerts %v, want one frag_tiny for %v", got, dst)
	}
	if st := e.Stats(); st.DecodeErrors() != 0 {
		t.Fatalf("the fragments were counted as decode errors: %v", st.Decode)
	}
}
