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

// HandleShadowFrame decodes a frame routed to this engine only for the
// source-keyed state of its rules (see Shadower): it moves the clock and
// calls Shadow, and counts nothing, so the frame is counted once, by the
// engine that handles it in full.
func (e *Engine) HandleShadowFrame(lt LinkType, data []byte, ts time.Time, wireLen int) {
	p := &e.pkt
	e.dec.Decode(lt, data, ts, wireLen, p)
	tn := ts.UnixNano()
	e.advance(ts, tn)
	if !p.Src.IsValid() {
		return
	}
	if tn < e.nowNs {
		p.Time, tn = e.now, e.nowNs
	}
	p.TimeNs = tn
	p.srcHashed = false
	p.Class = Class{}
	p.Frag = frag.Verdict{}
	for _, r := range e.rules {
		if s, ok := r.(Shadower); ok {
			s.Shadow(p)
		}
	}
}
