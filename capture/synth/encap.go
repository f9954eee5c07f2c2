package synth

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Encapsulations Wrap builds, as a sensor is handed them: tag stacks,
// label stacks, access links, tunnels and mirror formats.
const (
	WrapVLAN3     = "vlan3"      // three 802.1Q tags
	WrapQinQ8     = "qinq8"      // eight tags, 802.1ad outermost
	WrapMPLS      = "mpls"       // two MPLS labels, IP after the bottom of stack
	WrapMPLSPW    = "mpls-pw"    // an Ethernet pseudowire: label, control word, Ethernet
	WrapPPPoE     = "pppoe"      // a PPPoE session frame (PPP IPv4/IPv6)
	WrapGRE       = "gre"        // IPv4 / GRE / IP
	WrapGREKeySeq = "gre-ck-key" // GRE with checksum, key and sequence present
	WrapGRETEB    = "gre-teb"    // GRE transparent Ethernet bridging
	WrapERSPAN2   = "erspan2"    // GRE / ERSPAN type II / Ethernet
	WrapERSPAN3   = "erspan3"    // GRE / ERSPAN type III with its platform sub-header / Ethernet
	WrapVXLAN     = "vxlan"      // IPv4 / UDP 4789 / VXLAN / Ethernet
	WrapGENEVE    = "geneve"     // IPv4 / UDP 6081 / GENEVE (with an option) / Ethernet
	WrapIPinIP    = "ipip"       // IPv4 / IPv4 (protocol 4) or IPv4 / IPv6 (6in4, protocol 41)
	WrapIPinIPv6  = "ip-in-ip6"  // IPv6 / IPv4 or IPv6 (next header 4 or 41)
	WrapTeredo    = "teredo"     // IPv4 / UDP 3544 / origin indication / IPv6 (IPv6 inner only)
)

// Wraps lists every encapsulation Wrap builds.
var Wraps = []string{WrapVLAN3, WrapQinQ8, WrapMPLS, WrapMPLSPW, WrapPPPoE, WrapGRE, WrapGREKeySeq, WrapGRETEB,
	WrapERSPAN2, WrapERSPAN3, WrapVXLAN, WrapGENEVE, WrapIPinIP, WrapIPinIPv6, WrapTeredo}

// Outer addresses of the carriers Wrap builds (documentation addresses).
var (
	tunnelSrc4 = netip.MustParseAddr("192.0.2.100")
	tunnelDst4 = netip.MustParseAddr("192.0.2.200")
	tunnelSrc6 = netip.MustParseAddr("2001:db8:ffff::100")
	tunnelDst6 = netip.MustParseAddr("2001:db8:ffff::200")
)

// TunnelSrc is the outer source address of the carriers Wrap builds.
func TunnelSrc(kind string) netip.Addr {
	if kind == WrapIPinIPv6 {
		return tunnelSrc6
	}
	return tunnelSrc4
}

// Wrap returns the untagged Ethernet frame f (IPv4 or IPv6) encapsulated
// as kind. Teredo takes IPv6 only.
func Wrap(kind string, f []byte) ([]byte, error) {
	if len(f) < 15 {
		return nil, fmt.Errorf("wrap: frame of %d bytes", len(f))
	}
	eth, et, ip := f[:14], binary.BigEndian.Uint16(f[12:14]), f[14:]
	v6 := et == ethTypeIPv6
	ethWith := func(t uint16, payload []byte) []byte {
		out := append(append([]byte{}, eth[:12]...), byte(t>>8), byte(t))
		return append(out, payload...)
	}
	tags := func(n int) []byte {
		out := append([]byte{}, eth[:12]...)
		for i := 0; i < n; i++ {
			tpid := uint16(ethTypeDot1Q)
			if i == 0 && kind == WrapQinQ8 {
				tpid = ethTypeDot1AD
			}
			out = binary.BigEndian.AppendUint16(out, tpid)
			out = binary.BigEndian.AppendUint16(out, uint16(100+i))
		}
		out = binary.BigEndian.AppendUint16(out, et)
		return append(out, ip...)
	}
	gre := func(flags, proto uint16, payload []byte) []byte {
		h := binary.BigEndian.AppendUint16(nil, flags)
		h = binary.BigEndian.AppendUint16(h, proto)
		if flags&0x8000 != 0 {
			h = append(h, 0, 0, 0, 0) // checksum + reserved
		}
		if flags&0x2000 != 0 {
			h = binary.BigEndian.AppendUint32(h, 0xcafe)
		}
		if flags&0x1000 != 0 {
			h = binary.BigEndian.AppendUint32(h, 7)
		}
		return ethWith(ethTypeIPv4, IPv4(IPv4Header{Src: tunnelSrc4, Dst: tunnelDst4, Proto: 47}, append(h, payload...)))
	}
	udp := func(sport, dport uint16, payload []byte) []byte {
		u := binary.BigEndian.AppendUint16(nil, sport)
		u = binary.BigEndian.AppendUint16(u, dport)
		u = binary.BigEndian.AppendUint16(u, uint16(8+len(payload)))
		u = append(u, 0, 0)
		return ethWith(ethTypeIPv4, IPv4(IPv4Header{Src: tunnelSrc4, Dst: tunnelDst4, Proto: 17}, append(u, payload...)))
	}
	ipProto := uint8(4)
	if v6 {
		ipProto = 41
	}
	switch kind {
	case WrapVLAN3:
		return tags(3), nil
	case WrapQinQ8:
		return tags(8), nil
	case WrapMPLS:
		labels := []byte{0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40} // label 16, then 32 with S set
		return ethWith(0x8847, append(labels, ip...)), nil
	case WrapMPLSPW:
		return ethWith(0x8847, append([]byte{0x00, 0x03, 0x01, 0x40, 0, 0, 0, 0}, f...)), nil
	case WrapPPPoE:
		proto := uint16(0x0021)
		if v6 {
			proto = 0x0057
		}
		h := []byte{0x11, 0x00, 0x12, 0x34}
		h = binary.BigEndian.AppendUint16(h, uint16(2+len(ip)))
		h = binary.BigEndian.AppendUint16(h, proto)
		return ethWith(0x8864, append(h, ip...)), nil
	case WrapGRE:
		return gre(0, et, ip), nil
	case WrapGREKeySeq:
		return gre(0xb000, et, ip), nil
	case WrapGRETEB:
		return gre(0, 0x6558, f), nil
	case WrapERSPAN2:
		h := []byte{0x10, 0x0a, 0x00, 0x01, 0, 0, 0, 9} // version 1, VLAN 10, session 1, index 9
		return gre(0x1000, 0x88be, append(h, f...)), nil
	case WrapERSPAN3:
		h := []byte{0x20, 0x0a, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01} // version 2, O flag: platform sub-header
		h = append(h, 0, 0, 0, 0, 0, 0, 0, 0)
		return gre(0, 0x22eb, append(h, f...)), nil
	case WrapVXLAN:
		return udp(54321, 4789, append([]byte{0x08, 0, 0, 0, 0, 0, 0x2a, 0}, f...)), nil
	case WrapGENEVE:
		h := []byte{0x02, 0x00, 0x65, 0x58, 0, 0, 0x2a, 0} // 2 words of options, Ethernet
		h = append(h, 0x01, 0x02, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef)
		return udp(54321, 6081, append(h, f...)), nil
	case WrapIPinIP:
		return ethWith(ethTypeIPv4, IPv4(IPv4Header{Src: tunnelSrc4, Dst: tunnelDst4, Proto: ipProto}, ip)), nil
	case WrapIPinIPv6:
		return ethWith(ethTypeIPv6, IPv6(tunnelSrc6, tunnelDst6, nil, ipProto, ip)), nil
	case WrapTeredo:
		if !v6 {
			return nil, fmt.Errorf("wrap: Teredo carries IPv6 only")
		}
		origin := []byte{0, 0, 0xf2, 0x27, 0x3f, 0xfd, 0xff, 0x37} // origin indication
		return udp(3544, 40000, append(origin, ip...)), nil
	}
	return nil, fmt.Errorf("wrap: unknown encapsulation %q", kind)
}

// WrapFrames wraps every frame of fs as kind.
func WrapFrames(kind string, fs []Frame) ([]Frame, error) {
	out := make([]Frame, len(fs))
	for i, f := range fs {
		d, err := Wrap(kind, f.Data)
		if err != nil {
			return nil, err
		}
		out[i] = Frame{Time: f.Time, Data: d}
	}
	return out, nil
}
