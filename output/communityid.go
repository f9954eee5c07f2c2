package output

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"net/netip"

	"github.com/icmpids/icmpids/detector"
)

// Community ID (spec v1, github.com/corelight/community-id-spec): the flow
// hash SIEMs join on across Zeek, Suricata and others. ICMP has no ports:
// the type stands for the source port and, for the types with a
// counterpart (echo request and reply, ...), the counterpart type for the
// destination port, so both directions of an exchange hash alike; other
// types are one-way, with the code for the destination port.

// icmpPairV4 and icmpPairV6 are the spec's type ↔ counterpart tables.
// icmpPair returns the counterpart of an ICMP (v6 false) or ICMPv6 type.
func icmpPair(v6 bool, t uint8) (uint8, bool) {
	if !v6 {
		switch t {
		case 8, 0:
			return 8 - t, true
		case 13, 15, 17:
			return t + 1, true
		case 14, 16, 18:
			return t - 1, true
		case 10:
			return 9, true
		case 9:
			return 10, true
		}
		return 0, false
	}
	switch t {
	case 128, 133, 135, 130, 139, 144:
		return t + 1, true
	case 129, 134, 136, 131, 140, 145:
		return t - 1, true
	}
	return 0, false
}

// CommunityID returns the v1 Community ID (seed 0) of a packet from src to
// dst of IP protocol proto with ports (for ICMP/ICMPv6: type and code).
func CommunityID(src, dst netip.Addr, proto uint8, sport, dport uint16) string {
	return string(appendCommunityID(nil, src, dst, proto, sport, dport))
}

// appendCommunityID appends CommunityID's result to b without allocating.
func appendCommunityID(b []byte, src, dst netip.Addr, proto uint8, sport, dport uint16) []byte {
	oneWay := false
	switch proto {
	case detector.ProtoICMPv4, detector.ProtoICMPv6:
		if peer, ok := icmpPair(proto == detector.ProtoICMPv6, uint8(sport)); ok {
			dport = uint16(peer)
		} else {
			oneWay = true
		}
	}
	s, d := src.Unmap(), dst.Unmap()
	if !oneWay {
		if c := s.Compare(d); c > 0 || c == 0 && sport > dport {
			s, d, sport, dport = d, s, dport, sport
		}
	}
	var in [2 + 16 + 16 + 2 + 4]byte // seed 0, addresses, proto, pad, ports
	n := 2
	if s.Is4() {
		a, c := s.As4(), d.As4()
		n += copy(in[n:], a[:])
		n += copy(in[n:], c[:])
	} else {
		a, c := s.As16(), d.As16()
		n += copy(in[n:], a[:])
		n += copy(in[n:], c[:])
	}
	in[n], in[n+1] = proto, 0
	binary.BigEndian.PutUint16(in[n+2:], sport)
	binary.BigEndian.PutUint16(in[n+4:], dport)
	sum := sha1.Sum(in[:n+6])
	var out [28]byte
	base64.StdEncoding.Encode(out[:], sum[:])
	b = append(b, '1', ':')
	return append(b, out[:]...)
}
