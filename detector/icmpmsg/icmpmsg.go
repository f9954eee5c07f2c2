// Package icmpmsg reads the fields of ICMP and ICMPv6 messages that the
// rules look at — the packet an error quotes, a redirect's gateway, the
// neighbor-discovery messages and their options — straight from the
// message bytes (detector.Packet.ICMPData), without allocating and without
// trusting a length field: every read is bounded by the bytes there are.
package icmpmsg

import (
	"encoding/binary"
	"net/netip"
)

// ICMP and ICMPv6 message types the rules read (RFC 792, 4443, 4861).
const (
	V4DestUnreach   = 3
	V4SourceQuench  = 4
	V4Redirect      = 5
	V4TimeExceeded  = 11
	V4ParamProblem  = 12
	V4FragNeededCod = 4 // code of type 3: fragmentation needed and DF set

	V6DestUnreach   = 1
	V6PacketTooBig  = 2
	V6TimeExceeded  = 3
	V6ParamProblem  = 4
	V6RouterSolicit = 133
	V6RouterAdvert  = 134
	V6NeighSolicit  = 135
	V6NeighAdvert   = 136
	V6Redirect      = 137
)

// IsError tells whether an ICMP (v6 false) or ICMPv6 message type is an
// error message that quotes the packet that caused it (the redirect,
// which also quotes one, is not an error).
func IsError(v6 bool, typ uint8) bool {
	if v6 {
		return typ >= V6DestUnreach && typ <= V6ParamProblem
	}
	switch typ {
	case V4DestUnreach, V4SourceQuench, V4TimeExceeded, V4ParamProblem:
		return true
	}
	return false
}

// Quote is what an ICMP error (or redirect) says of the packet it quotes.
type Quote struct {
	IPv6     bool
	Src, Dst netip.Addr
	// Proto is the upper-layer protocol (after the IPv6 extension headers
	// that are quoted whole).
	Proto uint8
	// Length is the quoted packet's own length field: IPv4 total length,
	// or IPv6 40 + payload length. HeaderLen is its IP header length.
	Length, HeaderLen int
	// Fragment is set when the quoted packet is a fragment; FragOffset is
	// its offset in bytes.
	Fragment   bool
	FragOffset int
	// Ports are the quoted TCP or UDP ports when HasPorts; ICMPType and
	// ICMPCode the quoted ICMP header when HasICMP.
	SrcPort, DstPort   uint16
	HasPorts           bool
	ICMPType, ICMPCode uint8
	HasICMP            bool
}

// QuoteStatus says how far a quote could be read.
type QuoteStatus uint8

// Quote outcomes.
const (
	QuoteOK        QuoteStatus = iota // an IP header of the right version, read
	QuoteMissing                      // the message is too short to carry any quote (cut by the capture or empty)
	QuoteMalformed                    // the quoted bytes are not an IP header of the right version
)

// ParseQuote reads the packet quoted by an ICMP error or redirect: msg is
// the whole message from its type byte; the quote begins at byte 8. v6
// tells ICMPv6 (the quote must be IPv6) from ICMP (IPv4).
func ParseQuote(v6 bool, msg []byte) (Quote, QuoteStatus) {
	var q Quote
	st := ParseQuoteInto(&q, v6, msg)
	return q, st
}

// ParseQuoteInto is ParseQuote writing the quote into *q (cleared first):
// for a caller that keeps it, where returning it copied its ~100 bytes.
func ParseQuoteInto(q *Quote, v6 bool, msg []byte) QuoteStatus {
	*q = Quote{}
	if len(msg) <= 8 {
		return QuoteMissing
	}
	b := msg[8:]
	if v6 {
		return parseQuote6(q, b)
	}
	if b[0]>>4 != 4 {
		return QuoteMalformed
	}
	hl := int(b[0]&0x0f) * 4
	if hl < 20 {
		return QuoteMalformed
	}
	if len(b) < 20 {
		return QuoteMissing
	}
	q.Src = netip.AddrFrom4([4]byte(b[12:16]))
	q.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	q.Proto = b[9]
	q.Length = int(binary.BigEndian.Uint16(b[2:4]))
	q.HeaderLen = hl
	ff := binary.BigEndian.Uint16(b[6:8])
	q.FragOffset = int(ff&0x1fff) * 8
	q.Fragment = ff&0x2000 != 0 || q.FragOffset != 0
	if len(b) >= hl && q.FragOffset == 0 {
		upper(q, b[hl:], q.Proto == 1)
	}
	return QuoteOK
}

func parseQuote6(q *Quote, b []byte) QuoteStatus {
	q.IPv6 = true
	if b[0]>>4 != 6 {
		return QuoteMalformed
	}
	if len(b) < 40 {
		return QuoteMissing
	}
	q.Src = netip.AddrFrom16([16]byte(b[8:24]))
	q.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	q.Length = 40 + int(binary.BigEndian.Uint16(b[4:6]))
	next, off := b[6], 40
	// Walk the extension headers that are quoted whole (at most 8).
	for i := 0; i < 8; i++ {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(b) < off+2 {
				q.Proto, q.HeaderLen = next, off
				return QuoteOK
			}
			next, off = b[off], off+(int(b[off+1])+1)*8
			continue
		case 44: // fragment
			if len(b) < off+8 {
				q.Proto, q.HeaderLen = next, off
				return QuoteOK
			}
			fo := binary.BigEndian.Uint16(b[off+2 : off+4])
			q.Fragment, q.FragOffset = true, int(fo&^7)
			next, off = b[off], off+8
			continue
		}
		break
	}
	q.Proto, q.HeaderLen = next, off
	if off <= len(b) && q.FragOffset == 0 {
		upper(q, b[off:], q.Proto == 58)
	}
	return QuoteOK
}

// upper reads the quoted transport ports or ICMP header from u.
func upper(q *Quote, u []byte, icmp bool) {
	switch {
	case icmp && len(u) >= 2:
		q.HasICMP, q.ICMPType, q.ICMPCode = true, u[0], u[1]
	case (q.Proto == 6 || q.Proto == 17 || q.Proto == 132 || q.Proto == 33) && len(u) >= 4:
		q.HasPorts = true
		q.SrcPort = binary.BigEndian.Uint16(u[0:2])
		q.DstPort = binary.BigEndian.Uint16(u[2:4])
	}
}

// MTU is the MTU an ICMPv6 Packet Too Big (bytes 4–7) or an ICMP
// fragmentation-needed (next-hop MTU, bytes 6–7, RFC 1191) claims; ok is
// false when the message is too short.
func MTU(v6 bool, msg []byte) (mtu uint32, ok bool) {
	if len(msg) < 8 {
		return 0, false
	}
	if v6 {
		return binary.BigEndian.Uint32(msg[4:8]), true
	}
	return uint32(binary.BigEndian.Uint16(msg[6:8])), true
}

// RedirectV4Gateway is the new gateway an ICMP redirect names (bytes 4–7).
func RedirectV4Gateway(msg []byte) (netip.Addr, bool) {
	if len(msg) < 8 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(msg[4:8])), true
}

// RedirectV6 is what an ICMPv6 redirect says: the better first hop
// (Target) for Destination. Options follow at byte 40.
func RedirectV6(msg []byte) (target, destination netip.Addr, ok bool) {
	if len(msg) < 40 {
		return netip.Addr{}, netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(msg[8:24])), netip.AddrFrom16([16]byte(msg[24:40])), true
}

// RouterAdvert is the fixed part of an ICMPv6 Router Advertisement.
type RouterAdvert struct {
	CurHopLimit uint8
	Managed     bool
	Other       bool
	// Preference is the default router preference (RFC 4191): 1 high,
	// 0 medium, 3 low (2 is reserved and means medium).
	Preference uint8
	// Lifetime is the router lifetime in seconds: 0 means "not a default
	// router" (kill_router6 sends it in the real router's name).
	Lifetime uint16
}

// ParseRouterAdvert reads an RA's fixed fields; its options follow at 16.
func ParseRouterAdvert(msg []byte) (RouterAdvert, bool) {
	if len(msg) < 16 {
		return RouterAdvert{}, false
	}
	return RouterAdvert{
		CurHopLimit: msg[4],
		Managed:     msg[5]&0x80 != 0,
		Other:       msg[5]&0x40 != 0,
		Preference:  (msg[5] >> 3) & 3,
		Lifetime:    binary.BigEndian.Uint16(msg[6:8]),
	}, true
}

// Offsets of the options in neighbor-discovery messages.
const (
	RouterAdvertOptions = 16
	NeighborOptions     = 24 // NS and NA
	RedirectOptions     = 40
)

// NeighborTarget is the target address of a Neighbor Solicitation or
// Advertisement (bytes 8–23), and for an NA its flags.
func NeighborTarget(msg []byte) (target netip.Addr, router, solicited, override, ok bool) {
	if len(msg) < 24 {
		return netip.Addr{}, false, false, false, false
	}
	f := msg[4]
	return netip.AddrFrom16([16]byte(msg[8:24])), f&0x80 != 0, f&0x40 != 0, f&0x20 != 0, true
}

// Neighbor-discovery option types (RFC 4861, 4191).
const (
	OptSourceLinkAddr = 1
	OptTargetLinkAddr = 2
	OptPrefixInfo     = 3
	OptMTU            = 5
	OptRouteInfo      = 24
)

// Options walks the neighbor-discovery options of a message from off on:
// for each well-formed option, fn gets its type and its bytes (type and
// length included). A zero length or an option that runs past the message
// ends the walk (RFC 4861 §4.6: such a message is invalid); it returns
// false then.
func Options(msg []byte, off int, fn func(typ uint8, opt []byte)) bool {
	for off < len(msg) {
		if off+2 > len(msg) {
			return false
		}
		n := int(msg[off+1]) * 8
		if n == 0 || off+n > len(msg) {
			return false
		}
		fn(msg[off], msg[off:off+n])
		off += n
	}
	return true
}

// LinkAddr reads a source or target link-layer address option holding an
// Ethernet address.
func LinkAddr(opt []byte) ([6]byte, bool) {
	if len(opt) < 8 {
		return [6]byte{}, false
	}
	return [6]byte(opt[2:8]), true
}

// Prefix reads a prefix-information option's prefix.
func Prefix(opt []byte) (netip.Prefix, bool) {
	if len(opt) < 32 || opt[2] > 128 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(netip.AddrFrom16([16]byte(opt[16:32])), int(opt[2])), true
}

// MaxNDOptions bounds the options ParseND reads of one message: a real
// neighbor-discovery message carries a handful (RFC 4861 routers send a
// link-layer address, an MTU and a few prefixes and routes), so the walk
// costs a small constant whatever the attacker pads a message with. What
// lies past the bound is not read; ND.Truncated says there was some.
const MaxNDOptions = 32

// MaxNDPrefixes is how many prefix-information options ND keeps.
const MaxNDPrefixes = 16

// ND is what the rules read of a neighbor-discovery message's options,
// from one bounded walk (ParseND) shared by every rule that reads them.
type ND struct {
	// SrcLinkAddr and TgtLinkAddr are the Ethernet addresses of the first
	// source and target link-layer address options, when HasSrcLinkAddr
	// and HasTgtLinkAddr.
	SrcLinkAddr, TgtLinkAddr       [6]byte
	HasSrcLinkAddr, HasTgtLinkAddr bool
	// prefixAt holds the byte offsets in the message of the first
	// NPrefix well-formed prefix-information options (32 bytes or more, a
	// prefix length of at most 128: what Prefix reads; see Prefix).
	prefixAt [MaxNDPrefixes]uint16
	NPrefix  uint8
	// Prefixes counts every prefix-information option read (kept or not,
	// well-formed or not), RouteInfo is set when a route-information
	// option was read.
	Prefixes  uint8
	RouteInfo bool
	// Options is the number of options read (at most MaxNDOptions).
	Options uint8
	// Malformed: the walk met an option of length zero or running past
	// the message (RFC 4861 §4.6: the message is invalid) and stopped
	// there; what came before it was read.
	Malformed bool
	// Truncated: MaxNDOptions options were read and more bytes followed,
	// unread. No real sender pads a message so; it is evidence of a
	// message crafted to cost its receivers.
	Truncated bool
}

// ParseND walks the options of msg from off on (RouterAdvertOptions,
// NeighborOptions or RedirectOptions), at most MaxNDOptions of them, and
// returns what the rules read of them; a message not longer than off has
// none.
func ParseND(msg []byte, off int) ND {
	var nd ND
	if off < 0 || off >= len(msg) {
		return nd
	}
	// An RA padded with unknown options, or with prefixes, is a flood's
	// cheapest way to cost its receivers: the options nobody reads are
	// stepped over in a loop of their own (an index, not a slice cut per
	// option; the count and the bound tested once an option), a run of
	// prefixes read in another (their offsets kept, the counts in
	// registers), and the walk leaves them only for the rare kinds the
	// rules read, or at the end.
	i, n, opts := uint(off), uint(len(msg)), uint(0)
	kept, prefixes := uint(0), uint8(0)
	for {
		for opts < MaxNDOptions && i+1 < n {
			l := uint(msg[i+1]) << 3
			t := msg[i]
			if l == 0 || t <= OptPrefixInfo || t == OptRouteInfo { // (type 0 too: no option's, stepped over below)
				break
			}
			i += l // an option running past the end ends the loop: seen below
			opts++
		}
		for opts < MaxNDOptions && i+1 < n && msg[i] == OptPrefixInfo {
			l := uint(msg[i+1]) << 3
			if l == 0 || i+l > n {
				break // malformed: seen below
			}
			// Kept when well-formed (what Prefix reads): its length (at
			// least 4 units) and prefix length tested here, once.
			if l >= 32 && kept < MaxNDPrefixes && msg[i+2] <= 128 {
				nd.prefixAt[kept%MaxNDPrefixes] = uint16(i)
				kept++
			}
			prefixes++
			i += l
			opts++
		}
		if opts == MaxNDOptions || i+1 >= n {
			break
		}
		l := uint(msg[i+1]) << 3
		if l == 0 || l > n-i {
			break // malformed: seen below
		}
		opts++
		switch msg[i] {
		case OptSourceLinkAddr:
			if !nd.HasSrcLinkAddr {
				nd.SrcLinkAddr, nd.HasSrcLinkAddr = LinkAddr(msg[i : i+l])
			}
		case OptTargetLinkAddr:
			if !nd.HasTgtLinkAddr {
				nd.TgtLinkAddr, nd.HasTgtLinkAddr = LinkAddr(msg[i : i+l])
			}
		case OptRouteInfo:
			nd.RouteInfo = true
		}
		i += l
	}
	switch {
	case i > n: // the last option stepped over runs past the end
		opts--
		nd.Malformed = true
	case i == n:
	case opts == MaxNDOptions:
		nd.Truncated = true
	default: // a zero length, an option running past the end, a lone byte
		nd.Malformed = true
	}
	nd.NPrefix, nd.Prefixes, nd.Options = uint8(kept), prefixes, uint8(opts)
	return nd
}

// Prefix returns the prefix of the i-th kept prefix-information option
// (i < NPrefix) of msg, the message nd was parsed from; ok is false when
// msg is not that message (too short).
func (nd *ND) Prefix(msg []byte, i int) (netip.Prefix, bool) {
	if i < 0 || i >= int(nd.NPrefix) {
		return netip.Prefix{}, false
	}
	off := int(nd.prefixAt[i])
	if off+2 > len(msg) {
		return netip.Prefix{}, false
	}
	return Prefix(msg[off:min(off+int(msg[off+1])*8, len(msg))])
}

// PrefixWords returns what Prefix(msg, i) does, the prefix as sent, as
// the two big-endian halves of its address and its length, for callers
// that hash or compare it (no netip.Prefix made); ok is as Prefix's. The
// walk kept well-formed options only, so it reads them with one test.
func (nd *ND) PrefixWords(msg []byte, i int) (hi, lo uint64, bits uint8, ok bool) {
	if uint(i) >= uint(nd.NPrefix) || uint(i) >= MaxNDPrefixes {
		return 0, 0, 0, false
	}
	off := uint(nd.prefixAt[i])
	if off+32 > uint(len(msg)) {
		return 0, 0, 0, false
	}
	b := msg[off : off+32]
	return binary.BigEndian.Uint64(b[16:24]), binary.BigEndian.Uint64(b[24:32]), b[2], true
}
