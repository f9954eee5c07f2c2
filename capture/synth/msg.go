package synth

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"
)

// Msg is one ICMP or ICMPv6 message of any type in an Ethernet frame,
// built byte by byte, so tests can write what gopacket's layers cannot
// (a forged quote, a neighbor-discovery option, a bad length).
type Msg struct {
	Src, Dst netip.Addr
	// SrcMAC and DstMAC default to the package's unicast addresses (and
	// DstMAC to the group address of a multicast Dst).
	SrcMAC, DstMAC net.HardwareAddr
	// TTL is the IPv4 TTL or IPv6 hop limit; 0 means 64, or 255 for the
	// neighbor-discovery types (133–137), which RFC 4861 requires.
	TTL        uint8
	Type, Code uint8
	// Rest is the message after type, code and checksum (from byte 4).
	Rest []byte
}

// Bytes returns the ICMP message (checksum set).
func (m Msg) Bytes() []byte {
	b := append([]byte{m.Type, m.Code, 0, 0}, m.Rest...)
	if m.Src.Is4() {
		binary.BigEndian.PutUint16(b[2:4], ^sum16(0, b))
		return b
	}
	return ICMPv6Checksum(m.Src, m.Dst, b)
}

// Frame returns the message in an IPv4 or IPv6 packet in an Ethernet frame.
func (m Msg) Frame() []byte {
	ttl := m.TTL
	if ttl == 0 {
		ttl = 64
		if !m.Src.Is4() && m.Type >= 133 && m.Type <= 137 {
			ttl = 255
		}
	}
	var ip []byte
	et := uint16(ethTypeIPv4)
	if m.Src.Is4() {
		ip = IPv4(IPv4Header{Src: m.Src, Dst: m.Dst, Proto: 1, TTL: ttl}, m.Bytes())
	} else {
		et = ethTypeIPv6
		ip = IPv6(m.Src, m.Dst, nil, 58, m.Bytes())
		ip[7] = ttl
	}
	src, dst := m.SrcMAC, m.DstMAC
	if src == nil {
		src = srcMAC
	}
	if dst == nil {
		dst = dstMAC
		if m.Dst.IsMulticast() {
			dst = GroupMAC(m.Dst)
		}
	}
	f := make([]byte, 14, 14+len(ip))
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:14], et)
	return append(f, ip...)
}

// Target is the IP destination of an Ethernet frame built by Msg.Frame
// (tests compare it with an alert's target).
func (f Frame) Target() netip.Addr {
	if len(f.Data) < 14+20 {
		return netip.Addr{}
	}
	if binary.BigEndian.Uint16(f.Data[12:14]) == ethTypeIPv6 && len(f.Data) >= 14+40 {
		return netip.AddrFrom16([16]byte(f.Data[14+24 : 14+40]))
	}
	return netip.AddrFrom4([4]byte(f.Data[14+16 : 14+20]))
}

// Src is the IP source of an Ethernet frame built by Msg.Frame.
func (f Frame) Src() netip.Addr {
	if len(f.Data) < 14+20 {
		return netip.Addr{}
	}
	if binary.BigEndian.Uint16(f.Data[12:14]) == ethTypeIPv6 && len(f.Data) >= 14+40 {
		return netip.AddrFrom16([16]byte(f.Data[14+8 : 14+24]))
	}
	return netip.AddrFrom4([4]byte(f.Data[14+12 : 14+16]))
}

// At returns the message as a Frame captured at t.
func (m Msg) At(t time.Time) Frame { return Frame{Time: t, Data: m.Frame()} }

// Quote returns what an ICMP error quotes of a packet from src to dst of
// protocol proto: its IP header (IPv4 without options, or IPv6) with the
// length field giving length bytes in all, then the first 8 bytes of the
// transport header (ports sport and dport; for ICMP the type in the port's
// first byte).
func Quote(src, dst netip.Addr, proto uint8, sport, dport uint16, length int) []byte {
	var l4 [8]byte
	binary.BigEndian.PutUint16(l4[0:2], sport)
	binary.BigEndian.PutUint16(l4[2:4], dport)
	if src.Is4() {
		return IPv4(IPv4Header{Src: src, Dst: dst, Proto: proto, TotalLen: length}, l4[:])
	}
	ip := IPv6(src, dst, nil, proto, l4[:])
	binary.BigEndian.PutUint16(ip[4:6], uint16(length-40))
	return ip
}

// Unreach returns the body (Rest) of an error message quoting q: 4 bytes
// of header data (unused, a pointer or an MTU) then the quote.
func Unreach(headerData uint32, q []byte) []byte {
	b := make([]byte, 4, 4+len(q))
	binary.BigEndian.PutUint32(b, headerData)
	return append(b, q...)
}

// RA returns the body of a Router Advertisement: router lifetime in
// seconds, preference (0 medium, 1 high, 3 low), then options.
func RA(lifetime uint16, pref uint8, opts ...[]byte) []byte {
	b := make([]byte, 12)
	b[0] = 64 // cur hop limit
	b[1] = (pref & 3) << 3
	binary.BigEndian.PutUint16(b[2:4], lifetime)
	for _, o := range opts {
		b = append(b, o...)
	}
	return b
}

// NS returns the body of a Neighbor Solicitation for target, then options.
func NS(target netip.Addr, opts ...[]byte) []byte {
	t := target.As16()
	b := append(make([]byte, 4), t[:]...)
	for _, o := range opts {
		b = append(b, o...)
	}
	return b
}

// NA returns the body of a Neighbor Advertisement for target with the
// router, solicited and override flags, then options.
func NA(target netip.Addr, router, solicited, override bool, opts ...[]byte) []byte {
	b := NS(target, opts...)
	if router {
		b[0] |= 0x80
	}
	if solicited {
		b[0] |= 0x40
	}
	if override {
		b[0] |= 0x20
	}
	return b
}

// Redirect6 returns the body of an ICMPv6 redirect: a better first hop
// target for destination, then options.
func Redirect6(target, destination netip.Addr, opts ...[]byte) []byte {
	t, d := target.As16(), destination.As16()
	b := append(make([]byte, 4), t[:]...)
	b = append(b, d[:]...)
	for _, o := range opts {
		b = append(b, o...)
	}
	return b
}

// LinkAddrOpt returns a source (typ 1) or target (typ 2) link-layer
// address option.
func LinkAddrOpt(typ uint8, mac net.HardwareAddr) []byte {
	return append([]byte{typ, 1}, mac[:6]...)
}

// PrefixOpt returns a prefix-information option (on-link, autonomous).
func PrefixOpt(p netip.Prefix) []byte {
	b := make([]byte, 32)
	b[0], b[1], b[2], b[3] = 3, 4, byte(p.Bits()), 0xc0
	binary.BigEndian.PutUint32(b[4:8], 86400)
	binary.BigEndian.PutUint32(b[8:12], 14400)
	a := p.Addr().As16()
	copy(b[16:32], a[:])
	return b
}

// MAC returns a locally administered unicast MAC address numbered n.
func MAC(n uint32) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x42, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// Every returns count frames of m at interval from start, mutated by each
// (which may be nil) with the frame's index before it is built.
func Every(m Msg, start time.Time, interval time.Duration, count int, each func(i int, m *Msg)) []Frame {
	out := make([]Frame, 0, count)
	for i := 0; i < count; i++ {
		mm := m
		if each != nil {
			each(i, &mm)
		}
		out = append(out, mm.At(start.Add(time.Duration(i)*interval)))
	}
	return out
}
