package detector

import (
	"github.com/icmpids/icmpids/detector/reasm"
)

// --- reassembly of ND messages and tunnel carriers ---
//
// Fragments are tracked, not reassembled (detector/frag), with two
// exceptions, each small and bounded (detector/reasm's pool, shared by
// both):
//
//   - Neighbor discovery. A fragmented ND message is forbidden (RFC 6980)
//     and is how RA-Guard is evaded (RFC 7113, THC fake_router6 -F/-D): the
//     ICMPv6 header may sit in the second fragment, behind a long
//     destination-options header. An IPv6 fragment with hop limit 255
//     (which every ND message must have) or link-scoped addresses goes to
//     the pool, and if its train holds an ND message (types 133-137) the
//     rules see that message whole, with Packet.Reassembled set. (With
//     several engines, trains from a link-local source reassemble on the
//     link's engine: LinkRoute.)
//   - Tunnel carriers. A GRE or IP-in-IP packet that is fragmented on its
//     way (a 1,400-byte ping through a GRE tunnel on a 1,500-byte path) is
//     reassembled and its inner packet decoded as if the carrier had
//     arrived whole.
//
// The fragments themselves are handled first, as any fragment (the
// fragment rules see them); the reassembled packet follows as one more
// packet, not a frame. Only the outermost IP layer's trains are
// reassembled, and never a reassembled packet's.

// reasmKind says why a fragment is a candidate for reassembly.
type reasmKind uint8

const (
	reasmNone reasmKind = iota
	reasmND
	reasmCarrier
)

// ndHopLimit is the hop limit every ND message is sent with (RFC 4861).
const ndHopLimit = 255

// reasmKindOf tells whether p, a fragment, belongs to a train the engine
// reassembles.
func (e *Engine) reasmKindOf(p *Packet) reasmKind {
	if p.Tunnel.Depth != 0 || p.Reassembled {
		return reasmNone
	}
	switch p.Proto {
	case protoGRE:
		if e.cfg.Decode.GRE {
			return reasmCarrier
		}
	case protoIPIP, protoIPv6:
		if e.cfg.Decode.IPinIP {
			return reasmCarrier
		}
	}
	if p.IPv6 && (p.TTL == ndHopLimit || linkScoped(p)) {
		return reasmND
	}
	return reasmNone
}

// linkScoped tells whether p's addresses are those of a message that
// stays on the link (a link-local or unspecified source, a link-local or
// link-scoped multicast destination). With the hop limit, it admits a
// fragmented ND message whatever hop limit its later fragments claim
// (only the first fragment's counts once reassembled).
func linkScoped(p *Packet) bool {
	return p.Src.IsLinkLocalUnicast() || p.Src.IsUnspecified() || p.Dst.IsLinkLocalUnicast() || p.Dst.IsLinkLocalMulticast()
}

// isNDType tells whether t is a neighbor-discovery message type (router
// solicitation and advertisement, neighbor solicitation and advertisement,
// redirect).
func isNDType(t uint8) bool { return t >= 133 && t <= 137 }

// reassemble hands p, a fragment the rules have seen, the last frame the
// decoder decoded, to the reassembly pool when its train is one the engine
// reassembles, and handles the reassembled packet when p completes it.
func (e *Engine) reassemble(p *Packet) {
	lt, frame, at := e.dec.frag.lt, e.dec.frag.data, e.dec.frag.ipAt
	e.dec.frag.data = nil // the caller's buffer, not to be held past its frame
	if e.reasm == nil {
		return
	}
	kind := e.reasmKindOf(p)
	if kind == reasmNone {
		return
	}
	if at < 0 || at > len(frame) {
		return
	}
	hdr := p.HeaderLen // IPv4 header; IPv6 header up to the fragment header
	if p.IPv6 {
		hdr += 8
	}
	start := at + hdr
	if p.FragLen < 0 || start > len(frame) || start+p.FragLen > len(frame) {
		return // cut by the capture: cannot be reassembled
	}
	f := reasm.Fragment{
		Time:   p.TimeNs,
		IPv6:   p.IPv6,
		Src:    p.Src,
		Dst:    p.Dst,
		ID:     p.FragID,
		Proto:  p.Proto,
		Offset: p.FragOffset,
		More:   p.MoreFragments,
		Data:   frame[start : start+p.FragLen],
	}
	if p.FragOffset == 0 {
		f.Header, f.LinkLen = frame[:start], at
	}
	out := e.reasm.Add(&f)
	if out == nil {
		return
	}
	q := &e.pkt
	ts := p.Time
	e.dec.Decode(lt, out, ts, len(out), q)
	if !q.Src.IsValid() {
		if q.GaveUp != AnomalyNone && e.anomalies != nil {
			e.observeAnomaly(q) // a tunnel bomb in a fragmented carrier
		}
		return
	}
	if q.Fragment {
		return
	}
	if kind == reasmND && !(q.IPv6 && q.Proto == ProtoICMPv6 && q.HasICMP && isNDType(q.ICMPType)) {
		return // a fragmented message that is not ND: its fragments said it all
	}
	q.Reassembled = true
	e.handle(q, ts.UnixNano())
}
