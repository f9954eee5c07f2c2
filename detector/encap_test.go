package detector

import (
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
)

// encapFrames is an IPv4 and an IPv6 echo request, and an IPv4 first
// fragment, inside every encapsulation synth.Wrap builds.
func encapFrames(tb testing.TB) map[string][]byte {
	tb.Helper()
	v4, err := synth.EchoFrame(synth.Echo{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("10.0.0.5"), ID: 1, Seq: 2})
	if err != nil {
		tb.Fatal(err)
	}
	v6, err := synth.EchoFrame(synth.Echo{Src: netip.MustParseAddr("2001:db8::7"), Dst: netip.MustParseAddr("2001:db8::5"), ID: 1, Seq: 2})
	if err != nil {
		tb.Fatal(err)
	}
	d, pieces := synth.PingTrain(netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("10.0.0.5"), 9, 3000, 1480)
	frag, err := d.Frame(pieces[0])
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, kind := range synth.Wraps {
		for name, f := range map[string][]byte{"v4": v4, "v6": v6, "frag": frag} {
			if kind == synth.WrapTeredo && name != "v6" {
				continue
			}
			w, err := synth.Wrap(kind, f)
			if err != nil {
				tb.Fatal(err)
			}
			out[kind+"/"+name] = w
		}
	}
	return out
}

// TestEncapDecodesInner: the innermost packet is decoded with every
// field as bare (addresses, ICMP header and data, fragment fields).
func TestEncapDecodesInner(t *testing.T) {
	d := NewDecoder()
	for name, f := range encapFrames(t) {
		var p Packet
		if r := d.Decode(LinkEthernet, f, decodeEpoch, len(f), &p); r != ReasonOK {
			t.Errorf("%s: reason %v", name, r)
			continue
		}
		if frag := name[len(name)-4:] == "frag"; !p.HasICMP || !frag && (p.ICMPID != 1 || p.ICMPSeq != 2) || len(p.ICMPData) < 8 {
			t.Errorf("%s: %s", name, fmtPacket(p))
		}
		if name[len(name)-4:] == "frag" && (!p.Fragment || !p.MoreFragments || p.FragID != 9) {
			t.Errorf("%s: fragment fields lost: %s", name, fmtPacket(p))
		}
	}
}

// TestEncapDoesNotAllocate: no encapsulation costs an allocation.
func TestEncapDoesNotAllocate(t *testing.T) {
	d := NewDecoder()
	var p Packet
	frames := encapFrames(t)
	allocs := testing.AllocsPerRun(100, func() {
		for _, f := range frames {
			d.Decode(LinkEthernet, f, decodeEpoch, len(f), &p)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per %d encapsulated frames, want 0", allocs, len(frames))
	}
}

// Disabled decoders leave the carrier as the packet.
func TestEncapDecodersSwitchOff(t *testing.T) {
	cfg := DefaultDecodeConfig()
	cfg.GRE, cfg.VXLAN, cfg.MPLS = false, false, false
	d := NewDecoderConfig(cfg)
	for _, kind := range []string{synth.WrapGRE, synth.WrapVXLAN, synth.WrapMPLS} {
		var p Packet
		f := encapFrames(t)[kind+"/v4"]
		d.Decode(LinkEthernet, f, decodeEpoch, len(f), &p)
		if p.HasICMP {
			t.Errorf("%s off: the inner ICMP was decoded: %s", kind, fmtPacket(p))
		}
	}
}

// BenchmarkDecodeEncap measures each encapsulation's decoding against the
// bare frame.
//
//	go test -run '^$' -bench DecodeEncap -benchmem ./detector/
func BenchmarkDecodeEncap(b *testing.B) {
	frames := encapFrames(b)
	bare, _ := synth.EchoFrame(synth.Echo{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("10.0.0.5"), ID: 1, Seq: 2})
	frames["bare/v4"] = bare
	for _, kind := range []string{synth.CraftIPIP4, synth.CraftDeepStack} { // the worst-input suite's stacks
		next, err := synth.Crafted{Kind: kind, Seed: 1}.Gen()
		if err != nil {
			b.Fatal(err)
		}
		if frames[kind], err = next(0); err != nil {
			b.Fatal(err)
		}
	}
	for _, name := range []string{"bare/v4", "vlan3/v4", "mpls/v4", "gre/v4", "vxlan/v4", "erspan2/v4", "ipip/v4", "teredo/v6", synth.CraftIPIP4, synth.CraftDeepStack} {
		f := frames[name]
		b.Run(name, func(b *testing.B) {
			d := NewDecoder()
			var p Packet
			b.ReportAllocs()
			for b.Loop() {
				d.Decode(LinkEthernet, f, decodeEpoch, len(f), &p)
			}
		})
	}
}

// TestMalformedIPv4Counted: IPv4 headers that lie about their length, and
// protocol 1 without an ICMP header, are counted by reason; the packet
// still reaches the rules (its addresses are sound).
func TestMalformedIPv4Counted(t *testing.T) {
	src, dst := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("10.0.0.5")
	echo, err := synth.EchoFrame(synth.Echo{Src: src, Dst: dst, ID: 1, Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	withLen := func(n uint16) []byte {
		f := append([]byte{}, echo...)
		f[14+2], f[14+3] = byte(n>>8), byte(n)
		return f
	}
	bare := synth.Msg{Src: src, Dst: dst, Type: 8}.Frame()
	noICMP := append(append([]byte{}, bare[:14]...), synth.IPv4(synth.IPv4Header{Src: src, Dst: dst, Proto: 1}, nil)...)
	tests := []struct {
		name    string
		frame   []byte
		wireLen int
		reason  Reason
		hasICMP bool
	}{
		{"total length 0", withLen(0), len(echo), ReasonIPLengthZero, true},
		{"total length beyond the frame", withLen(1500), len(echo), ReasonIPLengthBeyondFrame, true},
		{"protocol 1, no ICMP header", noICMP, len(noICMP), ReasonICMPMissing, false},
		{"cut by the snap length (not a lie)", echo[:40], len(echo), ReasonTruncated, false},
		{"whole", echo, len(echo), ReasonOK, true},
	}
	d := NewDecoder()
	for _, tc := range tests {
		var p Packet
		r := d.Decode(LinkEthernet, tc.frame, decodeEpoch, tc.wireLen, &p)
		if r != tc.reason || p.HasICMP != tc.hasICMP || !p.Src.IsValid() {
			t.Errorf("%s: reason %v, ICMP %v, src %v; want %v, %v", tc.name, r, p.HasICMP, p.Src, tc.reason, tc.hasICMP)
		}
	}
}
