package detector_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// scopeRule is a rule that only has a flood scope, for the gauge's tests.
type scopeRule struct{ fs detector.FloodScope }

func (r scopeRule) Info() detector.RuleInfo                     { return detector.RuleInfo{Name: "scope"} }
func (r scopeRule) Observe(*detector.Packet, detector.Reporter) {}
func (r scopeRule) Tick(time.Time, detector.Reporter)           {}
func (r scopeRule) FloodScope() detector.FloodScope             { return r.fs }

// A prefix scope the gauge works out inline (FloodScope.Bits4/Bits6)
// counts exactly as the same scope given as a Key function does: the same
// cells (sketch.HashAddr of the network), the same verdict for every
// query — floods of an IPv4 /24 and an IPv6 /64, other destinations,
// multicast ones (IPv4, IPv6, IPv4-mapped) that neither counts.
func TestGaugePrefixScopeMatchesKey(t *testing.T) {
	key := func(dst netip.Addr) (netip.Addr, bool) {
		if dst.IsMulticast() {
			return netip.Addr{}, false
		}
		bits := 64
		if dst.Is4() {
			bits = 24
		}
		return netip.PrefixFrom(dst, bits).Masked().Addr(), true
	}
	scope := detector.FloodScope{Start: 50, Stop: 25, Window: time.Second}
	inline, byKey := scope, scope
	inline.Bits4, inline.Bits6 = 24, 64
	byKey.Key = key
	gi := detector.NewFloodGauge([]detector.Rule{scopeRule{inline}})
	gk := detector.NewFloodGauge([]detector.Rule{scopeRule{byKey}})
	dsts := []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8:1:2::9"),
		netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("ff02::1"), netip.MustParseAddr("::ffff:239.1.1.1"),
		netip.MustParseAddr("::ffff:10.1.2.3")}
	var p detector.Packet
	flooded := 0
	for i := 0; i < 20000; i++ {
		dst := dsts[i%len(dsts)]
		switch i % 7 {
		case 0: // the /24 and the /64, many hosts of each
			dst = netip.AddrFrom4([4]byte{10, 1, 2, byte(i)})
		case 1:
			b := dst.As16()
			b[15] = byte(i)
			dst = netip.AddrFrom16(b)
		case 2: // anywhere
			dst = synth.RandomAddr(uint64(i), i%2 == 0)
		}
		p = detector.Packet{IPv6: dst.Is6(), Dst: dst, HasICMP: true, ICMPType: 8}
		if p.IPv6 {
			p.ICMPType = 128
		}
		tn := int64(1765100000e9) + int64(i)*int64(200*time.Microsecond)
		a, b := gi.Observe(&p, tn), gk.Observe(&p, tn)
		if a != b {
			t.Fatalf("packet %d to %v: inline prefix scope says %v, the key's %v", i, dst, a, b)
		}
		if a {
			flooded++
		}
	}
	if flooded == 0 {
		t.Fatal("no query was found flooded: the test compares nothing")
	}
}

// Packet.DstMulticast is netip.Addr.IsMulticast.
func TestDstMulticast(t *testing.T) {
	for _, s := range []string{"224.0.0.1", "239.255.255.255", "223.255.255.255", "240.0.0.1", "10.0.0.1", "0.0.0.0",
		"ff02::1", "ff00::", "fe80::1", "2001:db8::1", "::", "::ffff:224.0.0.1", "::ffff:10.0.0.1", "::224.0.0.1", "::1:ffff:e000:1"} {
		a := netip.MustParseAddr(s)
		p := detector.Packet{Dst: a}
		if p.DstMulticast() != a.IsMulticast() {
			t.Errorf("%s: DstMulticast %v, IsMulticast %v", s, p.DstMulticast(), a.IsMulticast())
		}
	}
	if (&detector.Packet{}).DstMulticast() {
		t.Error("the zero address is multicast")
	}
}
