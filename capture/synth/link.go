package synth

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// LINKTYPE_ values for which Encap builds link-layer headers.
const (
	LinkNull      uint16 = 0   // BSD loopback, host byte order (little-endian here)
	LinkEthernet  uint16 = 1   // Ethernet II, optionally 802.1Q / 802.1ad tagged
	LinkRaw       uint16 = 101 // raw IPv4 or IPv6
	LinkLoop      uint16 = 108 // OpenBSD loopback, network byte order
	LinkLinuxSLL  uint16 = 113 // Linux cooked capture v1 (16-byte header)
	LinkIPv4      uint16 = 228 // raw IPv4
	LinkIPv6      uint16 = 229 // raw IPv6
	LinkLinuxSLL2 uint16 = 276 // Linux cooked capture v2 (20-byte header)
)

// Loopback address-family values in DLT_NULL / DLT_LOOP headers.
const (
	AFInet          = 2
	AFInet6BSD      = 24 // NetBSD, OpenBSD, BSD/OS
	AFInet6FreeBSD  = 28
	AFInet6Darwin   = 30
	ethTypeIPv4     = 0x0800
	ethTypeIPv6     = 0x86dd
	ethTypeDot1Q    = 0x8100
	ethTypeDot1AD   = 0x88a8
	sllBroadcast    = 1 // SLL packet type: sent to everyone
	sllOtherHost    = 3 // SLL packet type: to another host (promiscuous)
	sllHeaderLen    = 16
	sll2HeaderLen   = 20
	arphrdEther     = 1
	loopHeaderBytes = 4
)

// Link describes the link-layer header Encap puts in front of an IP packet.
type Link struct {
	// Type is the LINKTYPE_ value (one of the Link* constants).
	Type uint16
	// VLANs are 802.1Q VLAN ids, outermost first (Ethernet only). With QinQ
	// the outer tag's TPID is 802.1ad's 0x88a8, the inner ones 0x8100.
	VLANs []uint16
	QinQ  bool
	// Broadcast sends the frame to the layer-2 broadcast address (Ethernet)
	// or marks it so in the packet type (SLL, SLL2).
	Broadcast bool
	// AF6 is the IPv6 address family written in a DLT_NULL or DLT_LOOP
	// header; 0 means AFInet6BSD.
	AF6 uint32
}

// Encap returns ip, an IPv4 or IPv6 packet, behind l's link-layer header.
func Encap(l Link, ip []byte) ([]byte, error) {
	if len(ip) == 0 {
		return nil, fmt.Errorf("encap: empty packet")
	}
	v6 := ip[0]>>4 == 6
	etype := uint16(ethTypeIPv4)
	if v6 {
		etype = ethTypeIPv6
	}
	var hdr []byte
	switch l.Type {
	case LinkEthernet:
		dst := net.HardwareAddr(dstMAC)
		if l.Broadcast {
			dst = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		}
		hdr = append(append(hdr, dst...), srcMAC...)
		for i, vid := range l.VLANs {
			tpid := uint16(ethTypeDot1Q)
			if l.QinQ && i == 0 && len(l.VLANs) > 1 {
				tpid = ethTypeDot1AD
			}
			hdr = binary.BigEndian.AppendUint16(hdr, tpid)
			hdr = binary.BigEndian.AppendUint16(hdr, vid&0x0fff)
		}
		hdr = binary.BigEndian.AppendUint16(hdr, etype)
	case LinkNull, LinkLoop:
		af := uint32(AFInet)
		if v6 {
			af = l.AF6
			if af == 0 {
				af = AFInet6BSD
			}
		}
		hdr = make([]byte, loopHeaderBytes)
		if l.Type == LinkNull {
			binary.LittleEndian.PutUint32(hdr, af)
		} else {
			binary.BigEndian.PutUint32(hdr, af)
		}
	case LinkRaw:
	case LinkIPv4, LinkIPv6:
		if v6 != (l.Type == LinkIPv6) {
			return nil, fmt.Errorf("encap: link type %d cannot carry an IPv%d packet", l.Type, ip[0]>>4)
		}
	case LinkLinuxSLL:
		// packet type, ARPHRD, address length, address (8 bytes), protocol
		hdr = make([]byte, sllHeaderLen)
		binary.BigEndian.PutUint16(hdr[0:2], sllPacketType(l.Broadcast))
		binary.BigEndian.PutUint16(hdr[2:4], arphrdEther)
		binary.BigEndian.PutUint16(hdr[4:6], 6)
		copy(hdr[6:12], srcMAC)
		binary.BigEndian.PutUint16(hdr[14:16], etype)
	case LinkLinuxSLL2:
		// protocol, reserved, ifindex, ARPHRD, packet type, address
		// length, address (8 bytes)
		hdr = make([]byte, sll2HeaderLen)
		binary.BigEndian.PutUint16(hdr[0:2], etype)
		binary.BigEndian.PutUint32(hdr[4:8], 2)
		binary.BigEndian.PutUint16(hdr[8:10], arphrdEther)
		hdr[10] = byte(sllPacketType(l.Broadcast))
		hdr[11] = 6
		copy(hdr[12:18], srcMAC)
	default:
		return nil, fmt.Errorf("encap: unsupported link type %d", l.Type)
	}
	return append(hdr, ip...), nil
}

func sllPacketType(broadcast bool) uint16 {
	if broadcast {
		return sllBroadcast
	}
	return sllOtherHost
}

// IPv4Header describes a raw IPv4 header (no options) for IPv4.
type IPv4Header struct {
	Src, Dst netip.Addr
	Proto    uint8
	TTL      uint8 // 0 means 64
	ID       uint16
	// FragOffset is the fragment offset in bytes (a multiple of 8); MF the
	// more-fragments flag; DF the don't-fragment flag.
	FragOffset int
	MF, DF     bool
	// TotalLen overrides the total-length field when non-zero.
	TotalLen int
}

// IPv4 returns an IPv4 packet with header h (checksum set) and payload.
func IPv4(h IPv4Header, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0] = 0x45
	total := 20 + len(payload)
	if h.TotalLen != 0 {
		total = h.TotalLen
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(total))
	binary.BigEndian.PutUint16(b[4:6], h.ID)
	ff := uint16(h.FragOffset/8) & 0x1fff
	if h.MF {
		ff |= 0x2000
	}
	if h.DF {
		ff |= 0x4000
	}
	binary.BigEndian.PutUint16(b[6:8], ff)
	b[8] = h.TTL
	if b[8] == 0 {
		b[8] = 64
	}
	b[9] = h.Proto
	s, d := h.Src.As4(), h.Dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:12], ^sum16(0, b))
	return append(b, payload...)
}

// IPv6Ext is one IPv6 extension header: its protocol number and its bytes
// after the next-header field (IPv6 fills that field in).
type IPv6Ext struct {
	Proto uint8
	Body  []byte
}

// HopByHop returns an 8-byte hop-by-hop options header holding a router
// alert option (as MLD uses).
func HopByHop() IPv6Ext {
	return IPv6Ext{Proto: 0, Body: []byte{0, 5, 2, 0, 0, 1, 0}} // len 0, router alert, PadN
}

// DestOpts returns an 8-byte destination-options header of padding.
func DestOpts() IPv6Ext {
	return IPv6Ext{Proto: 60, Body: []byte{0, 1, 4, 0, 0, 0, 0}}
}

// AH returns a 24-byte authentication header (12 bytes of ICV).
func AH() IPv6Ext {
	b := make([]byte, 23)
	b[0] = 4 // payload length: (24 / 4) - 2
	binary.BigEndian.PutUint32(b[3:7], 0x100)
	binary.BigEndian.PutUint32(b[7:11], 1)
	return IPv6Ext{Proto: 51, Body: b}
}

// FragmentHeader returns an IPv6 fragment header: offset in bytes (a
// multiple of 8), the M flag and the identification.
func FragmentHeader(offset int, more bool, id uint32) IPv6Ext {
	b := make([]byte, 7)
	of := uint16(offset) &^ 7
	if more {
		of |= 1
	}
	binary.BigEndian.PutUint16(b[1:3], of)
	binary.BigEndian.PutUint32(b[3:7], id)
	return IPv6Ext{Proto: 44, Body: b}
}

// IPv6 returns an IPv6 packet from src to dst with hop limit 64, the
// extension headers exts in order, then payload of upper-layer protocol proto.
func IPv6(src, dst netip.Addr, exts []IPv6Ext, proto uint8, payload []byte) []byte {
	b := make([]byte, 40)
	b[0] = 0x60
	b[7] = 64
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	nextAt := 6
	for _, e := range exts {
		b[nextAt] = e.Proto
		nextAt = len(b)
		b = append(b, 0)
		b = append(b, e.Body...)
	}
	b[nextAt] = proto
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(b)-40))
	return b
}

// ICMPEcho returns an ICMP (v6 false) or ICMPv6 message of type typ with
// the echo identifier and sequence and payloadLen data bytes. The ICMPv4
// checksum is set; an ICMPv6 one needs the addresses: see ICMPv6Checksum.
func ICMPEcho(v6 bool, typ uint8, id, seq uint16, payloadLen int) []byte {
	b := make([]byte, 8+payloadLen)
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	for i := 8; i < len(b); i++ {
		b[i] = byte(i - 8)
	}
	if !v6 {
		binary.BigEndian.PutUint16(b[2:4], ^sum16(0, b))
	}
	return b
}

// ICMPv6Checksum sets the checksum of the ICMPv6 message msg sent from src
// to dst and returns msg.
func ICMPv6Checksum(src, dst netip.Addr, msg []byte) []byte {
	s, d := src.As16(), dst.As16()
	var ph [40]byte
	copy(ph[0:16], s[:])
	copy(ph[16:32], d[:])
	binary.BigEndian.PutUint32(ph[32:36], uint32(len(msg)))
	ph[39] = 58
	msg[2], msg[3] = 0, 0
	binary.BigEndian.PutUint16(msg[2:4], ^sum16(sum16(0, ph[:]), msg))
	return msg
}

// sum16 adds b to the ones'-complement sum s (RFC 1071).
func sum16(s uint16, b []byte) uint16 {
	acc := uint32(s)
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}
