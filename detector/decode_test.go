package detector

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// decodeEpoch is the packet time of the decoder tests.
var decodeEpoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

var (
	tSrc4 = netip.MustParseAddr("198.51.100.7")
	tDst4 = netip.MustParseAddr("10.0.0.5")
	tSrc6 = netip.MustParseAddr("2001:db8::7")
	tDst6 = netip.MustParseAddr("2001:db8::5")
	tMAC  = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	tMAC2 = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	bcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	mcast = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
)

// ser serializes layers with lengths and checksums fixed.
func ser(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ip4Layer(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 61, Id: 0x1234, Protocol: proto, SrcIP: tSrc4.AsSlice(), DstIP: tDst4.AsSlice()}
}

func ip6Layer(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 62, NextHeader: next, SrcIP: tSrc6.AsSlice(), DstIP: tDst6.AsSlice()}
}

// echo4Layers is an IPv4 echo request, id 0x4242 seq 7, 56 data bytes.
func echo4Layers() []gopacket.SerializableLayer {
	return []gopacket.SerializableLayer{ip4Layer(layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x4242, Seq: 7},
		gopacket.Payload(make([]byte, 56))}
}

// echo6Layers is an IPv6 echo request, id 0x4343 seq 8.
func echo6Layers(t testing.TB) []gopacket.SerializableLayer {
	ip := ip6Layer(layers.IPProtocolICMPv6)
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return []gopacket.SerializableLayer{ip, icmp, &layers.ICMPv6Echo{Identifier: 0x4343, SeqNumber: 8}, gopacket.Payload(make([]byte, 56))}
}

func eth(dst net.HardwareAddr, typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: tMAC, DstMAC: dst, EthernetType: typ}
}

func prepend(hdr []byte, rest []byte) []byte { return append(append([]byte(nil), hdr...), rest...) }

// sllHeader is a Linux cooked v1 header of packet type pt for protocol proto.
func sllHeader(pt uint16, proto layers.EthernetType) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[0:2], pt)
	binary.BigEndian.PutUint16(h[2:4], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:6], 6)
	copy(h[6:], tMAC)
	binary.BigEndian.PutUint16(h[14:16], uint16(proto))
	return h
}

// sll2Header is a Linux cooked v2 header (20 bytes), built by hand:
// gopacket has no SLL2 layer.
func sll2Header(pt byte, proto layers.EthernetType) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:2], uint16(proto))
	binary.BigEndian.PutUint32(h[4:8], 3) // ifindex
	binary.BigEndian.PutUint16(h[8:10], 1)
	h[10], h[11] = pt, 6
	copy(h[12:], tMAC)
	return h
}

// ext6 is an IPv6 extension header of 8*n bytes (n >= 1) with next header next.
func ext6(next uint8, n int) []byte {
	b := make([]byte, 8*n)
	b[0], b[1] = next, byte(n-1)
	b[2], b[3] = 1, byte(8*n-4) // PadN over the rest
	return b
}

// ah6 is a 24-byte authentication header.
func ah6(next uint8) []byte {
	b := make([]byte, 24)
	b[0], b[1] = next, 4
	return b
}

// frag6 is an IPv6 fragment header.
func frag6(next uint8, offset int, more bool, id uint32) []byte {
	b := make([]byte, 8)
	b[0] = next
	of := uint16(offset) &^ 7
	if more {
		of |= 1
	}
	binary.BigEndian.PutUint16(b[2:4], of)
	binary.BigEndian.PutUint32(b[4:8], id)
	return b
}

// icmp6Echo is an ICMPv6 echo request message (checksum left zero: the
// decoder does not verify it).
func icmp6Echo(id, seq uint16, n int) []byte {
	b := make([]byte, 8+n)
	b[0] = 128
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// decodeCase is one frame and the Packet fields it must decode to.
type decodeCase struct {
	name   string
	link   LinkType
	frame  []byte
	reason Reason
	want   Packet // Time, WireLen and CapLen are checked separately
}

func echo4Want() Packet {
	return Packet{Src: tSrc4, Dst: tDst4, TTL: 61, Proto: ProtoICMPv4, IPLen: 84, HeaderLen: 20, FragID: 0x1234, FragLen: 64,
		HasICMP: true, ICMPType: ICMPv4EchoRequest, ICMPID: 0x4242, ICMPSeq: 7}
}

func echo6Want() Packet {
	return Packet{IPv6: true, Src: tSrc6, Dst: tDst6, TTL: 62, Proto: ProtoICMPv6, IPLen: 40 + 64, HeaderLen: 40,
		HasICMP: true, ICMPType: ICMPv6EchoRequest, ICMPID: 0x4343, ICMPSeq: 8}
}

func with(p Packet, f func(*Packet)) Packet { f(&p); return p }

func decodeCases(t testing.TB) []decodeCase {
	v4 := ser(t, echo4Layers()...)
	v6 := ser(t, echo6Layers(t)...)
	bc := func(p Packet) Packet { p.L2Broadcast, p.L2Multicast = true, true; return p }
	loop := func(order binary.ByteOrder, family uint32, ip []byte) []byte {
		h := make([]byte, 4)
		order.PutUint32(h, family)
		return prepend(h, ip)
	}
	// IPv4 fragments of a 1,580-byte echo: a first fragment (MF, ICMP header
	// inside) and the last one at offset 1480.
	icmp := ser(t, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 9, Seq: 1}, gopacket.Payload(make([]byte, 1572)))
	f1 := ip4Layer(layers.IPProtocolICMPv4)
	f1.Flags = layers.IPv4MoreFragments
	f2 := ip4Layer(layers.IPProtocolICMPv4)
	f2.FragOffset = 1480 / 8
	// IPv6: hop-by-hop + AH + destination options before an echo request;
	// a first and a later fragment behind a hop-by-hop header.
	ext := cat(ext6(51, 1), ah6(60), ext6(58, 2), icmp6Echo(0x77, 3, 8))
	fr6a := cat(ext6(44, 1), frag6(58, 0, true, 0xabcdef), icmp6Echo(0x78, 4, 1224))
	fr6b := cat(frag6(58, 1232, false, 0xabcdef), make([]byte, 200))
	vlan := func(v uint16, typ layers.EthernetType) *layers.Dot1Q {
		return &layers.Dot1Q{VLANIdentifier: v, Type: typ}
	}

	return []decodeCase{
		{name: "ethernet ipv4 echo", link: LinkEthernet, frame: ser(t, append([]gopacket.SerializableLayer{eth(tMAC2, layers.EthernetTypeIPv4)}, echo4Layers()...)...), want: echo4Want()},
		{name: "ethernet ipv6 echo", link: LinkEthernet, frame: ser(t, append([]gopacket.SerializableLayer{eth(tMAC2, layers.EthernetTypeIPv6)}, echo6Layers(t)...)...), want: echo6Want()},
		{name: "ethernet broadcast", link: LinkEthernet, frame: ser(t, append([]gopacket.SerializableLayer{eth(bcast, layers.EthernetTypeIPv4)}, echo4Layers()...)...), want: bc(echo4Want())},
		{name: "ethernet multicast", link: LinkEthernet, frame: ser(t, append([]gopacket.SerializableLayer{eth(mcast, layers.EthernetTypeIPv6)}, echo6Layers(t)...)...),
			want: with(echo6Want(), func(p *Packet) { p.L2Multicast = true })},
		{name: "802.1Q", link: LinkEthernet, frame: ser(t, append([]gopacket.SerializableLayer{eth(tMAC2, layers.EthernetTypeDot1Q), vlan(100, layers.EthernetTypeIPv4)}, echo4Layers()...)...), want: echo4Want()},
		{name: "QinQ 88a8+8100 broadcast", link: LinkEthernet, frame: ser(t, append([]gopacket.SerializableLayer{eth(bcast, layers.EthernetTypeQinQ),
			vlan(10, layers.EthernetTypeDot1Q), vlan(20, layers.EthernetTypeIPv6)}, echo6Layers(t)...)...), want: bc(echo6Want())},
		{name: "linux sll ipv4", link: LinkLinuxSLL, frame: prepend(sllHeader(0, layers.EthernetTypeIPv4), v4), want: echo4Want()},
		{name: "linux sll ipv6 broadcast", link: LinkLinuxSLL, frame: prepend(sllHeader(1, layers.EthernetTypeIPv6), v6), want: bc(echo6Want())},
		{name: "linux sll2 ipv4 broadcast", link: LinkLinuxSLL2, frame: prepend(sll2Header(1, layers.EthernetTypeIPv4), v4), want: bc(echo4Want())},
		{name: "linux sll2 ipv6", link: LinkLinuxSLL2, frame: prepend(sll2Header(4, layers.EthernetTypeIPv6), v6), want: echo6Want()},
		{name: "linux sll2 multicast", link: LinkLinuxSLL2, frame: prepend(sll2Header(2, layers.EthernetTypeIPv6), v6), want: with(echo6Want(), func(p *Packet) { p.L2Multicast = true })},
		{name: "raw 101 ipv4", link: LinkRaw, frame: v4, want: echo4Want()},
		{name: "raw 101 ipv6", link: LinkRaw, frame: v6, want: echo6Want()},
		{name: "raw dlt 12", link: LinkRawDLT12, frame: v6, want: echo6Want()},
		{name: "raw dlt 14", link: LinkRawDLT14, frame: v4, want: echo4Want()},
		{name: "ipv4 228", link: LinkIPv4, frame: v4, want: echo4Want()},
		{name: "ipv6 229", link: LinkIPv6, frame: v6, want: echo6Want()},
		{name: "null ipv4 (little-endian host)", link: LinkNull, frame: loop(binary.LittleEndian, 2, v4), want: echo4Want()},
		{name: "null ipv6 bsd 24", link: LinkNull, frame: loop(binary.LittleEndian, 24, v6), want: echo6Want()},
		{name: "null ipv6 freebsd 28", link: LinkNull, frame: loop(binary.LittleEndian, 28, v6), want: echo6Want()},
		{name: "null ipv6 darwin 30", link: LinkNull, frame: loop(binary.LittleEndian, 30, v6), want: echo6Want()},
		{name: "null ipv4 (big-endian host)", link: LinkNull, frame: loop(binary.BigEndian, 2, v4), want: echo4Want()},
		{name: "loop 108 ipv4", link: LinkLoop, frame: loop(binary.BigEndian, 2, v4), want: echo4Want()},
		{name: "loop 108 ipv6", link: LinkLoop, frame: loop(binary.BigEndian, 24, v6), want: echo6Want()},

		{name: "ipv4 first fragment carries the echo header", link: LinkRaw, frame: ser(t, f1, gopacket.Payload(icmp[:1480])),
			want: Packet{Src: tSrc4, Dst: tDst4, TTL: 61, Proto: ProtoICMPv4, IPLen: 1500, HeaderLen: 20, Fragment: true, MoreFragments: true,
				FragID: 0x1234, FragLen: 1480, HasICMP: true, ICMPType: 8, ICMPID: 9, ICMPSeq: 1}},
		{name: "ipv4 last fragment", link: LinkRaw, frame: ser(t, f2, gopacket.Payload(icmp[1480:])),
			want: Packet{Src: tSrc4, Dst: tDst4, TTL: 61, Proto: ProtoICMPv4, IPLen: 120, HeaderLen: 20, Fragment: true,
				FragID: 0x1234, FragOffset: 1480, FragLen: 100}},
		{name: "ipv6 hop-by-hop + AH + dst-opts echo", link: LinkRaw, frame: ser(t, ip6Layer(0), gopacket.Payload(ext)),
			want: Packet{IPv6: true, Src: tSrc6, Dst: tDst6, TTL: 62, Proto: ProtoICMPv6, IPLen: 40 + len(ext), HeaderLen: 40 + 8 + 24 + 16,
				HasICMP: true, ICMPType: 128, ICMPID: 0x77, ICMPSeq: 3}},
		{name: "ipv6 first fragment behind hop-by-hop", link: LinkRaw, frame: ser(t, ip6Layer(0), gopacket.Payload(fr6a)),
			want: Packet{IPv6: true, Src: tSrc6, Dst: tDst6, TTL: 62, Proto: ProtoICMPv6, IPLen: 40 + len(fr6a), HeaderLen: 48,
				Fragment: true, MoreFragments: true, FragID: 0xabcdef, FragLen: 8 + 1224, HasICMP: true, ICMPType: 128, ICMPID: 0x78, ICMPSeq: 4}},
		{name: "ipv6 later fragment", link: LinkRaw, frame: ser(t, ip6Layer(44), gopacket.Payload(fr6b)),
			want: Packet{IPv6: true, Src: tSrc6, Dst: tDst6, TTL: 62, Proto: ProtoICMPv6, IPLen: 40 + len(fr6b), HeaderLen: 40,
				Fragment: true, FragID: 0xabcdef, FragOffset: 1232, FragLen: 200}},

		{name: "arp is not ip", link: LinkEthernet, reason: ReasonNotIP, frame: ser(t, eth(bcast, layers.EthernetTypeARP),
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				Operation: 1, SourceHwAddress: tMAC, SourceProtAddress: []byte{10, 0, 0, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 2}}),
			want: Packet{L2Broadcast: true, L2Multicast: true}},
		{name: "unsupported link type", link: 147, frame: v4, reason: ReasonUnsupportedLink},
		{name: "empty raw frame", link: LinkRaw, frame: nil, reason: ReasonTruncated},
		{name: "raw frame of version 5", link: LinkRaw, frame: prepend([]byte{0x50}, v4[1:]), reason: ReasonMalformedIP},
		{name: "short sll2", link: LinkLinuxSLL2, frame: sll2Header(0, layers.EthernetTypeIPv4)[:19], reason: ReasonTruncated},
		{name: "ipv6 extension header past the end", link: LinkRaw, frame: ser(t, ip6Layer(0), gopacket.Payload(ext6(58, 4)[:16])), reason: ReasonTruncated},
	}
}

// TestDecode decodes one frame of every supported link type and form.
func TestDecode(t *testing.T) {
	d := NewDecoder()
	for _, c := range decodeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			var p Packet
			reason := d.Decode(c.link, c.frame, decodeEpoch, len(c.frame)+4, &p)
			if reason != c.reason {
				t.Errorf("reason %v, want %v", reason, c.reason)
			}
			if !p.Time.Equal(decodeEpoch) || p.CapLen != len(c.frame) || p.WireLen != len(c.frame)+4 {
				t.Errorf("time %v caplen %d wirelen %d", p.Time, p.CapLen, p.WireLen)
			}
			p.Time, p.CapLen, p.WireLen = time.Time{}, 0, 0
			if c.reason != ReasonOK && fmtPacket(c.want) == fmtPacket(Packet{}) {
				p.L2Broadcast, p.L2Multicast = false, false
			}
			// Compare the fields this test is about (fragment-tracking
			// fields such as checksums belong to other tests).
			if fmtPacket(p) != fmtPacket(c.want) {
				t.Errorf("\n got %s\nwant %s", fmtPacket(p), fmtPacket(c.want))
			}
		})
	}
}

func fmtPacket(p Packet) string {
	return fmt.Sprintf("v6=%v %v>%v ttl=%d proto=%d iplen=%d hlen=%d frag=%v mf=%v id=%#x off=%d flen=%d icmp=%v %d/%d id=%#x seq=%d bcast=%v mcast=%v",
		p.IPv6, p.Src, p.Dst, p.TTL, p.Proto, p.IPLen, p.HeaderLen, p.Fragment, p.MoreFragments, p.FragID, p.FragOffset, p.FragLen,
		p.HasICMP, p.ICMPType, p.ICMPCode, p.ICMPID, p.ICMPSeq, p.L2Broadcast, p.L2Multicast)
}

// fmtPacketAll is fmtPacket with every other field the decoder fills: the
// ICMP message bytes, the source MAC, the fragment checksums.
func fmtPacketAll(p Packet) string {
	return fmt.Sprintf("%s icmpdata=%x mac=%v/%x sum=%#x upoff=%d chain=%v time=%v wire=%d cap=%d vlans=%v/%d tunnel=%+v",
		fmtPacket(p), p.ICMPData, p.HasSrcMAC, p.SrcMAC, p.FragSum, p.FragUpperOff, p.FragChainIncomplete, p.Time, p.WireLen, p.CapLen,
		p.VLANs, p.NVLAN, p.Tunnel)
}

// TestDecodeSnapLen cuts every well-formed case at every length: the decoder
// must never panic, and a cut frame must not decode to ReasonOK with ICMP
// fields beyond what was captured.
func TestDecodeSnapLen(t *testing.T) {
	d := NewDecoder()
	var p Packet
	for _, c := range decodeCases(t) {
		for n := 0; n < len(c.frame); n++ {
			reason := d.Decode(c.link, c.frame[:n], decodeEpoch, len(c.frame), &p)
			if reason >= NumReasons {
				t.Fatalf("%s cut at %d: reason %d", c.name, n, reason)
			}
		}
	}
}

// TestDecodeDoesNotAllocate pins the decoder's zero-allocation promise over
// a mix of link types, echo requests, fragments and extension headers.
func TestDecodeDoesNotAllocate(t *testing.T) {
	d := NewDecoder()
	var p Packet
	var ok []decodeCase
	for _, c := range decodeCases(t) {
		if c.reason == ReasonOK || c.reason == ReasonNotIP || c.reason == ReasonUnsupportedLink {
			ok = append(ok, c)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, c := range ok {
			d.Decode(c.link, c.frame, decodeEpoch, len(c.frame), &p)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %.1f times per %d frames, want 0", allocs, len(ok))
	}
}
