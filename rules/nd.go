package rules

import (
	"encoding/binary"
	"net/netip"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
)

// This file holds what the IPv6 neighbor-discovery rules (ra_flood,
// rogue_ra, nd_flood, nd_spoof) share: reading an ND message's link-layer
// address and telling a router's EUI-64 address.

// ndLinkAddr returns the link-layer address an ND message speaks for: the
// source (RA, NS) or target (NA) link-layer option when present among the
// options the packet's one bounded walk reads (Packet.NDOptions), else the
// frame's Ethernet source. ok is false when neither is known.
func ndLinkAddr(p *detector.Packet) (mac [6]byte, fromOption, ok bool) {
	switch p.ICMPType {
	case icmpmsg.V6RouterAdvert, icmpmsg.V6NeighSolicit:
		if nd := p.NDOptions(); nd.HasSrcLinkAddr {
			return nd.SrcLinkAddr, true, true
		}
	case icmpmsg.V6NeighAdvert:
		if nd := p.NDOptions(); nd.HasTgtLinkAddr {
			return nd.TgtLinkAddr, true, true
		}
	}
	return p.SrcMAC, false, p.HasSrcMAC
}

// eui64MAC returns the MAC address a modified EUI-64 interface identifier
// (RFC 4291 appendix A: ff:fe in its middle) was made from.
func eui64MAC(a netip.Addr) ([6]byte, bool) {
	if !a.Is6() || a.Is4In6() {
		return [6]byte{}, false
	}
	b := a.As16()
	if b[11] != 0xff || b[12] != 0xfe {
		return [6]byte{}, false
	}
	return [6]byte{b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]}, true
}

// isND tells whether p is an ICMPv6 neighbor-discovery message of type typ
// with its whole fixed part. An atomic fragment (offset 0, no more
// fragments: THC's RA-Guard bypass, -f) is a whole message too.
func isND(p *detector.Packet, typ uint8, fixed int) bool {
	whole := !p.Fragment || p.FragOffset == 0 && !p.MoreFragments
	return p.IPv6 && p.HasICMP && whole && p.ICMPType == typ && len(p.ICMPData) >= fixed
}

// prefixOf is the prefix whose address has the big-endian halves hi and
// lo, of length bits (<= 128), as icmpmsg.Prefix reads it (not masked).
func prefixOf(hi, lo uint64, bits uint8) netip.Prefix {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.PrefixFrom(netip.AddrFrom16(b), int(bits))
}

// maskedPrefix is prefixOf(hi, lo, bits).Masked(), its bits past the
// length cleared on the words (no netip.Addr.Prefix call).
func maskedPrefix(hi, lo uint64, bits uint8) netip.Prefix {
	switch {
	case bits == 0:
		hi, lo = 0, 0
	case bits < 64:
		hi, lo = hi&^(^uint64(0)>>bits), 0
	case bits < 128:
		lo &^= ^uint64(0) >> (bits - 64)
	}
	return prefixOf(hi, lo, bits)
}

// macString spells a MAC address the usual way.
func macString(m [6]byte) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[x>>4], hex[x&15])
	}
	return string(b)
}
