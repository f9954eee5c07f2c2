package detector

import (
	"time"

	"github.com/icmpids/icmpids/detector/frag"
	"github.com/icmpids/icmpids/detector/icmpmsg"
)

// Link scope. Some rules learn what the link is — its routers (rogue_ra),
// the link-layer address each router and neighbor speaks from
// (icmp_redirect, nd_spoof) — and judge later packets by it. When several
// engines share the work by destination (detector/shard), that knowledge
// must have one home, or what is learned depends on which engine a packet
// reached, and so on the number of engines. The link's engine is that
// home: a dispatcher sends it the whole of every packet LinkRoute calls
// LinkWhole, and a copy (HandleLinkFrame) of every packet it calls
// LinkCopy.

// LinkRouting is how a dispatcher of several engines routes a packet for
// the link-scope rules (LinkRoute).
type LinkRouting uint8

// The routings LinkRoute returns.
const (
	// LinkNone: nothing link-scope; routed by destination.
	LinkNone LinkRouting = iota
	// LinkWhole: a neighbor-discovery message (RS, RA, NS, NA, ICMPv6
	// redirect) or an ICMPv4 redirect: every rule sees it on the link's
	// engine, so the ND rules and their classifiers (ra_flood, nd_flood)
	// see every one of the link's ND messages together.
	LinkWhole
	// LinkCopy: a message a router (or any host) sends of its own — an
	// echo reply or an error — that arrived unrouted (a usual initial TTL
	// or hop limit) with an Ethernet source: what teaches icmp_redirect a
	// router's link-layer address. Routed by destination as usual, and
	// copied to the link's engine for its LinkObservers.
	LinkCopy
)

// LinkRoute tells how p is routed for the link-scope rules (see
// LinkRouting). A fragment of a train is neither: a train stays on one
// engine, its destination's (the dispatcher gives the link's engine every
// link-local and link-scoped multicast destination, so an ND message to
// one of them stays there even in pieces). It reads only p and does not allocate; a dispatcher calls it
// once per packet.
func LinkRoute(p *Packet) LinkRouting {
	if p.Fragment && p.IPv6 && p.Tunnel.Depth == 0 && p.Src.IsLinkLocalUnicast() {
		// Every piece of a train from a link-local source (an RA's or a
		// redirect's, even sent to a global address): the link's engine
		// reassembles a fragmented ND message (reassemble.go).
		return LinkWhole
	}
	if !p.HasICMP || p.Fragment && (p.FragOffset != 0 || p.MoreFragments) {
		return LinkNone // a piece of a train: it stays with the train
	}
	// A whole message, or an atomic fragment (a train of one).
	if p.IPv6 && p.ICMPType >= icmpmsg.V6RouterSolicit && p.ICMPType <= icmpmsg.V6Redirect ||
		!p.IPv6 && p.ICMPType == icmpmsg.V4Redirect {
		return LinkWhole
	}
	if p.Fragment || !p.HasSrcMAC || !UnroutedTTL(p.TTL) {
		return LinkNone
	}
	if p.IsEchoReply() || icmpmsg.IsError(p.IPv6, p.ICMPType) {
		return LinkCopy
	}
	return LinkNone
}

// UnroutedTTL tells whether ttl is a usual initial TTL or hop limit (64,
// 128, 255): a packet that still has it was sent from the sensor's link,
// and its Ethernet source is its sender's own.
func UnroutedTTL(ttl uint8) bool { return ttl == 64 || ttl == 128 || ttl == 255 }

// LinkObserver is implemented by rules that learn link-scope state from
// packets LinkRoute calls LinkCopy (icmp_redirect: a router's link-layer
// address from its echo replies and errors). With several engines such a
// packet also reaches the link's engine, where only ObserveLink runs; on
// its destination's engine Observe sees p.LinkRemote set and leaves the
// learning to the link's engine. With one engine ObserveLink is never
// called: Observe does it all. ObserveLink must not allocate.
type LinkObserver interface {
	ObserveLink(p *Packet, rep Reporter)
}

// HandleLinkFrame decodes a frame copied to this engine, the link's, only
// for its rules' link-scope learning (see LinkObserver): it moves the clock
// and calls ObserveLink, and counts nothing, so the frame is counted once,
// by the engine that handles it in full.
func (e *Engine) HandleLinkFrame(lt LinkType, data []byte, ts time.Time, wireLen int) {
	p := &e.pkt
	e.dec.Decode(lt, data, ts, wireLen, p)
	tn := p.Time.UnixNano()
	e.advance(p.Time, tn)
	if !p.Src.IsValid() {
		return
	}
	if tn < e.nowNs {
		p.Time, tn = e.now, e.nowNs
	}
	p.TimeNs = tn
	p.srcHashed, p.dstHashed = false, false
	p.SourceRemote, p.LinkRemote = false, false
	p.Class = Class{}
	p.Frag = frag.Verdict{}
	if e.cold != nil {
		e.warm()
	}
	for _, l := range e.links {
		l.obs.ObserveLink(p, Reporter{e: e, rule: l.rule})
	}
}

// HandleLinkRemoteFrame is HandleFrame for a frame whose link-scope
// learning is done by another engine, the link's, which gets the frame
// through HandleLinkFrame: the rules see p.LinkRemote set.
func (e *Engine) HandleLinkRemoteFrame(lt LinkType, data []byte, ts time.Time, wireLen int) {
	p := &e.pkt
	reason := e.dec.Decode(lt, data, ts, wireLen, p)
	p.SourceRemote, p.LinkRemote = false, true
	e.handleDecoded(p, reason)
}

// linkRule is a rule a link copy is handed to.
type linkRule struct {
	rule int
	obs  LinkObserver
}
