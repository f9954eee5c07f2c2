package synth

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// The crafted floods Crafted builds: the worst input an attacker can send
// each part of the detector (issue 27's suite), and the storms of issue 26.
// Every one is a stream of frames in which, unless said otherwise, every
// packet comes from a new spoofed source.
const (
	// CraftEchoZero: echo requests to Target carrying Payload zero bytes
	// (default 56; the ordinary flood, at 1,400 the ping-pattern test's
	// longest run).
	CraftEchoZero = "echo-zero"
	// CraftEchoZeroTail: Payload-1 zero bytes then 0x01 (default 1,400): a
	// pattern that fails only at its last byte.
	CraftEchoZeroTail = "echo-zero-tail"
	// CraftEchoRandomPairs: Payload random bytes (default 1,400), new per
	// packet, to a new destination of Prefix (default 10.0.0.0/8) per
	// packet: a new (source, destination) pair per packet.
	CraftEchoRandomPairs = "echo-random-pairs"
	// CraftEchoSameData: an echo flood of Target whose packets all carry
	// the same Payload random-looking bytes (default 56): non-ping data.
	CraftEchoSameData = "echo-same-data"
	// CraftEchoRandomData: an echo flood of Target from Sources spoofed
	// sources (default 1,000, round robin), Payload new random bytes per
	// packet (default 64): issue 26's thousand tunnels.
	CraftEchoRandomData = "echo-random-data"
	// CraftUnreachTCP: port unreachables to Target quoting a TCP segment
	// Target sent to the spoofed reporter (quoted TTL 64).
	CraftUnreachTCP = "unreach-tcp"
	// CraftError6Ext: ICMPv6 destination unreachables to Target (an IPv6
	// address; default 2001:db8::5) quoting an IPv6 packet behind a
	// hop-by-hop header, Options destination-options headers (default 6)
	// and an authentication header.
	CraftError6Ext = "error6-ext"
	// CraftPTBSpray: forged fragmentation-needed errors (MTU 68) from one
	// forger (or Sources forgers) each to a new receiver of Prefix,
	// quoting a TCP segment the receiver sent: issue 26's forged PTBs.
	CraftPTBSpray = "ptb-spray"
	// CraftRedirect: redirects to Target (ICMPv4 host redirects with a new
	// gateway and destination per packet; for an IPv6 Target, ICMPv6
	// redirects with a target link-layer option).
	CraftRedirect = "redirect"
	// CraftRAOptions: router advertisements to ff02::1 from a new
	// link-local source, a prefix option then Options unknown 8-byte
	// options (default 180).
	CraftRAOptions = "ra-options"
	// CraftNDOptions: neighbor solicitations and advertisements in turn
	// for Target (IPv6), Options unknown 8-byte options (default 180) then
	// a link-layer address option.
	CraftNDOptions = "nd-options"
	// CraftRAPrefixes: router advertisements to ff02::1 from a new
	// link-local source and MAC, each carrying Options prefix-information
	// options (default 32, the options the ND walk reads), a new random
	// /64 of 2001:db8::/32 each.
	CraftRAPrefixes = "ra-prefixes"
	// CraftIPIP4: 56-byte echo requests to Target inside four IP-in-IP
	// layers (the decoder's default depth).
	CraftIPIP4 = "ipip4"
	// CraftDeepStack: 56-byte echo requests to Target behind eight VLAN
	// tags (the default maximum), GRE, VXLAN and IP-in-IP.
	CraftDeepStack = "deep-stack"
	// CraftFragTrains: every echo request (Payload, default 1,400) a
	// complete train of two IPv4 fragments from a new spoofed source: two
	// frames per packet.
	CraftFragTrains = "frag-trains"
)

// CraftedKinds lists every flood Crafted builds.
var CraftedKinds = []string{CraftEchoZero, CraftEchoZeroTail, CraftEchoRandomPairs, CraftEchoSameData,
	CraftEchoRandomData, CraftUnreachTCP, CraftError6Ext, CraftPTBSpray, CraftRedirect, CraftRAOptions,
	CraftNDOptions, CraftIPIP4, CraftDeepStack, CraftFragTrains, CraftRAPrefixes}

// Crafted describes a crafted flood (one of CraftedKinds). Zero values
// take the kind's defaults.
type Crafted struct {
	Kind string
	// Target is the victim (default 10.0.0.5; the IPv6-only kinds use
	// 2001:db8::5 unless Target is IPv6).
	Target netip.Addr
	// Prefix is where the kinds spread over many receivers pick them
	// (default 10.0.0.0/8).
	Prefix netip.Prefix
	// Payload is the echo data length; Options the option or extension
	// header count; Sources the spoofed sources (0: a new one per packet,
	// or the kind's default).
	Payload, Options, Sources int
	Seed                      uint64
}

// Gen returns a function building frame i of the flood, to be called for
// i = 0, 1, 2, ... in order (it keeps the random state). The frame it
// returns is the caller's.
func (c Crafted) Gen() (func(i int) ([]byte, error), error) {
	if !slices.Contains(CraftedKinds, c.Kind) {
		return nil, fmt.Errorf("crafted: unknown kind %q", c.Kind)
	}
	if c.Payload < 0 || c.Options < 0 || c.Sources < 0 {
		return nil, fmt.Errorf("crafted %s: negative payload, options or sources", c.Kind)
	}
	g := &crafted{Crafted: c, rng: c.Seed | 1}
	if !g.Target.IsValid() {
		g.Target = netip.MustParseAddr("10.0.0.5")
	}
	v6Only := c.Kind == CraftError6Ext || c.Kind == CraftRAOptions || c.Kind == CraftNDOptions || c.Kind == CraftRAPrefixes
	if v6Only && g.Target.Is4() {
		g.Target = netip.MustParseAddr("2001:db8::5")
	}
	if (c.Kind == CraftFragTrains || c.Kind == CraftIPIP4 || c.Kind == CraftDeepStack || c.Kind == CraftPTBSpray ||
		c.Kind == CraftUnreachTCP) && !g.Target.Is4() {
		return nil, fmt.Errorf("crafted %s: an IPv4 target only", c.Kind)
	}
	if !g.Prefix.IsValid() {
		g.Prefix = netip.MustParsePrefix("10.0.0.0/8")
	}
	if !g.Prefix.Addr().Is4() || g.Prefix.Bits() > 30 {
		return nil, fmt.Errorf("crafted %s: prefix %s: an IPv4 prefix of at least 4 addresses", c.Kind, g.Prefix)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	switch c.Kind {
	case CraftEchoZeroTail, CraftEchoRandomPairs, CraftFragTrains:
		def(&g.Payload, 1400)
	case CraftEchoRandomData:
		def(&g.Payload, 64)
		def(&g.Sources, 1000)
	case CraftRAOptions, CraftNDOptions:
		def(&g.Options, 180)
	case CraftError6Ext:
		def(&g.Options, 6)
	case CraftRAPrefixes:
		def(&g.Options, 32)
	}
	def(&g.Payload, 56)
	if c.Kind == CraftFragTrains && g.Payload < 16 {
		return nil, fmt.Errorf("crafted %s: payload %d: at least 16 bytes", c.Kind, g.Payload)
	}
	g.data = make([]byte, g.Payload)
	if c.Kind == CraftEchoSameData {
		g.fill(g.data)
	}
	if c.Kind == CraftEchoZeroTail {
		g.data[len(g.data)-1] = 1
	}
	return g.frame, nil
}

type crafted struct {
	Crafted
	rng  uint64
	data []byte
	// train is the second fragment of the frag-trains train begun by the
	// previous frame.
	train []byte
}

func (g *crafted) next() uint64 {
	g.rng = xorshift(g.rng)
	return g.rng
}

func (g *crafted) fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], g.next())
		copy(b[i:], w[:])
	}
}

// source is packet i's spoofed source: a new one, or one of Sources.
func (g *crafted) source(i int, v6 bool) netip.Addr {
	if g.Sources > 0 {
		return RandomAddr(xorshift(uint64(i%g.Sources+1)*0x9e3779b97f4a7c15^g.Seed), !v6)
	}
	return RandomAddr(g.next(), !v6)
}

// inPrefix is a pseudo-random address of Prefix.
func (g *crafted) inPrefix() netip.Addr {
	base := g.Prefix.Masked().Addr().As4()
	host := uint32(g.next()) & (1<<(32-g.Prefix.Bits()) - 1)
	a := binary.BigEndian.Uint32(base[:]) | host
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return netip.AddrFrom4(b)
}

func linkLocal(r uint64) netip.Addr {
	b := [16]byte{0: 0xfe, 1: 0x80}
	binary.BigEndian.PutUint64(b[8:], r)
	return netip.AddrFrom16(b)
}

// echo is an ICMP or ICMPv6 echo request carrying data.
func echo(src, dst netip.Addr, seq uint16, data []byte) []byte {
	typ := uint8(8)
	if !src.Is4() {
		typ = 128
	}
	return Msg{Src: src, Dst: dst, Type: typ, Rest: append([]byte{0x42, 0x42, byte(seq >> 8), byte(seq)}, data...)}.Frame()
}

// unknownOpts returns n unknown 8-byte ND options (type 254, RFC 4727's
// experimental value).
func unknownOpts(n int) []byte {
	b := make([]byte, 8*n)
	for k := 0; k < n; k++ {
		b[8*k], b[8*k+1] = 254, 1
	}
	return b
}

func (g *crafted) frame(i int) ([]byte, error) {
	seq := uint16(i)
	v6 := !g.Target.Is4()
	switch g.Kind {
	case CraftEchoZero, CraftEchoZeroTail, CraftEchoSameData:
		return echo(g.source(i, v6), g.Target, seq, g.data), nil
	case CraftEchoRandomData:
		src := g.source(i, v6)
		g.fill(g.data)
		return echo(src, g.Target, seq, g.data), nil
	case CraftEchoRandomPairs:
		src, dst := g.source(i, false), g.inPrefix()
		g.fill(g.data)
		return echo(src, dst, seq, g.data), nil
	case CraftUnreachTCP:
		src := g.source(i, v6)
		q := Quote(g.Target, src, 6, uint16(32768+g.next()%28000), 80, 60)
		return Msg{Src: src, Dst: g.Target, Type: 3, Code: 3, Rest: Unreach(0, q)}.Frame(), nil
	case CraftError6Ext:
		src := g.source(i, true)
		exts := []IPv6Ext{HopByHop()}
		for k := 0; k < g.Options; k++ {
			exts = append(exts, DestOpts())
		}
		exts = append(exts, AH())
		var udp [8]byte
		binary.BigEndian.PutUint16(udp[0:2], uint16(32768+g.next()%28000))
		binary.BigEndian.PutUint16(udp[2:4], 53)
		binary.BigEndian.PutUint16(udp[4:6], 8)
		q := IPv6(g.Target, src, exts, 17, udp[:])
		return Msg{Src: src, Dst: g.Target, Type: 1, Code: 4, Rest: Unreach(0, q)}.Frame(), nil
	case CraftPTBSpray:
		forger := netip.MustParseAddr("203.0.113.66")
		if g.Sources > 0 {
			forger = g.source(i, false)
		}
		recv := g.inPrefix()
		q := Quote(recv, netip.MustParseAddr("198.51.100.80"), 6, uint16(32768+g.next()%28000), 443, 1500)
		return Msg{Src: forger, Dst: recv, Type: 3, Code: 4, Rest: Unreach(68, q)}.Frame(), nil
	case CraftRedirect:
		src := g.source(i, v6)
		if v6 {
			src = linkLocal(g.next())
			m := Msg{Src: src, Dst: g.Target, Type: 137,
				Rest: Redirect6(linkLocal(g.next()), RandomAddr(g.next(), false), LinkAddrOpt(2, MAC(uint32(i))))}
			return m.Frame(), nil
		}
		gw, dst := RandomAddr(g.next(), true), RandomAddr(g.next(), true)
		q := Quote(g.Target, dst, 17, uint16(32768+g.next()%28000), 53, 60)
		b := gw.As4()
		return Msg{Src: src, Dst: g.Target, Type: 5, Code: 1, Rest: Unreach(binary.BigEndian.Uint32(b[:]), q)}.Frame(), nil
	case CraftRAOptions:
		src := linkLocal(g.next())
		ra := RA(1800, 0, PrefixOpt(netip.MustParsePrefix("2001:db8:1::/64")), unknownOpts(g.Options))
		m := Msg{Src: src, Dst: netip.MustParseAddr("ff02::1"), SrcMAC: MAC(uint32(g.next())), Type: 134, Rest: ra}
		return m.Frame(), nil
	case CraftRAPrefixes:
		src := linkLocal(g.next())
		opts := make([][]byte, g.Options)
		for k := range opts {
			r := g.next()
			a := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r >> 24), byte(r >> 16), byte(r >> 8), byte(r)}
			opts[k] = PrefixOpt(netip.PrefixFrom(netip.AddrFrom16(a), 64))
		}
		m := Msg{Src: src, Dst: netip.MustParseAddr("ff02::1"), SrcMAC: MAC(uint32(g.next())), Type: 134, Rest: RA(1800, 0, opts...)}
		return m.Frame(), nil
	case CraftNDOptions:
		src := g.source(i, true)
		mac := MAC(uint32(g.next()))
		if i%2 == 0 {
			return Msg{Src: src, Dst: g.Target, SrcMAC: mac, Type: 135,
				Rest: NS(g.Target, unknownOpts(g.Options), LinkAddrOpt(1, mac))}.Frame(), nil
		}
		return Msg{Src: src, Dst: g.Target, SrcMAC: mac, Type: 136,
			Rest: NA(src, false, true, true, unknownOpts(g.Options), LinkAddrOpt(2, mac))}.Frame(), nil
	case CraftIPIP4:
		f := echo(g.source(i, false), g.Target, seq, g.data)
		for k := 0; k < 4; k++ {
			var err error
			if f, err = Wrap(WrapIPinIP, f); err != nil {
				return nil, err
			}
		}
		return f, nil
	case CraftDeepStack:
		f := echo(g.source(i, false), g.Target, seq, g.data)
		for _, k := range []string{WrapIPinIP, WrapVXLAN, WrapGRE, WrapQinQ8} {
			var err error
			if f, err = Wrap(k, f); err != nil {
				return nil, err
			}
		}
		return f, nil
	case CraftFragTrains:
		if i%2 == 1 && g.train != nil {
			f := g.train
			g.train = nil
			return f, nil
		}
		src := g.source(i/2, false)
		d := Datagram{Src: src, Dst: g.Target, ID: uint32(i / 2),
			Payload: EchoMessage(src, g.Target, 0x4242, uint16(i/2), 8+g.Payload)}
		half := (8 + g.Payload) / 2 &^ 7
		first, err := d.Frame(Piece{Offset: 0, Len: half, More: true})
		if err != nil {
			return nil, err
		}
		if g.train, err = d.Frame(Piece{Offset: half, Len: 8 + g.Payload - half}); err != nil {
			return nil, err
		}
		return first, nil
	}
	return nil, fmt.Errorf("crafted: unknown kind %q", g.Kind)
}
