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
//
// nd is p.NDOptions() (small enough to inline so: each ND rule asks once
// a packet).
func ndLinkAddr(p *detector.Packet, nd *icmpmsg.ND) (mac [6]byte, fromOption, ok bool) {
	if p.ICMPType == icmpmsg.V6NeighAdvert {
		if nd.HasTgtLinkAddr {
			return nd.TgtLinkAddr, true, true
		}
	} else if nd.HasSrcLinkAddr && p.ICMPType != icmpmsg.V6Redirect {
		return nd.SrcLinkAddr, true, true // an RA's or a solicitation's
	}
	return p.SrcMAC, false, p.HasSrcMAC
}

// bindable tells whether a, an address an ND message names (read from
// IPv6 bytes, never an IPv4 Addr), may be bound to a link-layer address: what
// a.IsValid() && !a.IsMulticast() && !a.IsUnspecified() says of it, in a
// few instructions, inlined.
func bindable(a netip.Addr) bool {
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	return hi>>56 != 0xff && !(hi == 0 && lo>>28 == 0xffffe) && hi|lo != 0 // (the zero Addr is all zeros)
}

// eui64MAC returns the MAC address a modified EUI-64 interface identifier
// (RFC 4291 appendix A: ff:fe in its middle) was made from.
func eui64MAC(a netip.Addr) ([6]byte, bool) {
	// The ff:fe first: most addresses fail it (a forged router's random
	// interface identifier, one in 65,536 passes).
	b := a.As16()
	if b[11] != 0xff || b[12] != 0xfe || !a.Is6() || a.Is4In6() {
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

// raPrefix is a prefix of an RA's prefix-information option as words:
// the big-endian halves of its address and its length (<= 128). Equal
// prefixes are equal values; it holds no pointer, so keeping and
// comparing them costs a few words, and a netip.Prefix is made only for
// an alert (prefix).
type raPrefix struct {
	hi, lo uint64
	bits   uint8
}

// masked is x with the address bits past its length cleared
// (netip.Prefix.Masked).
func (x raPrefix) masked() raPrefix {
	switch {
	case x.bits == 0:
		x.hi, x.lo = 0, 0
	case x.bits < 64:
		x.hi, x.lo = x.hi&^(^uint64(0)>>x.bits), 0
	case x.bits < 128:
		x.lo &^= ^uint64(0) >> (x.bits - 64)
	}
	return x
}

// prefix is x as a netip.Prefix (what icmpmsg.Prefix reads of the option).
func (x raPrefix) prefix() netip.Prefix {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
	return netip.PrefixFrom(netip.AddrFrom16(b), int(x.bits))
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
