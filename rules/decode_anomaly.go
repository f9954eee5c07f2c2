package rules

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

var decodeAnomalyInfo = detector.RuleInfo{
	Name:        "decode_anomaly",
	SignatureID: 9000018,
	Rev:         1,
	Signature:   "Frames the decoder gave up on (tunnel or VLAN depth, malformed encapsulation) towards one host",
	Category:    "Potentially Bad Traffic",
	Severity:    2,
}

// decodeAnomalyDefinition registers decode_anomaly.
func decodeAnomalyDefinition() Definition {
	return define(decodeAnomalyInfo,
		"decode_anomaly: frames the decoder gives up on — more encapsulations than decode.max_depth, more VLAN tags than decode.max_vlans, a malformed encapsulation header — arriving at a rate towards one destination: a flood hidden where the decoder stops looking (Suricata raises its decoder events as alerts).",
		map[string]string{
			"window":      "Sliding window, split in 10 buckets.",
			"pps":         "Start level: given-up frames per second towards one destination. No real network nests tunnels past max_depth or tags past max_vlans; a misconfigured peer sending malformed VXLAN makes a trickle.",
			"stop_ratio":  "The attack lasts while the rate stays at or above this fraction of pps.",
			"max_targets": "Cap on tracked destinations; least recently seen are evicted and counted.",
		},
		DefaultDecodeAnomalyConfig,
		func(c DecodeAnomalyConfig) (detector.Rule, error) { return NewDecodeAnomaly(c), nil })
}

// DecodeAnomalyConfig configures decode_anomaly.
type DecodeAnomalyConfig struct {
	Enabled    bool          `mapstructure:"enabled"`
	Window     time.Duration `mapstructure:"window"`
	PPS        float64       `mapstructure:"pps"`
	StopRatio  float64       `mapstructure:"stop_ratio"`
	MaxTargets int           `mapstructure:"max_targets"`
}

// DefaultDecodeAnomalyConfig returns decode_anomaly's defaults: 100
// given-up frames a second towards one destination over a 1 s window
// (a tenth of icmp_flood's echo level: these frames have no business on
// the wire at all), stop at half.
func DefaultDecodeAnomalyConfig() DecodeAnomalyConfig {
	return DecodeAnomalyConfig{Enabled: true, Window: time.Second, PPS: 100, StopRatio: 0.5, MaxTargets: 4096}
}

// Validate checks the settings; errors name the configuration key.
func (c DecodeAnomalyConfig) Validate() error {
	k := newCheck(decodeAnomalyInfo.Name)
	k.duration("window", c.Window, 10*time.Millisecond, time.Minute)
	k.positive("pps", c.PPS)
	k.ratio("stop_ratio", c.StopRatio)
	k.count("max_targets", c.MaxTargets, 1, 1<<24)
	return k.err()
}

// anomalyTarget is decode_anomaly's state for one destination: the rate
// of its given-up frames and how many of each kind.
type anomalyTarget struct {
	rate    window.Counter
	reasons [detector.NumAnomalies]uint64
}

// DecodeAnomaly is the decode_anomaly rule: the rate, per destination, of
// the frames the decoder gave up on (detector.AnomalyObserver), over a
// sliding window. The destination is the innermost IP header the decoder
// read: for tunnel_depth the packet one layer beyond decode.max_depth (the
// host the flood is for), for vlan_depth the IP packet behind the tags,
// for malformed the carrier of the bad encapsulation. Frames without any
// IP header are only counted by the decoder. It sees no other packet. The
// per-destination table is capped and counts evictions.
type DecodeAnomaly struct {
	cfg     DecodeAnomalyConfig
	width   int64
	targets *table.Table[netip.Addr, anomalyTarget]
	sweep   sweepClock
}

// NewDecodeAnomaly returns the decode_anomaly rule.
func NewDecodeAnomaly(cfg DecodeAnomalyConfig) *DecodeAnomaly {
	return &DecodeAnomaly{
		cfg:     cfg,
		width:   int64(cfg.Window) / window.Buckets,
		targets: table.New[netip.Addr, anomalyTarget](cfg.MaxTargets, nil),
	}
}

// Info implements detector.Rule.
func (r *DecodeAnomaly) Info() detector.RuleInfo { return decodeAnomalyInfo }

// Interest implements detector.Interested: no decoded packet (given-up
// frames come through ObserveAnomaly).
func (r *DecodeAnomaly) Interest() detector.Interest { return detector.Interest{} }

// Observe implements detector.Rule; the rule sees no decoded packet.
func (r *DecodeAnomaly) Observe(*detector.Packet, detector.Reporter) {}

// ObserveAnomaly implements detector.AnomalyObserver.
func (r *DecodeAnomaly) ObserveAnomaly(p *detector.Packet, rep detector.Reporter) {
	t, _ := r.targets.Get(p.Dst, p.TimeNs)
	t.rate.Add(p.TimeNs, r.width, p.WireLen)
	if p.GaveUp < detector.NumAnomalies {
		t.reasons[p.GaveUp]++
	}
	pps, bps := t.rate.Rates(r.cfg.Window)
	lvl := rateLevel(pps, r.cfg.PPS, r.cfg.StopRatio)
	if lvl == detector.LevelQuiet {
		return
	}
	rep.Hit(p.Dst, p, &detector.Measure{Level: lvl, PPS: pps, BPS: bps, Window: r.cfg.Window, Threshold: r.cfg.PPS,
		WindowPackets: t.rate.Packets(), WindowBytes: t.rate.Bytes()})
}

// Tick implements detector.Rule: idle destinations leave the table.
func (r *DecodeAnomaly) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, 10*r.cfg.Window) {
		r.targets.DropIdle(now.Add(-2 * time.Minute).UnixNano())
	}
}

// Describe implements detector.Describer: reasons, the given-up frames of
// each kind towards the target so far.
func (r *DecodeAnomaly) Describe(target netip.Addr, extra map[string]any) {
	t, ok := r.targets.Lookup(target)
	if !ok {
		return
	}
	reasons := map[string]any{}
	for a := detector.AnomalyTunnelDepth; a < detector.NumAnomalies; a++ {
		if n := t.reasons[a]; n > 0 {
			reasons[a.String()] = n
		}
	}
	extra["reasons"] = reasons
}

// Tables implements detector.TableReporter.
func (r *DecodeAnomaly) Tables() []detector.TableStat {
	return []detector.TableStat{{Name: "decode_anomaly.targets", Len: r.targets.Len(), Cap: r.targets.Cap(), Evicted: r.targets.Evicted()}}
}
