package rules

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

var fragFloodInfo = detector.RuleInfo{
	Name:        "frag_flood",
	SignatureID: 9000006,
	Rev:         1,
	Signature:   "IP fragment flood (incomplete fragment trains)",
	Category:    "Attempted Denial of Service",
	Severity:    2,
}

// fragFloodDefinition registers frag_flood.
func fragFloodDefinition() Definition {
	return define(fragFloodInfo,
		"frag_flood: the rate of fragment trains opened to one target and not completed, over a sliding window.",
		map[string]string{
			"trains_pps": "Start level: 100 incomplete trains per second to one target. Real fragmented traffic completes its trains; a flood does not.",
		},
		DefaultFragFloodConfig,
		func(c FragFloodConfig) (detector.Rule, error) { return NewFragFlood(c), nil })
}

// FragFloodConfig configures frag_flood.
type FragFloodConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Window is the sliding window (10 buckets) trains are counted over.
	Window time.Duration `mapstructure:"window"`
	// TrainsPPS is the start level: trains opened to one target in the
	// window and not completed in it, per second of window.
	TrainsPPS float64 `mapstructure:"trains_pps"`
	// StopRatio sets the stop level as a fraction of the start level.
	StopRatio float64 `mapstructure:"stop_ratio"`
	// MaxTargets caps the per-target table.
	MaxTargets int `mapstructure:"max_targets"`
}

// DefaultFragFloodConfig returns frag_flood's defaults: a 1 s window, 100
// incomplete trains/s to one target to start, half that to last, 65,536
// targets.
func DefaultFragFloodConfig() FragFloodConfig {
	return FragFloodConfig{Enabled: true, Window: time.Second, TrainsPPS: 100, StopRatio: 0.5, MaxTargets: 65536}
}

// Validate checks the settings; errors name the configuration key.
func (c FragFloodConfig) Validate() error {
	k := newCheck(fragFloodInfo.Name)
	k.duration("window", c.Window, 10*time.Millisecond, time.Minute)
	k.positive("trains_pps", c.TrainsPPS)
	k.ratio("stop_ratio", c.StopRatio)
	k.count("max_targets", c.MaxTargets, 1, 1<<24)
	return k.err()
}

type fragFloodTarget struct {
	opened, completed window.Counter
	srcs              sketch.MiniHLL // distinct sources since the last fleet report (fleet on)
}

// incomplete is the trains opened in the window less those completed in
// it (never below zero).
func (t *fragFloodTarget) incomplete() uint64 {
	o, c := t.opened.Packets(), t.completed.Packets()
	if c >= o {
		return 0
	}
	return o - c
}

// FragFlood is the frag_flood rule. Per destination it counts, over a
// sliding window of Window in 10 buckets, the fragment trains opened (a
// fragment of a train the engine's tracker did not hold) and the trains
// completed; their difference is the trains opened and not completed in
// the window, which legitimate fragmented traffic keeps near zero (a
// train completes within milliseconds) and a fragment flood — first
// fragments only, random ids, never a last fragment — pushes up. At
// TrainsPPS incomplete trains per second of window the target is under
// attack, until the rate stays below StopRatio of it for the engine's hold
// time. Atomic IPv6 fragments open no train.
type FragFlood struct {
	cfg     FragFloodConfig
	width   int64
	targets *table.Table[netip.Addr, fragFloodTarget]
	sweep   sweepClock
	m       detector.Measure // judge's result
	fleetP  detector.Packet  // JudgeFleet's hit
	fleetOn bool             // a fleet takes the reports: count sources (frag_flood_fleet.go)
}

// NewFragFlood returns the frag_flood rule.
func NewFragFlood(cfg FragFloodConfig) *FragFlood {
	return &FragFlood{
		cfg:     cfg,
		width:   int64(cfg.Window) / window.Buckets,
		targets: table.New[netip.Addr, fragFloodTarget](cfg.MaxTargets, nil),
	}
}

// Info implements detector.Rule.
func (r *FragFlood) Info() detector.RuleInfo { return fragFloodInfo }

// Interest implements detector.Interested: fragments only.
func (r *FragFlood) Interest() detector.Interest { return detector.Interest{Fragments: true} }

// Observe implements detector.Rule.
func (r *FragFlood) Observe(p *detector.Packet, rep detector.Reporter) {
	if !p.Frag.Tracked {
		return
	}
	now := p.TimeNs
	t, _ := r.targets.Get(p.Dst, now)
	if r.fleetOn {
		t.srcs.AddHash(p.SrcHash())
	}
	if p.Frag.NewTrain {
		t.opened.Add(now, r.width, p.WireLen)
	} else {
		t.opened.Advance(now, r.width)
	}
	if p.Frag.Completed {
		t.completed.Add(now, r.width, p.WireLen)
	} else {
		t.completed.Advance(now, r.width)
	}
	if m := r.judge(t); m != nil {
		rep.Hit(p.Dst, p, m)
	}
}

// judge is the target's measure when its rate of incomplete trains is at
// least the stop level, else nil (Observe's judgement, and JudgeFleet's
// of the fleet's sums).
func (r *FragFlood) judge(t *fragFloodTarget) *detector.Measure {
	rate := float64(t.incomplete()) / r.cfg.Window.Seconds()
	var lv detector.Level
	switch {
	case rate >= r.cfg.TrainsPPS:
		lv = detector.LevelFire
	case rate >= r.cfg.TrainsPPS*r.cfg.StopRatio:
		lv = detector.LevelSustain
	default:
		return nil
	}
	_, bps := t.opened.Rates(r.cfg.Window)
	r.m = detector.Measure{Level: lv, PPS: rate, BPS: bps, Window: r.cfg.Window, Threshold: r.cfg.TrainsPPS}
	return &r.m
}

// Tick implements detector.Rule: every few windows it drops targets idle
// for a whole window.
func (r *FragFlood) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, 10*r.cfg.Window) {
		r.targets.DropIdle(now.Add(-r.cfg.Window).UnixNano())
	}
}

// Describe implements detector.Describer: the train counts behind the rate.
func (r *FragFlood) Describe(target netip.Addr, extra map[string]any) {
	t, ok := r.targets.Lookup(target)
	if !ok {
		return
	}
	extra["trains_opened"] = t.opened.Packets()
	extra["trains_completed"] = t.completed.Packets()
	extra["trains_incomplete"] = t.incomplete()
	extra["rate_unit"] = "incomplete_trains_per_s"
}

// Tables implements detector.TableReporter.
func (r *FragFlood) Tables() []detector.TableStat {
	return []detector.TableStat{{
		Name: "frag_flood.targets", Len: r.targets.Len(), Cap: r.targets.Cap(), Evicted: r.targets.Evicted(),
	}}
}
