package detector

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/icmpids/icmpids/capture/synth"
)

// peelTunnels are the IP-level encapsulations of synth.Wrap that gopacket
// decodes too (ERSPAN III and Teredo it does not), and peelLinks the link
// layers (not the MPLS pseudowire): FuzzUnwrapMatchesGopacket stacks
// them, the link layer outermost (synth.Wrap's tunnels take an untagged
// IP frame).
var (
	peelTunnels = []string{synth.WrapGRE, synth.WrapGREKeySeq, synth.WrapGRETEB, synth.WrapERSPAN2,
		synth.WrapVXLAN, synth.WrapGENEVE, synth.WrapIPinIP, synth.WrapIPinIPv6}
	peelLinks = []string{"", synth.WrapVLAN3, synth.WrapQinQ8, synth.WrapMPLS, synth.WrapPPPoE}
)

// peelFrame stacks the tunnels recipe names (a byte each, modulo
// peelTunnels, innermost first, at most 6) and then the link layer link
// names (modulo peelLinks; 0: none) around an echo request from src
// (IPv6 when v6), or reports that the recipe builds none.
func peelFrame(recipe []byte, link uint8, src uint32, v6 bool) ([]byte, bool) {
	s := netip.AddrFrom4([4]byte{198, 51, byte(src >> 8), byte(src)})
	d := netip.MustParseAddr("10.0.0.5")
	if v6 {
		s = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(src)})
		d = netip.MustParseAddr("2001:db8::5")
	}
	f, err := synth.EchoFrame(synth.Echo{Src: s, Dst: d, ID: uint16(src >> 16), Seq: uint16(src)})
	if err != nil || len(recipe) > 6 {
		return nil, false
	}
	kinds := make([]string, 0, len(recipe)+1)
	for _, r := range recipe {
		kinds = append(kinds, peelTunnels[int(r)%len(peelTunnels)])
	}
	if l := peelLinks[int(link)%len(peelLinks)]; l != "" {
		kinds = append(kinds, l)
	}
	for _, kind := range kinds {
		if f, err = synth.Wrap(kind, f); err != nil {
			return nil, false
		}
	}
	return f, true
}

// peeled is what FuzzUnwrapMatchesGopacket compares of a packet.
type peeled struct {
	Src, Dst             netip.Addr
	TTL, Proto, ICMPType uint8
	ICMPID, ICMPSeq      uint16
	Tunnel               Tunnel
	VLANs                [maxVLANsKept]uint16
	NVLAN                uint8
	SrcMAC               [6]byte
	HasSrcMAC            bool
}

// FuzzUnwrapMatchesGopacket holds the decoder's hand peel of VLAN tags,
// MPLS, PPPoE, GRE (ERSPAN, bridging), VXLAN, GENEVE and IP-in-IP to
// gopacket's decoding of the same frame: the innermost packet's
// addresses, TTL, protocol and ICMP header, the outermost carrier
// (Packet.Tunnel: its addresses, its protocol, one more IP layer than the
// tunnel's depth), the VLAN tags in order, and the innermost Ethernet
// source, for any stack of them.
//
//	go test -run '^$' -fuzz FuzzUnwrapMatchesGopacket -fuzztime 60s ./detector/
func FuzzUnwrapMatchesGopacket(f *testing.F) {
	for i := range peelTunnels {
		f.Add([]byte{byte(i)}, uint8(0), uint32(i), false)
		f.Add([]byte{byte(i), byte(i)}, uint8(i), uint32(i), true)
	}
	for i := range peelLinks {
		f.Add([]byte{}, uint8(i), uint32(i), false)
		f.Add([]byte{6}, uint8(i), uint32(i), true)
	}
	f.Add([]byte{6, 4, 0}, uint8(2), uint32(7), false)    // the worst-input suite's deep stack
	f.Add([]byte{6, 6, 6, 6}, uint8(0), uint32(7), false) // and its IP-in-IP x4
	cfg := DefaultDecodeConfig()
	cfg.MaxDepth, cfg.MaxVLANs = 16, 16 // the limits are not what is compared
	f.Fuzz(func(t *testing.T, recipe []byte, link uint8, src uint32, v6 bool) {
		frame, ok := peelFrame(recipe, link, src, v6)
		if !ok {
			return
		}
		gp := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		if el := gp.ErrorLayer(); el != nil {
			t.Fatalf("recipe %v link %d: gopacket: %v", recipe, link, el.Error())
		}
		var want peeled
		var ips []gopacket.Layer
		for _, l := range gp.Layers() {
			switch l := l.(type) {
			case *layers.Ethernet:
				want.SrcMAC, want.HasSrcMAC = [6]byte(l.SrcMAC), true
			case *layers.Dot1Q:
				if want.NVLAN < maxVLANsKept {
					want.VLANs[want.NVLAN] = l.VLANIdentifier
				}
				want.NVLAN++
			case *layers.IPv4:
				ips = append(ips, l)
				want.Src, want.Dst, want.TTL, want.Proto = addr4(l.SrcIP), addr4(l.DstIP), l.TTL, uint8(l.Protocol)
			case *layers.IPv6:
				ips = append(ips, l)
				want.Src, want.Dst = netip.AddrFrom16([16]byte(l.SrcIP)), netip.AddrFrom16([16]byte(l.DstIP))
				want.TTL, want.Proto = l.HopLimit, uint8(l.NextHeader)
			case *layers.ICMPv4:
				want.ICMPType, want.ICMPID, want.ICMPSeq = l.TypeCode.Type(), l.Id, l.Seq
			case *layers.ICMPv6:
				want.ICMPType = l.TypeCode.Type()
			case *layers.ICMPv6Echo:
				want.ICMPID, want.ICMPSeq = l.Identifier, l.SeqNumber
			}
		}
		if len(ips) > 1 {
			switch o := ips[0].(type) {
			case *layers.IPv4:
				want.Tunnel = Tunnel{Src: addr4(o.SrcIP), Dst: addr4(o.DstIP), Proto: uint8(o.Protocol)}
			case *layers.IPv6:
				want.Tunnel = Tunnel{Src: netip.AddrFrom16([16]byte(o.SrcIP)), Dst: netip.AddrFrom16([16]byte(o.DstIP)), Proto: uint8(o.NextHeader)}
			}
			want.Tunnel.Depth = uint8(len(ips) - 1)
		}
		var p Packet
		r := NewDecoderConfig(cfg).Decode(LinkEthernet, frame, decodeEpoch, len(frame), &p)
		got := peeled{Src: p.Src, Dst: p.Dst, TTL: p.TTL, Proto: p.Proto, ICMPType: p.ICMPType, ICMPID: p.ICMPID, ICMPSeq: p.ICMPSeq,
			Tunnel: p.Tunnel, VLANs: p.VLANs, NVLAN: p.NVLAN, SrcMAC: p.SrcMAC, HasSrcMAC: p.HasSrcMAC}
		if r != ReasonOK || !p.HasICMP || got != want {
			t.Fatalf("recipe %v link %d (%d bytes): reason %v, ICMP %v\n got %+v\nwant %+v", recipe, link, len(frame), r, p.HasICMP, got, want)
		}
	})
}
