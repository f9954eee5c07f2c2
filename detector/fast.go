package detector

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

// The fast path decodes, by hand and without gopacket, the frames that make
// up nearly all traffic: Ethernet (up to two 802.1Q/802.1ad tags) or raw
// IP, carrying an IPv4 header without options or an IPv6 header without
// extension headers, that is not a fragment, with TCP, UDP, or an ICMP or
// ICMPv6 header that is whole; and IPv4 fragments without options, of any
// protocol (a first fragment's ICMP header read when it holds one whole,
// as the gopacket path does), and IPv6 fragments whose fragment header is
// the only extension header (fastFrag6), with their sum. It fills the
// Packet exactly as the gopacket layers would (TestFastPathMatchesLayers
// and FuzzFastPath pin that) and declines everything else — options, other
// extension headers, tunnels, short or malformed headers, other link types —
// which then takes the gopacket path with its checks and reason codes.
// TCP and UDP packets cost a few header reads here: the rules never see
// them.

const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86dd
	etherDot1Q = 0x8100
	etherQinQ  = 0x88a8
	protoTCP   = 6
	protoUDP   = 17
)

// fast decodes data into p when the frame is one the fast path handles, and
// reports whether it did. p must have been reset by Decode; it is left
// untouched when fast declines.
func (d *Decoder) fast(lt LinkType, data []byte, p *Packet) bool {
	var bcast, mcast bool
	var src []byte
	var vlans [2]uint16
	tags := 0
	switch lt {
	case LinkEthernet:
		if len(data) < 14 {
			return false
		}
		src = data[6:12]
		if data[0]&1 != 0 {
			mcast = true
			bcast = data[0] == 0xff && data[1] == 0xff && data[2] == 0xff &&
				data[3] == 0xff && data[4] == 0xff && data[5] == 0xff
		}
		et := binary.BigEndian.Uint16(data[12:14])
		data = data[14:]
		for ; et == etherDot1Q || et == etherQinQ; tags++ {
			if tags == 2 || len(data) < 4 {
				return false
			}
			vlans[tags] = binary.BigEndian.Uint16(data[0:2]) & 0x0fff
			et = binary.BigEndian.Uint16(data[2:4])
			data = data[4:]
		}
		switch et {
		case etherIPv4:
			if !fastIPv4(data, p, d) {
				return false
			}
		case etherIPv6:
			if !fastIPv6(data, p, d) {
				return false
			}
		default:
			return false
		}
	case LinkRaw, LinkRawDLT12, LinkRawDLT14, LinkIPv4, LinkIPv6:
		if len(data) == 0 {
			return false
		}
		switch v := data[0] >> 4; {
		case v == 4 && lt != LinkIPv6:
			if !fastIPv4(data, p, d) {
				return false
			}
		case v == 6 && lt != LinkIPv4:
			if !fastIPv6(data, p, d) {
				return false
			}
		default:
			return false
		}
	default:
		return false
	}
	p.L2Broadcast, p.L2Multicast = bcast, mcast
	if src != nil {
		p.SrcMAC, p.HasSrcMAC = [6]byte(src), true
		if tags > 0 {
			p.VLANs[0], p.VLANs[1], p.NVLAN = vlans[0], vlans[1], uint8(tags)
		}
	}
	return true
}

// fastIPv4 fills p from an IPv4 packet without options that is a
// fragment (fastFrag4), or carries TCP, UDP (not to a tunnel port of d) or
// a whole ICMP header, or declines. (d, one argument, for its encapsulations
// and its CRC table: a register less to pass and keep every packet.)
func fastIPv4(b []byte, p *Packet, d *Decoder) bool {
	if len(b) < 20 || b[0] != 0x45 {
		return false
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 { // TSO (0) and short lengths
		return false
	}
	if length > len(b)+p.WireLen-p.CapLen { // longer than the frame on the wire: the slow path counts it
		return false
	}
	if ff := binary.BigEndian.Uint16(b[6:8]); ff&0x3fff != 0 { // MF or an offset
		fastFrag4(b, length, ff, p, d.crc)
		return true
	}
	proto := b[9]
	var hasICMP bool
	var icmp []byte
	switch proto {
	case protoTCP:
	case protoUDP:
		if d.enc.anyUDP && len(b) >= 28 && d.enc.udpTunnel(binary.BigEndian.Uint16(b[20:22]), binary.BigEndian.Uint16(b[22:24])) {
			return false
		}
	case ProtoICMPv4:
		icmp = b[20:min(length, len(b))]
		if len(icmp) < 8 {
			return false
		}
		hasICMP = true
	default:
		return false
	}
	// The fixed header's fields, written in each fast path rather than in
	// a shared function: one over the inliner's budget costs a call a
	// packet (+21 instructions a packet on the mix for IPv6's).
	p.IPv6 = false
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.TTL = b[8]
	p.Proto = proto
	p.IPLen = length
	p.HeaderLen = 20
	p.FragID = uint32(binary.BigEndian.Uint16(b[4:6]))
	p.FragLen = length - 20
	if hasICMP {
		p.HasICMP = true
		p.ICMPType, p.ICMPCode = icmp[0], icmp[1]
		p.ICMPID = binary.BigEndian.Uint16(icmp[4:6])
		p.ICMPSeq = binary.BigEndian.Uint16(icmp[6:8])
		p.ICMPData = icmp
	}
	return true
}

// fastFrag4 fills p from an IPv4 fragment without options (b, total
// length length, flags and offset ff), as the gopacket path does: the
// fixed header, the fragment fields, for a first fragment of ICMP the
// ICMP header when it holds 8 bytes, and the sum of the fragment's
// captured data. A fragment of a tunnel carrier stays a fragment here as
// there (unwrap never peels one).
func fastFrag4(b []byte, length int, ff uint16, p *Packet, crc *crc32.Table) {
	p.IPv6 = false
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.TTL = b[8]
	p.Proto = b[9]
	p.IPLen = length
	p.HeaderLen = 20
	p.Fragment = true
	p.MoreFragments = ff&0x2000 != 0
	p.FragOffset = int(ff&0x1fff) * 8
	p.FragID = uint32(binary.BigEndian.Uint16(b[4:6]))
	p.FragLen = length - 20
	data := b[20:min(length, len(b))]
	if p.FragOffset == 0 && p.Proto == ProtoICMPv4 && len(data) >= 8 {
		p.HasICMP = true
		p.ICMPType, p.ICMPCode = data[0], data[1]
		p.ICMPID = binary.BigEndian.Uint16(data[4:6])
		p.ICMPSeq = binary.BigEndian.Uint16(data[6:8])
		p.ICMPData = data
	}
	p.FragSum = fragSum(crc, data)
}

// fastIPv6 fills p from an IPv6 packet without extension headers that
// carries TCP, UDP (not to a tunnel port of d) or a whole ICMPv6 header (8
// bytes for an echo), or declines.
func fastIPv6(b []byte, p *Packet, d *Decoder) bool {
	if len(b) < 40 || b[0]>>4 != 6 {
		return false
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if plen == 0 { // jumbogram or TSO: the gopacket path takes what is there
		return false
	}
	next := b[6]
	if next == ipv6Fragment {
		return fastFrag6(b, plen, p, d.crc)
	}
	var hasICMP bool
	var icmp []byte
	switch next {
	case protoTCP:
	case protoUDP:
		if d.enc.anyUDP && len(b) >= 48 && d.enc.udpTunnel(binary.BigEndian.Uint16(b[40:42]), binary.BigEndian.Uint16(b[42:44])) {
			return false
		}
	case ProtoICMPv6:
		icmp = b[40:min(40+plen, len(b))]
		if !icmpv6Whole(icmp) {
			return false
		}
		hasICMP = true
	default:
		return false
	}
	// The fixed header's fields, written here rather than in a shared
	// function: one over the inliner's budget cost the mix +21
	// instructions a packet (BenchmarkEngine, cachegrind).
	p.IPv6 = true
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	p.TTL = b[7]
	p.Proto = next
	p.IPLen = 40 + plen
	p.HeaderLen = 40
	if hasICMP {
		fillICMPv6(p, icmp)
	}
	return true
}

// icmpv6Whole tells whether icmp holds an ICMPv6 header whole: 4 bytes, 8
// for an echo (its identifier and sequence).
func icmpv6Whole(icmp []byte) bool {
	if len(icmp) < 4 {
		return false
	}
	t := icmp[0]
	return (t != ICMPv6EchoRequest && t != ICMPv6EchoReply) || len(icmp) >= 8
}

// fillICMPv6 sets p's ICMPv6 fields from icmp (whole: icmpv6Whole).
func fillICMPv6(p *Packet, icmp []byte) {
	p.HasICMP = true
	p.ICMPType, p.ICMPCode = icmp[0], icmp[1]
	p.ICMPData = icmp
	if t := icmp[0]; t == ICMPv6EchoRequest || t == ICMPv6EchoReply {
		p.ICMPID = binary.BigEndian.Uint16(icmp[4:6])
		p.ICMPSeq = binary.BigEndian.Uint16(icmp[6:8])
	}
}

// fastFrag6 fills p from an IPv6 fragment whose fragment header follows
// the fixed header (payload length plen), as the gopacket path (ipv6Layer)
// does, or declines: a later fragment of any protocol; a first fragment of
// TCP, UDP, or ICMPv6 with its header whole (8 bytes for an echo). A first
// fragment with more extension headers, of a tunnel, or whose fragment
// header is cut or longer than the payload, takes the gopacket path.
func fastFrag6(b []byte, plen int, p *Packet, crc *crc32.Table) bool {
	if len(b) < 48 || plen < 8 {
		return false
	}
	ipLen := 40 + plen
	off := int(binary.BigEndian.Uint16(b[42:44]) &^ 7)
	next := b[40]
	data := b[48:min(ipLen, len(b))]
	var icmp bool
	if off == 0 {
		switch next {
		case protoTCP, protoUDP:
		case ProtoICMPv6:
			if !icmpv6Whole(data) {
				return false
			}
			icmp = true
		default:
			return false
		}
	}
	p.IPv6 = true
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	p.TTL = b[7]
	p.Proto = next
	p.IPLen = ipLen
	p.HeaderLen = 40
	p.Fragment = true
	p.MoreFragments = b[43]&1 != 0
	p.FragOffset = off
	p.FragID = binary.BigEndian.Uint32(b[44:48])
	p.FragLen = ipLen - 48
	if icmp {
		fillICMPv6(p, data)
	}
	p.FragSum = fragSum(crc, data)
	return true
}
