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
	return out
}

// TestFastPathMatchesLayers: for every frame the fast path takes, under
// every link type, it fills the Packet exactly as the gopacket path does,
// and cut short at every length it still agrees (or declines).
func TestFastPathMatchesLayers(t *testing.T) {
	d := NewDecoder()
	taken := 0
	for _, f := range fastCases(t) {
		for n := 0; n <= len(f); n++ {
			for _, lt := range fuzzLinks {
				if compareFast(t, d, lt, f[:n]) {
					taken++
				}
			}
		}
	}
	if taken == 0 {
		t.Fatal("the fast path took no frame")
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
