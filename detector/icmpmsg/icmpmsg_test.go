package icmpmsg_test

import (
	"encoding/binary"
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

// walkND is ParseND by the unbounded reference walk (Options), cut at
// MaxNDOptions options.
func walkND(msg []byte, off int) (want icmpmsg.ND, prefixes []netip.Prefix) {
	n := 0
	whole := icmpmsg.Options(msg, off, func(typ uint8, opt []byte) {
		n++
		if n > icmpmsg.MaxNDOptions {
			want.Truncated = true
			return
		}
		want.Options++
		switch typ {
		case icmpmsg.OptSourceLinkAddr:
			if !want.HasSrcLinkAddr {
				want.SrcLinkAddr, want.HasSrcLinkAddr = icmpmsg.LinkAddr(opt)
			}
		case icmpmsg.OptTargetLinkAddr:
			if !want.HasTgtLinkAddr {
				want.TgtLinkAddr, want.HasTgtLinkAddr = icmpmsg.LinkAddr(opt)
			}
		case icmpmsg.OptPrefixInfo:
			want.Prefixes++
			// The first MaxNDPrefixes well-formed ones are kept.
			if p, ok := icmpmsg.Prefix(opt); ok && len(prefixes) < icmpmsg.MaxNDPrefixes {
				prefixes = append(prefixes, p)
			}
		case icmpmsg.OptRouteInfo:
			want.RouteInfo = true
		}
	})
	want.Malformed = !whole && !want.Truncated
	return want, prefixes
}

// checkParseND compares ParseND with the reference walk.
func checkParseND(t *testing.T, msg []byte, off int) {
	t.Helper()
	want, prefixes := walkND(msg, off)
	got := icmpmsg.ParseND(msg, off)
	if got.SrcLinkAddr != want.SrcLinkAddr || got.HasSrcLinkAddr != want.HasSrcLinkAddr ||
		got.TgtLinkAddr != want.TgtLinkAddr || got.HasTgtLinkAddr != want.HasTgtLinkAddr ||
		got.Prefixes != want.Prefixes || got.RouteInfo != want.RouteInfo || got.Options != want.Options ||
		got.Malformed != want.Malformed || got.Truncated != want.Truncated || int(got.NPrefix) != len(prefixes) {
		t.Fatalf("ParseND(%x, %d) = %+v, want %+v with %d prefixes", msg, off, got, want, len(prefixes))
	}
	for i, p := range prefixes {
		g, ok := got.Prefix(msg, i)
		if g != p {
			t.Fatalf("prefix %d: %v, want %v", i, g, p)
		}
		// PrefixWords says the same in words.
		hi, lo, bits, wok := got.PrefixWords(msg, i)
		a := p.Addr().As16()
		if wok != ok || ok && (hi != binary.BigEndian.Uint64(a[:8]) || lo != binary.BigEndian.Uint64(a[8:]) || int(bits) != p.Bits()) {
			t.Fatalf("prefix %d: words %x %x /%d %v, want %v %v", i, hi, lo, bits, wok, p, ok)
		}
	}
}

// TestParseND: one bounded walk reads what the rules need of the options —
// the first link-layer addresses, the prefixes, a route — and stops after
// MaxNDOptions options, saying so.
func TestParseND(t *testing.T) {
	a6 := netip.MustParseAddr("fe80::1")
	mac, mac2 := synth.MAC(7), synth.MAC(8)
	pfx := func(i int) []byte {
		return synth.PrefixOpt(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 4: byte(i)}), 64))
	}
	junk := func(n int) []byte {
		b := make([]byte, 8*n)
		for i := 0; i < n; i++ {
			b[8*i], b[8*i+1] = 254, 1
		}
		return b
	}
	ra := func(opts ...[]byte) []byte {
		return synth.Msg{Src: a6, Dst: a6, Type: 134, Rest: synth.RA(1800, 0, opts...)}.Bytes()
	}
	route := []byte{24, 1, 0, 0, 0, 0, 0, 0}
	var many [][]byte
	for i := 0; i < 20; i++ {
		many = append(many, pfx(i))
	}
	tests := []struct {
		name string
		msg  []byte
		want icmpmsg.ND // NPrefix and the offsets are checked against the reference
	}{
		{"none", ra(), icmpmsg.ND{}},
		{"link addresses, first wins", ra(synth.LinkAddrOpt(1, mac), synth.LinkAddrOpt(1, mac2), synth.LinkAddrOpt(2, mac2)),
			icmpmsg.ND{SrcLinkAddr: [6]byte(mac), HasSrcLinkAddr: true, TgtLinkAddr: [6]byte(mac2), HasTgtLinkAddr: true, Options: 3}},
		{"prefix and route", ra(pfx(1), route), icmpmsg.ND{Prefixes: 1, RouteInfo: true, Options: 2}},
		{"twenty prefixes, sixteen kept", ra(many...), icmpmsg.ND{Prefixes: 20, Options: 20}},
		// A short prefix option (one unit) is counted, never kept: it
		// cannot push a well-formed one out of the sixteen.
		{"short prefix options first, then twenty", ra(append([][]byte{{3, 1, 64, 0, 0, 0, 0, 0}, {3, 1, 64, 0, 0, 0, 0, 0}}, many...)...),
			icmpmsg.ND{Prefixes: 22, Options: 22}},
		{"zero length", ra(pfx(1), []byte{1, 0, 0, 0, 0, 0, 0, 0}), icmpmsg.ND{Prefixes: 1, Options: 1, Malformed: true}},
		{"runs past the end", ra(pfx(1), []byte{1, 2, 0, 0, 0, 0, 0, 0}), icmpmsg.ND{Prefixes: 1, Options: 1, Malformed: true}},
		{"32 options: all read", ra(junk(31), synth.LinkAddrOpt(1, mac)),
			icmpmsg.ND{SrcLinkAddr: [6]byte(mac), HasSrcLinkAddr: true, Options: 32}},
		{"180 options after a prefix: the bound", ra(pfx(1), junk(180), synth.LinkAddrOpt(1, mac)),
			icmpmsg.ND{Prefixes: 1, Options: icmpmsg.MaxNDOptions, Truncated: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := icmpmsg.ParseND(tc.msg, icmpmsg.RouterAdvertOptions)
			if got.SrcLinkAddr != tc.want.SrcLinkAddr || got.HasSrcLinkAddr != tc.want.HasSrcLinkAddr ||
				got.TgtLinkAddr != tc.want.TgtLinkAddr || got.HasTgtLinkAddr != tc.want.HasTgtLinkAddr ||
				got.Prefixes != tc.want.Prefixes || got.RouteInfo != tc.want.RouteInfo || got.Options != tc.want.Options ||
				got.Malformed != tc.want.Malformed || got.Truncated != tc.want.Truncated {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			checkParseND(t, tc.msg, icmpmsg.RouterAdvertOptions)
		})
	}
	nd := icmpmsg.ParseND(ra(many...), icmpmsg.RouterAdvertOptions)
	if p, ok := nd.Prefix(ra(many...), 15); !ok || p.Addr().As16()[4] != 15 {
		t.Errorf("16th prefix %v %v", p, ok)
	}
	short := ra(append([][]byte{{3, 1, 64, 0, 0, 0, 0, 0}}, many...)...)
	nd = icmpmsg.ParseND(short, icmpmsg.RouterAdvertOptions)
	if p, ok := nd.Prefix(short, 0); nd.NPrefix != icmpmsg.MaxNDPrefixes || !ok || p.Addr().As16()[4] != 0 {
		t.Errorf("after a short prefix option: %d kept, the first %v %v", nd.NPrefix, p, ok)
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
			checkParseND(t, b, off)
		}
	})
}
