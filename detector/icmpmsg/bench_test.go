package icmpmsg_test

import (
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector/icmpmsg"
)

// BenchmarkParseND: the option walk over the worst-input suite's ND
// messages (bench/worst.sh's ra-options, ra-prefixes and nd-options):
// a prefix then 180 unknown options, 32 prefixes, and 180 unknown
// options then a target link-layer option. Instructions per walk:
// cachegrind at two -benchtime counts, the difference divided.
func BenchmarkParseND(b *testing.B) {
	a6 := netip.MustParseAddr("fe80::1")
	junk := make([]byte, 8*180)
	for i := 0; i < 180; i++ {
		junk[8*i], junk[8*i+1] = 254, 1
	}
	var prefixes [][]byte
	for i := 0; i < 32; i++ {
		prefixes = append(prefixes, synth.PrefixOpt(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 4: byte(i)}), 64)))
	}
	cases := []struct {
		name string
		msg  []byte
		off  int
	}{
		{"ra-options", synth.Msg{Src: a6, Dst: a6, Type: 134, Rest: synth.RA(1800, 0, synth.PrefixOpt(netip.MustParsePrefix("2001:db8:1::/64")), junk)}.Bytes(), icmpmsg.RouterAdvertOptions},
		{"ra-prefixes", synth.Msg{Src: a6, Dst: a6, Type: 134, Rest: synth.RA(1800, 0, prefixes...)}.Bytes(), icmpmsg.RouterAdvertOptions},
		{"na-options", synth.Msg{Src: a6, Dst: a6, Type: 136, Rest: synth.NA(a6, false, true, true, junk, synth.LinkAddrOpt(2, synth.MAC(1)))}.Bytes(), icmpmsg.NeighborOptions},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for i := 0; i < b.N; i++ {
				n += int(icmpmsg.ParseND(c.msg, c.off).Options)
			}
			if n != b.N*icmpmsg.MaxNDOptions {
				b.Fatalf("%d options read in %d walks", n, b.N)
			}
		})
	}
}
