package detector_test

import (
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
)

// TestPacketNDOptions: a neighbor-discovery message's options are read once
// per packet into the Packet, at each type's offset; a packet of another
// type, or the next packet decoded into the same value, reads none of the
// last one's.
func TestPacketNDOptions(t *testing.T) {
	ll, mac := netip.MustParseAddr("fe80::1"), synth.MAC(9)
	pfx := netip.MustParsePrefix("2001:db8:7::/64")
	frames := []struct {
		name    string
		m       synth.Msg
		src     bool // a source link-layer option expected
		tgt     bool // a target link-layer option expected
		prefix  bool
		options uint8
	}{
		{"RA", synth.Msg{Src: ll, Dst: netip.MustParseAddr("ff02::1"), Type: 134,
			Rest: synth.RA(1800, 0, synth.PrefixOpt(pfx), synth.LinkAddrOpt(1, mac))}, true, false, true, 2},
		{"NS", synth.Msg{Src: ll, Dst: ll, Type: 135, Rest: synth.NS(ll, synth.LinkAddrOpt(1, mac))}, true, false, false, 1},
		{"NA", synth.Msg{Src: ll, Dst: ll, Type: 136, Rest: synth.NA(ll, false, true, true, synth.LinkAddrOpt(2, mac))}, false, true, false, 1},
		{"redirect", synth.Msg{Src: ll, Dst: ll, Type: 137, Rest: synth.Redirect6(ll, ll, synth.LinkAddrOpt(2, mac))}, false, true, false, 1},
		{"echo", synth.Msg{Src: ll, Dst: ll, Type: 128, Rest: make([]byte, 60)}, false, false, false, 0},
		{"ICMPv4 redirect", synth.Msg{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Type: 5,
			Rest: make([]byte, 60)}, false, false, false, 0},
	}
	dec := detector.NewDecoder()
	var p detector.Packet // one value for every frame, as the engine reuses it
	for _, f := range frames {
		b := f.m.Frame()
		if r := dec.Decode(detector.LinkEthernet, b, epoch, len(b), &p); r != detector.ReasonOK {
			t.Fatalf("%s: %v", f.name, r)
		}
		nd := p.NDOptions()
		if nd.HasSrcLinkAddr != f.src || nd.HasTgtLinkAddr != f.tgt || (nd.NPrefix == 1) != f.prefix || nd.Options != f.options {
			t.Errorf("%s: %+v", f.name, *nd)
		}
		if f.src && nd.SrcLinkAddr != [6]byte(mac) || f.tgt && nd.TgtLinkAddr != [6]byte(mac) {
			t.Errorf("%s: link-layer address %x / %x, want %x", f.name, nd.SrcLinkAddr, nd.TgtLinkAddr, mac)
		}
		if got, ok := nd.Prefix(p.ICMPData, 0); f.prefix && (!ok || got != pfx) {
			t.Errorf("%s: prefix %v, want %v", f.name, got, pfx)
		}
		if p.NDOptions() != nd {
			t.Errorf("%s: a second call gave another value", f.name)
		}
	}
}

// TestNDOptionsBounded: the 180-option RA of the worst-input suite reads
// MaxNDOptions options and says it stopped there.
func TestNDOptionsBounded(t *testing.T) {
	b := craftedFrames(t, synth.CraftRAOptions, 1)[0]
	var p detector.Packet
	if r := detector.NewDecoder().Decode(detector.LinkEthernet, b, epoch, len(b), &p); r != detector.ReasonOK {
		t.Fatal(r)
	}
	if nd := p.NDOptions(); nd.Options != icmpmsg.MaxNDOptions || !nd.Truncated || nd.Prefixes != 1 {
		t.Fatalf("%+v, want %d options read, truncated, the prefix", *nd, icmpmsg.MaxNDOptions)
	}
}
