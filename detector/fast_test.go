package detector

import (
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// fastCases are frames the fast path must take, beside the decode table's
// cases (which also hold frames it must decline).
func fastCases(t testing.TB) [][]byte {
	var out [][]byte
	for _, c := range decodeCases(t) {
		out = append(out, c.frame)
	}
	out = append(out,
		ser(t, append([]gopacket.SerializableLayer{eth(bcast, layers.EthernetTypeIPv4)}, echo4Layers()...)...),
		ser(t, eth(tMAC, layers.EthernetTypeIPv4), ip4Layer(layers.IPProtocolTCP), gopacket.Payload(make([]byte, 40))),
		ser(t, eth(tMAC, layers.EthernetTypeIPv6), ip6Layer(layers.IPProtocolUDP), gopacket.Payload(make([]byte, 20))),
		ser(t, eth(tMAC, layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv6}, ip6Layer(layers.IPProtocolTCP), gopacket.Payload(make([]byte, 20))),
		ser(t, append([]gopacket.SerializableLayer{eth(tMAC, layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv6}}, echo6Layers(t)...)...),
	)
	// IPv4 fragments: of ICMP (a first fragment with 4, 8 and 40 bytes of
	// it; a later one), of UDP, of GRE and IP-in-IP carriers (never
	// peeled), with DF and the reserved bit beside MF, behind VLAN tags.
	frag4 := func(proto layers.IPProtocol, flags layers.IPv4Flag, off uint16) *layers.IPv4 {
		ip := ip4Layer(proto)
		ip.Flags, ip.FragOffset = flags, off
		return ip
	}
	data := func(n int) gopacket.Payload {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + 1)
		}
		if n > 0 {
			b[0] = 8 // an echo request, when it is a first ICMP fragment
		}
		return b
	}
	mf := layers.IPv4MoreFragments
	for _, fr := range []struct {
		ip *layers.IPv4
		n  int
	}{
		{frag4(layers.IPProtocolICMPv4, mf, 0), 4},
		{frag4(layers.IPProtocolICMPv4, mf, 0), 8},
		{frag4(layers.IPProtocolICMPv4, mf, 0), 40},
		{frag4(layers.IPProtocolICMPv4, 0, 5), 40},
		{frag4(layers.IPProtocolICMPv4, mf|layers.IPv4EvilBit, 9), 16},
		{frag4(layers.IPProtocolICMPv4, mf|layers.IPv4DontFragment, 0), 24},
		{frag4(layers.IPProtocolUDP, mf, 0), 32},
		{frag4(layers.IPProtocolGRE, mf, 0), 48},
		{frag4(layers.IPProtocolIPv4, 0, 3), 48},
		{frag4(layers.IPProtocolTCP, mf, 0), 0},
	} {
		out = append(out,
			ser(t, fr.ip, data(fr.n)),
			ser(t, eth(tMAC, layers.EthernetTypeIPv4), fr.ip, data(fr.n)),
			ser(t, eth(mcast, layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 8, Type: layers.EthernetTypeIPv4}, fr.ip, data(fr.n)))
	}
	// IPv6 fragments behind the fixed header: first fragments of an echo
	// request (whole, its header cut to 6 and 2 bytes), of other ICMPv6, UDP
	// and TCP, of IP-in-IPv6 and with a destination-options header after
	// the fragment header (both declined); later fragments; an atomic one.
	echo6 := icmp6Echo(0x79, 5, 40)
	for _, fr := range [][]byte{
		cat(frag6(58, 0, true, 0x1234), echo6),
		cat(frag6(58, 0, true, 0x1234), echo6[:6]),
		cat(frag6(58, 0, true, 0x1234), echo6[:2]),
		cat(frag6(58, 0, true, 0x1234), []byte{1, 4, 0, 0, 0, 0, 0, 0}, data(32)),
		cat(frag6(17, 0, true, 0x1234), data(24)),
		cat(frag6(6, 0, true, 0x1234), data(40)),
		cat(frag6(41, 0, true, 0x1234), data(48)),
		cat(frag6(60, 0, true, 0x1234), ext6(58, 1), echo6),
		cat(frag6(58, 1232, true, 0x1234), data(64)),
		cat(frag6(17, 8, false, 0xfedcba98), data(16)),
		cat(frag6(58, 0, false, 7), echo6),
	} {
		out = append(out,
			ser(t, ip6Layer(44), gopacket.Payload(fr)),
			ser(t, eth(tMAC, layers.EthernetTypeIPv6), ip6Layer(44), gopacket.Payload(fr)),
			ser(t, eth(mcast, layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 9, Type: layers.EthernetTypeIPv6}, ip6Layer(44), gopacket.Payload(fr)))
	}
	return out
}

// TestFastPathMatchesLayers: for every frame the fast path takes, under
// every link type, it fills the Packet exactly as the gopacket path does,
// and cut short at every length it still agrees (or declines).
func TestFastPathMatchesLayers(t *testing.T) {
	d := NewDecoder()
	taken, frags, frags6 := 0, 0, 0
	for _, f := range fastCases(t) {
		for n := 0; n <= len(f); n++ {
			for _, lt := range fuzzLinks {
				if compareFast(t, d, lt, f[:n]) {
					taken++
					var p Packet
					if d.Decode(lt, f[:n], decodeEpoch, n, &p); p.Fragment {
						frags++
						if p.IPv6 {
							frags6++
						}
					}
				}
			}
		}
	}
	if taken == 0 || frags == frags6 || frags6 == 0 {
		t.Fatalf("the fast path took %d frames, %d of them fragments (%d IPv6)", taken, frags, frags6)
	}
}

// compareFast decodes data both ways and reports whether the fast path
// took it.
func compareFast(t testing.TB, d *Decoder, lt LinkType, data []byte) bool {
	t.Helper()
	var fast, slow Packet
	fast = Packet{Time: decodeEpoch, WireLen: len(data), CapLen: len(data)}
	slow = fast
	if !d.fast(lt, data, &fast) {
		return false
	}
	if r := d.decodeLayers(lt, data, &slow); r != ReasonOK {
		t.Fatalf("link %d, % x: fast path took a frame the layers decode with reason %v", lt, data, r)
	}
	if fmtPacketAll(fast) != fmtPacketAll(slow) {
		t.Fatalf("link %d, % x:\nfast   %s\nlayers %s", lt, data, fmtPacketAll(fast), fmtPacketAll(slow))
	}
	return true
}

// FuzzFastPath: on any bytes, the fast path either declines or agrees with
// the gopacket path.
//
//	go test -run '^$' -fuzz FuzzFastPath -fuzztime 60s ./detector/
func FuzzFastPath(f *testing.F) {
	for _, c := range fastCases(f) {
		f.Add(c)
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lt := range fuzzLinks {
			compareFast(t, d, lt, data)
		}
	})
}

// BenchmarkDecodeFragment measures an Ethernet IPv4 and IPv6 fragment
// (the second 704-byte half of a 1,400-byte echo) through Decode (the fast
// path) and through the gopacket path alone (decodeLayers and the sum, as
// Decode took them before the fast path held fragments).
//
//	go test -run '^$' -bench DecodeFragment ./detector/
func BenchmarkDecodeFragment(b *testing.B) {
	frag4 := ip4Layer(layers.IPProtocolICMPv4)
	frag4.FragOffset = 88
	frames := map[string][]byte{
		"v4": ser(b, eth(tMAC, layers.EthernetTypeIPv4), frag4, gopacket.Payload(make([]byte, 704))),
		"v6": ser(b, eth(tMAC, layers.EthernetTypeIPv6), ip6Layer(44), gopacket.Payload(cat(frag6(58, 704, false, 9), make([]byte, 704)))),
	}
	for _, fam := range []string{"v4", "v6"} {
		f := frames[fam]
		d := NewDecoder()
		var p Packet
		b.Run(fam+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d.Decode(LinkEthernet, f, decodeEpoch, len(f), &p)
			}
			if !p.Fragment {
				b.Fatal("not a fragment")
			}
		})
		b.Run(fam+"/layers", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p = Packet{Time: decodeEpoch, WireLen: len(f), CapLen: len(f)}
				d.decodeLayers(LinkEthernet, f, &p)
			}
			if !p.Fragment {
				b.Fatal("not a fragment")
			}
		})
	}
}
