package rules

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

var blackNurseInfo = detector.RuleInfo{
	Name:        "blacknurse",
	SignatureID: 9000008,
	Rev:         1,
	Signature:   "ICMP BlackNurse flood (destination/port unreachable)",
	Category:    "Attempted Denial of Service",
	Severity:    2,
}

// blackNurseDefinition registers blacknurse.
func blackNurseDefinition() Definition {
	return define(blackNurseInfo,
		"blacknurse: a flood of ICMP port unreachables (type 3 code 3; ICMPv6 1/4) to one host, the BlackNurse firewall-exhaustion attack: harmful at 15-18 Mbit/s, far below an echo flood.",
		map[string]string{
			"window":      "Sliding window, split in 10 buckets.",
			"pps":         "Start level: port unreachables per second to one host. A busy DNS resolver's late answers make a few hundred a second spread over many servers, traceroute a handful; BlackNurse needs tens of thousands.",
			"stop_ratio":  "The attack lasts while the rate stays at or above this fraction of pps.",
			"max_targets": "Cap on tracked hosts; least recently seen are evicted and counted.",
		},
		DefaultBlackNurseConfig,
		func(c BlackNurseConfig) (detector.Rule, error) { return NewBlackNurse(c), nil })
}

// BlackNurseConfig configures blacknurse.
type BlackNurseConfig struct {
	Enabled    bool          `mapstructure:"enabled"`
	Window     time.Duration `mapstructure:"window"`
	PPS        float64       `mapstructure:"pps"`
	StopRatio  float64       `mapstructure:"stop_ratio"`
	MaxTargets int           `mapstructure:"max_targets"`
}

// DefaultBlackNurseConfig returns blacknurse's defaults: 1,000 port
// unreachables a second to one host over a 1 s window (half icmp_flood's
// any-ICMP level, a fortieth of what BlackNurse sends), stop at half.
func DefaultBlackNurseConfig() BlackNurseConfig {
	return BlackNurseConfig{Enabled: true, Window: time.Second, PPS: 1000, StopRatio: 0.5, MaxTargets: 16384}
}

// Validate checks the settings; errors name the configuration key.
func (c BlackNurseConfig) Validate() error {
	k := newCheck(blackNurseInfo.Name)
	k.duration("window", c.Window, 10*time.Millisecond, time.Minute)
	k.positive("pps", c.PPS)
	k.ratio("stop_ratio", c.StopRatio)
	k.count("max_targets", c.MaxTargets, 1, 1<<24)
	return k.err()
}

// BlackNurse is the blacknurse rule: the rate of port unreachables (ICMP
// 3/3, ICMPv6 1/4) to each destination over a sliding window. It counts
// only those messages, so ordinary traffic costs it a type check; the
// per-host table is capped and counts evictions. The same packets also
// count toward icmp_flood's any-ICMP rate: a BlackNurse at flood rates
// raises both (the README says what a SIEM sees).
type BlackNurse struct {
	cfg     BlackNurseConfig
	width   int64
	secs    float64 // the window in seconds
	targets *table.Table[netip.Addr, blackNurseTarget]
	door    *sketch.Doorkeeper // admits a host to a full targets table at its second packet
	sweep   sweepClock
	m       detector.Measure // judge's result
	fleetP  detector.Packet  // JudgeFleet's hit
	fleetOn bool             // a fleet takes the reports: count sources (blacknurse_fleet.go)
}

// blackNurseTarget is one host's window, and its distinct sources since
// the last fleet report (fleet on).
type blackNurseTarget struct {
	c    window.Counter
	srcs sketch.MiniHLL
}

// NewBlackNurse returns the blacknurse rule.
func NewBlackNurse(cfg BlackNurseConfig) *BlackNurse {
	return &BlackNurse{
		cfg:     cfg,
		width:   int64(cfg.Window) / window.Buckets,
		secs:    cfg.Window.Seconds(),
		targets: table.New[netip.Addr, blackNurseTarget](cfg.MaxTargets, nil),
		door:    sketch.NewDoorkeeper(14),
	}
}

// Info implements detector.Rule.
func (r *BlackNurse) Info() detector.RuleInfo { return blackNurseInfo }

// portUnreachable tells whether p is an ICMP or ICMPv6 port unreachable.
func portUnreachable(p *detector.Packet) bool {
	if !p.HasICMP {
		return false
	}
	if p.IPv6 {
		return p.ICMPType == icmpmsg.V6DestUnreach && p.ICMPCode == 4
	}
	return p.ICMPType == icmpmsg.V4DestUnreach && p.ICMPCode == 3
}

// Interest implements detector.Interested: destination unreachables.
func (r *BlackNurse) Interest() detector.Interest {
	return detector.Interest{ICMPv4: detector.Types(icmpmsg.V4DestUnreach), ICMPv6: detector.Types(icmpmsg.V6DestUnreach)}
}

// Observe implements detector.Rule.
func (r *BlackNurse) Observe(p *detector.Packet, rep detector.Reporter) {
	if !portUnreachable(p) || p.Class.Owner != "" {
		return
	}
	t, ok := r.targets.Again(p.Dst, p.TimeNs) // a flood's target, without a call
	if !ok {
		t, ok = r.targets.Touch(p.Dst, p.TimeNs)
	}
	if !ok {
		// Once the table is full a host gets a counter at its second
		// port unreachable (the doorkeeper): a spray to a new host per
		// packet costs a cell write, not an insertion and an eviction.
		if r.targets.Len() >= r.targets.Cap() && !r.door.Seen(p.DstHash()) {
			return
		}
		t, _ = r.targets.Get(p.Dst, p.TimeNs)
	}
	t.c.Add(p.TimeNs, r.width, p.WireLen)
	if r.fleetOn {
		t.srcs.AddHash(p.SrcHash())
	}
	if m := r.judge(&t.c); m != nil {
		rep.Hit(p.Dst, p, m)
	}
}

// judge is the host's measure when its window's rate is at least the stop
// level, else nil (Observe's judgement, and JudgeFleet's of the fleet's
// sums).
func (r *BlackNurse) judge(c *window.Counter) *detector.Measure {
	pps, bps := c.RatesOver(r.secs)
	lvl := rateLevel(pps, r.cfg.PPS, r.cfg.StopRatio)
	if lvl == detector.LevelQuiet {
		return nil
	}
	r.m = detector.Measure{Level: lvl, PPS: pps, BPS: bps, Window: r.cfg.Window, Threshold: r.cfg.PPS,
		WindowPackets: c.Packets(), WindowBytes: c.Bytes()}
	return &r.m
}

// Tick implements detector.Rule: idle hosts leave the table.
func (r *BlackNurse) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, 10*r.cfg.Window) {
		r.targets.DropIdle(now.Add(-r.cfg.Window).UnixNano())
	}
}

// Tables implements detector.TableReporter.
func (r *BlackNurse) Tables() []detector.TableStat {
	return []detector.TableStat{{Name: "blacknurse.targets", Len: r.targets.Len(), Cap: r.targets.Cap(), Evicted: r.targets.Evicted()}}
}
