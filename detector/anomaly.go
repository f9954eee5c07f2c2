package detector

// Anomaly says why the decoder gave up on a frame it could not follow to
// its innermost packet. Such frames are counted by decode reason; the
// rules that implement AnomalyObserver also see them, so that what the
// decoder gives up on is no silent evasion (a flood wrapped one tunnel
// deeper than decode.max_depth, behind one VLAN tag more than
// decode.max_vlans, or inside a deliberately malformed encapsulation).
type Anomaly uint8

// Anomalies.
const (
	AnomalyNone        Anomaly = iota
	AnomalyTunnelDepth         // more encapsulations than decode.max_depth
	AnomalyVLANDepth           // more VLAN tags than decode.max_vlans
	AnomalyMalformed           // an encapsulation header invalid (decode reason tunnel_malformed)
	NumAnomalies               // number of anomalies, for counter arrays
)

var anomalyNames = [NumAnomalies]string{"none", "tunnel_depth", "vlan_depth", "malformed"}

// String returns the anomaly's stable snake_case name.
func (a Anomaly) String() string {
	if a < NumAnomalies {
		return anomalyNames[a]
	}
	return "unknown"
}

// AnomalyObserver is implemented by rules that look at the frames the
// decoder gave up on (see Anomaly). The engine calls ObserveAnomaly for
// each such frame whose destination, as far as it was decoded, is known:
// p.GaveUp says why, p.Src and p.Dst are the innermost IP header the
// decoder read (for tunnel_depth the header one layer beyond the last it
// peeled, for vlan_depth the one after the tags, for malformed the
// carrier of the bad encapsulation), p.Proto its protocol, and p.Tunnel,
// p.VLANs and the link-layer fields are as decoded; there is no ICMP
// header. Such frames never reach Observe. Like Observe, it must not
// allocate.
type AnomalyObserver interface {
	ObserveAnomaly(p *Packet, rep Reporter)
}

// observeAnomaly hands p, a frame the decoder gave up on, to the rules
// that observe anomalies, once its innermost addresses are known.
func (e *Engine) observeAnomaly(p *Packet) {
	a := e.dec.unw.lastAddrs()
	if !a.dst.IsValid() {
		return // not even an IP destination: counted, nothing to name
	}
	p.Src, p.Dst, p.Proto, p.IPv6 = a.src, a.dst, a.proto, a.dst.Is6()
	tn := p.Time.UnixNano()
	if tn < e.nowNs {
		p.Time, tn = e.now, e.nowNs
	}
	p.TimeNs = tn
	p.srcHashed, p.dstHashed = false, false
	p.Class = Class{}
	if e.cold != nil {
		e.warm()
	}
	for _, o := range e.anomalies {
		o.obs.ObserveAnomaly(p, Reporter{e: e, rule: o.rule})
	}
}

// anomalyRule is a rule that observes anomalies: rule i's AnomalyObserver.
type anomalyRule struct {
	rule int
	obs  AnomalyObserver
}
