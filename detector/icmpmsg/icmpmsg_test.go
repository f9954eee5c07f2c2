package icmpmsg_test

import (
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector/icmpmsg"
)

func TestParseQuote(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("192.0.2.8")
	a6, b6 := netip.MustParseAddr("2001:db8::5"), netip.MustParseAddr("2001:db8::8")
	msg := func(src netip.Addr, typ uint8, rest []byte) []byte {
		return synth.Msg{Src: src, Dst: src, Type: typ, Rest: rest}.Bytes()
	}
	tests := []struct {
		name   string
		v6     bool
		msg    []byte
		status icmpmsg.QuoteStatus
		want   icmpmsg.Quote
	}{
		{"IPv4 TCP", false, msg(a, 3, synth.Unreach(0, synth.Quote(a, b, 6, 40000, 443, 1500))), icmpmsg.QuoteOK,
			icmpmsg.Quote{Src: a, Dst: b, Proto: 6, Length: 1500, HeaderLen: 20, SrcPort: 40000, DstPort: 443, HasPorts: true}},
		{"IPv4 ICMP", false, msg(a, 11, synth.Unreach(0, synth.Quote(a, b, 1, 8<<8, 0, 84))), icmpmsg.QuoteOK,
			icmpmsg.Quote{Src: a, Dst: b, Proto: 1, Length: 84, HeaderLen: 20, ICMPType: 8, HasICMP: true}},
		{"IPv6 UDP", true, msg(a6, 2, synth.Unreach(1280, synth.Quote(a6, b6, 17, 30000, 53, 52))), icmpmsg.QuoteOK,
			icmpmsg.Quote{IPv6: true, Src: a6, Dst: b6, Proto: 17, Length: 52, HeaderLen: 40, SrcPort: 30000, DstPort: 53, HasPorts: true}},
		{"IPv6 error quoting IPv4", true, msg(a6, 1, synth.Unreach(0, synth.Quote(a, b, 6, 1, 2, 60))), icmpmsg.QuoteMalformed, icmpmsg.Quote{IPv6: true}},
		{"no quote at all", false, msg(a, 3, make([]byte, 4)), icmpmsg.QuoteMissing, icmpmsg.Quote{}},
		{"IHL below 5", false, msg(a, 3, append(make([]byte, 4), 0x43, 0, 0, 20)), icmpmsg.QuoteMalformed, icmpmsg.Quote{}},
		{"IPv4 header cut short", false, msg(a, 3, append(make([]byte, 4), 0x45, 0, 0, 20)), icmpmsg.QuoteMissing, icmpmsg.Quote{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, st := icmpmsg.ParseQuote(tc.v6, tc.msg)
			if st != tc.status {
				t.Fatalf("status %d, want %d", st, tc.status)
			}
			if st == icmpmsg.QuoteOK && q != tc.want {
				t.Errorf("quote %+v\nwant  %+v", q, tc.want)
			}
		})
	}
}

func TestMTUAndRedirects(t *testing.T) {
	a := netip.MustParseAddr("10.0.0.1")
	m := synth.Msg{Src: a, Dst: a, Type: 3, Code: 4, Rest: synth.Unreach(1400, nil)}.Bytes()
	if mtu, ok := icmpmsg.MTU(false, m); !ok || mtu != 1400 {
		t.Errorf("v4 MTU %d %v", mtu, ok)
	}
	a6 := netip.MustParseAddr("fe80::1")
	m6 := synth.Msg{Src: a6, Dst: a6, Type: 2, Rest: synth.Unreach(1200, nil)}.Bytes()
	if mtu, ok := icmpmsg.MTU(true, m6); !ok || mtu != 1200 {
		t.Errorf("v6 MTU %d %v", mtu, ok)
	}
	tg, dst := netip.MustParseAddr("fe80::2"), netip.MustParseAddr("2001:db8::80")
	r6 := synth.Msg{Src: a6, Dst: a6, Type: 137, Rest: synth.Redirect6(tg, dst)}.Bytes()
	if gt, gd, ok := icmpmsg.RedirectV6(r6); !ok || gt != tg || gd != dst {
		t.Errorf("redirect6 %v %v %v", gt, gd, ok)
	}
	if _, _, ok := icmpmsg.RedirectV6(r6[:30]); ok {
		t.Error("a cut redirect read as whole")
	}
}

func TestNDOptions(t *testing.T) {
	a6 := netip.MustParseAddr("fe80::1")
	mac := synth.MAC(7)
	pfx := netip.MustParsePrefix("2001:db8:1::/64")
	ra := synth.Msg{Src: a6, Dst: a6, Type: 134, Rest: synth.RA(1800, 1, synth.PrefixOpt(pfx), synth.LinkAddrOpt(1, mac))}.Bytes()
	fixed, ok := icmpmsg.ParseRouterAdvert(ra)
	if !ok || fixed.Lifetime != 1800 || fixed.Preference != 1 {
		t.Errorf("RA %+v %v", fixed, ok)
	}
	var gotMAC [6]byte
	var gotPfx netip.Prefix
	whole := icmpmsg.Options(ra, icmpmsg.RouterAdvertOptions, func(typ uint8, opt []byte) {
		switch typ {
		case icmpmsg.OptSourceLinkAddr:
			gotMAC, _ = icmpmsg.LinkAddr(opt)
		case icmpmsg.OptPrefixInfo:
			gotPfx, _ = icmpmsg.Prefix(opt)
		}
	})
	if !whole || gotMAC != [6]byte(mac) || gotPfx != pfx {
		t.Errorf("options: whole %v mac %x prefix %v", whole, gotMAC, gotPfx)
	}
	// A zero-length option ends the walk (RFC 4861 4.6: invalid).
	bad := append(append([]byte{}, ra...), 1, 0, 0, 0, 0, 0, 0, 0)
	if icmpmsg.Options(bad, icmpmsg.RouterAdvertOptions, func(uint8, []byte) {}) {
		t.Error("a zero-length option walked as valid")
	}
}

// FuzzMessages: no reader panics or reads out of range on any bytes.
//
//	go test -run '^$' -fuzz FuzzMessages -fuzztime 60s ./detector/icmpmsg/
func FuzzMessages(f *testing.F) {
	a6 := netip.MustParseAddr("fe80::1")
	f.Add(synth.Msg{Src: a6, Dst: a6, Type: 134, Rest: synth.RA(1800, 1, synth.LinkAddrOpt(1, synth.MAC(1)))}.Bytes())
	f.Add(synth.Msg{Src: a6, Dst: a6, Type: 1, Rest: synth.Unreach(0, synth.Quote(a6, a6, 6, 1, 2, 60))}.Bytes())
	f.Add([]byte{3, 4, 0, 0, 0, 0, 5, 0xdc, 0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v6 := range []bool{false, true} {
			icmpmsg.ParseQuote(v6, b)
			icmpmsg.MTU(v6, b)
		}
		icmpmsg.RedirectV4Gateway(b)
		icmpmsg.RedirectV6(b)
		icmpmsg.ParseRouterAdvert(b)
		icmpmsg.NeighborTarget(b)
		for _, off := range []int{0, icmpmsg.RouterAdvertOptions, icmpmsg.NeighborOptions, icmpmsg.RedirectOptions, len(b) + 3} {
			icmpmsg.Options(b, off, func(_ uint8, opt []byte) {
				icmpmsg.LinkAddr(opt)
				icmpmsg.Prefix(opt)
			})
		}
	})
}
