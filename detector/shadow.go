package detector

import (
	"time"

	"github.com/icmpids/icmpids/detector/frag"
)

// Shadower is implemented by rules that keep state keyed by a packet's
// source as well as by its destination. When several engines share the
// work by destination (detector/shard), an echo request also reaches its
// source's engine as a shadow, and only Shadow runs there: smurf and
// icmp_flood's solicited-reply check must know which echo requests a host
// sent, on the engine that sees the replies coming back to it. Shadow must
// not report and must not allocate.
type Shadower interface {
	Shadow(p *Packet)
}

// shadowRule is a rule a shadow is handed to: rule i's Shadower, its
// SourceObserver, or both (nil: not that one). The engine lists them when
// its rules are set, not per shadow.
type shadowRule struct {
	rule   int
	shadow Shadower
	source SourceObserver
}

// SourceObserver is implemented by rules keyed by a packet's source (a
// sweep's scanner, a tunnel's client). With several engines, a packet
// whose source belongs to another engine reaches that engine too, where
// only ObserveSource runs (and may report); on the destination's engine
// its Observe sees p.SourceRemote set and skips its source-keyed work.
// With one engine ObserveSource is never called: Observe does it all.
// The dispatcher sends such copies for echo requests and the other ICMP
// query requests (timestamp, information, address mask).
type SourceObserver interface {
	ObserveSource(p *Packet, rep Reporter)
}

// HandleShadowFrame decodes a frame routed to this engine only for the
// source-keyed state of its rules (see Shadower and SourceObserver): it
// moves the clock and calls Shadow and ObserveSource, and counts nothing,
// so the frame is counted once, by the engine that handles it in full.
func (e *Engine) HandleShadowFrame(lt LinkType, data []byte, ts time.Time, wireLen int) {
	p := &e.pkt
	e.dec.Decode(lt, data, ts, wireLen, p)
	e.handleShadowDecoded(p)
}

// HandleMarkedShadowFrame is HandleShadowFrame for a frame a dispatcher
// has gauged (see Mark): the classification travels with the shadow, so
// a flood's query is the flood's on its source's engine too.
func (e *Engine) HandleMarkedShadowFrame(lt LinkType, data []byte, ts time.Time, wireLen int, m Mark) {
	e.mark = m
	e.HandleShadowFrame(lt, data, ts, wireLen)
	e.mark = MarkNone
}

// handleShadowDecoded is HandleShadowFrame for a frame decoded into p.
func (e *Engine) handleShadowDecoded(p *Packet) {
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
	p.ndDone = false
	p.Class = Class{Flooded: e.mark == MarkFlooded}
	p.Frag = frag.Verdict{}
	if e.ignored(p) {
		return
	}
	if e.cold != nil {
		e.warm()
	}
	for _, s := range e.shadows {
		if s.shadow != nil {
			s.shadow.Shadow(p)
		}
		if s.source != nil {
			s.source.ObserveSource(p, Reporter{e: e, rule: s.rule})
		}
	}
}

// HandleSplitLinkRemoteFrame is HandleFrame for a frame whose source
// another engine owns (see HandleSplitFrame) and whose link-scope learning
// the link's engine does (see HandleLinkRemoteFrame): the rules see both
// p.SourceRemote and p.LinkRemote set.
func (e *Engine) HandleSplitLinkRemoteFrame(lt LinkType, data []byte, ts time.Time, wireLen int) {
	p := &e.pkt
	reason := e.dec.Decode(lt, data, ts, wireLen, p)
	p.SourceRemote, p.LinkRemote = true, true
	e.handleDecoded(p, reason)
}
