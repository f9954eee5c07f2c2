package rules

import (
	"math"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

// floodInfo identifies the icmp_flood rule in alerts.
var floodInfo = detector.RuleInfo{
	Name:        "icmp_flood",
	SignatureID: 9000001,
	Rev:         1,
	Signature:   "ICMP flood",
	Category:    "Attempted Denial of Service",
	Severity:    2,
}

// floodDefinition registers icmp_flood.
func floodDefinition() Definition {
	return define(floodInfo,
		"icmp_flood: echo-request rate to one target, and the rate of any ICMP or ICMPv6 message to one target (replies, unreachables, MLD reports, ...).",
		map[string]string{
			"window":      "Sliding window, split in 10 buckets: a 10,000 pps flood is reported within about 0.1 s of packet time.",
			"echo_pps":    "Start levels for echo requests to one target. 1,000/s is ten times a `ping -f` and far above any normal use; 20 Mbit/s catches large-packet floods at lower packet rates.",
			"any_pps":     "Start levels for ICMP of any type to one target: higher, because busy hosts legitimately receive errors and replies.",
			"stop_ratio":  "An attack lasts while its rate stays at or above this fraction of the start level (hysteresis: no flapping around the threshold).",
			"max_targets": "Cap on tracked targets (about 380 bytes each); least recently seen targets are evicted and counted when full.",
		},
		DefaultFloodConfig,
		func(c FloodConfig) (detector.Rule, error) { return NewFlood(c), nil })
}

// FloodConfig configures icmp_flood.
type FloodConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Window is the sliding window the rates are measured over; it is
	// split into 10 buckets, so a flood is seen within a tenth of it.
	Window time.Duration `mapstructure:"window"`
	// EchoPPS and EchoBPS are the start levels for echo requests (ICMP
	// type 8, ICMPv6 type 128) to one target, in packets/s and bits/s.
	EchoPPS float64 `mapstructure:"echo_pps"`
	EchoBPS float64 `mapstructure:"echo_bps"`
	// AnyPPS and AnyBPS are the start levels for any ICMP/ICMPv6 message to
	// one target (replies, unreachables, MLD reports, ... included).
	AnyPPS float64 `mapstructure:"any_pps"`
	AnyBPS float64 `mapstructure:"any_bps"`
	// StopRatio sets the stop level as a fraction of the start level: an
	// attack lasts while the rate stays at or above it.
	StopRatio float64 `mapstructure:"stop_ratio"`
	// MaxTargets caps the per-target table.
	MaxTargets int `mapstructure:"max_targets"`
}

// DefaultFloodConfig returns icmp_flood's defaults: a 1 s window in 100 ms
// buckets; 1,000 echo requests/s or 20 Mbit/s of them; 2,000 ICMP messages/s
// of any type or 40 Mbit/s; the attack ends below half of that.
func DefaultFloodConfig() FloodConfig {
	return FloodConfig{
		Enabled:    true,
		Window:     time.Second,
		EchoPPS:    1000,
		EchoBPS:    20e6,
		AnyPPS:     2000,
		AnyBPS:     40e6,
		StopRatio:  0.5,
		MaxTargets: 65536,
	}
}

// Validate checks the settings; errors name the configuration key.
func (c FloodConfig) Validate() error {
	k := newCheck(floodInfo.Name)
	k.duration("window", c.Window, 10*time.Millisecond, time.Minute)
	k.positive("echo_pps", c.EchoPPS)
	k.positive("echo_bps", c.EchoBPS)
	k.positive("any_pps", c.AnyPPS)
	k.positive("any_bps", c.AnyBPS)
	k.ratio("stop_ratio", c.StopRatio)
	k.count("max_targets", c.MaxTargets, 1, 1<<24)
	return k.err()
}

// floodTarget is icmp_flood's state for one target.
type floodTarget struct {
	echo, any window.Counter
	trigger   uint8          // which rate last reached the stop level
	srcs      sketch.MiniHLL // distinct sources since the last fleet report (fleet on)
}

const (
	triggerEcho = iota + 1
	triggerAny
)

// Flood is the icmp_flood rule. It counts, per destination address, echo
// requests and (separately) all ICMP/ICMPv6 messages that carry an ICMP
// header (a fragmented message counts once, by its first fragment) over a
// sliding window of Window split into 10 buckets. A target whose echo
// rate reaches EchoPPS or EchoBPS, or whose any-ICMP rate reaches AnyPPS or
// AnyBPS, is under attack until both rates fall below StopRatio of those
// levels for the engine's hold time. Sources are not tracked here: the
// engine estimates distinct sources and top sources per attack in fixed
// memory, so spoofed floods cost nothing per source.
//
// Targets get an exact window only once an admission filter (admitter) in
// front of the table estimates their ICMP rate at 1/8 of the lowest start
// level (stop_ratio/4 of it when stop_ratio is below 1/2): the many destinations of ordinary traffic, each at a packet or so
// per second, cost a cell in a fixed 640 KiB array instead of a table entry
// that evicts another. The new window is seeded with the filter's estimate,
// so the rates lose nothing from before admission. The table still has a
// capacity and counts evictions: a flood of spoofed targets each sending
// at the admission level stays bounded.
//
// Packets another rule claims as its own attack's (p.Class.Owner, set by
// the engine's classification step: smurf's broadcast requests and
// reflection storms) are left out of both counts, so one attack is not
// reported twice; so are echo replies their receiver asked for
// (p.Class.Solicited): the answers to a fast `ping -f` are not a flood of
// the pinger. Echo requests to a group from many spoofed sources, none at
// smurf's rate, and floods of unsolicited echo replies from few sources
// remain icmp_flood's.
type Flood struct {
	cfg     FloodConfig
	width   int64   // bucket width in ns
	secs    float64 // the window in seconds
	targets *table.Table[netip.Addr, floodTarget]
	admit   admitter
	sweep   sweepClock
	m       detector.Measure // judge's, reused
	// anyAt and echoAt are the window counts of the any-ICMP and echo
	// levels (judge's).
	anyAt, echoAt rateCounts
	fleetP        detector.Packet // JudgeFleet's (flood_fleet.go)
	fleetOn       bool            // a fleet takes the reports: count sources (flood_fleet.go)
}

// NewFlood returns the icmp_flood rule.
func NewFlood(cfg FloodConfig) *Flood {
	secs := cfg.Window.Seconds()
	return &Flood{
		cfg:     cfg,
		width:   int64(cfg.Window) / window.Buckets,
		secs:    secs,
		anyAt:   newRateCounts(cfg.AnyPPS, cfg.AnyBPS, cfg.StopRatio, secs),
		echoAt:  newRateCounts(cfg.EchoPPS, cfg.EchoBPS, cfg.StopRatio, secs),
		targets: table.New[netip.Addr, floodTarget](cfg.MaxTargets, nil),
		admit:   newAdmitter(cfg, admitBitsFor(cfg.MaxTargets, DefaultFloodConfig().MaxTargets)),
	}
}

// Info implements detector.Rule.
func (f *Flood) Info() detector.RuleInfo { return floodInfo }

func level(pps, bps, startPPS, startBPS, stop float64) detector.Level {
	switch {
	case pps >= startPPS || bps >= startBPS:
		return detector.LevelFire
	case pps >= startPPS*stop || bps >= startBPS*stop:
		return detector.LevelSustain
	}
	return detector.LevelQuiet
}

// Interest implements detector.Interested: every ICMP message.
func (f *Flood) Interest() detector.Interest {
	return detector.Interest{ICMPv4: detector.AllTypes, ICMPv6: detector.AllTypes}
}

// Observe implements detector.Rule.
func (f *Flood) Observe(p *detector.Packet, rep detector.Reporter) {
	if !p.HasICMP || p.Class.Owner != "" || p.Class.Solicited {
		return
	}
	now := p.TimeNs
	idx := now / f.width                 // both counters' bucket
	t, ok := f.targets.Again(p.Dst, now) // a flood's target, without a call
	if !ok {
		t, ok = f.targets.Touch(p.Dst, now)
	}
	if !ok {
		if f.admit.level == 0 {
			t, _ = f.targets.Get(p.Dst, now)
		} else {
			var seed admitSeed
			if !f.admit.observe(p.DstHash(), idx, p.WireLen, p.IsEchoRequest(), &seed) {
				return
			}
			t, _ = f.targets.Get(p.Dst, now)
			seed.fill(&t.any, 0, idx, p.WireLen)
			seed.fill(&t.echo, 1, idx, p.WireLen)
		}
	}
	if p.IsEchoRequest() {
		t.any.AddBoth(&t.echo, idx, p.WireLen)
	} else {
		t.any.AddBucket(idx, p.WireLen)
		t.echo.AdvanceBucket(idx)
	}
	if f.fleetOn {
		t.srcs.AddHash(p.SrcHash())
	}
	if m := f.judge(t); m != nil {
		rep.Hit(p.Dst, p, m)
	}
}

// judge measures t as Observe does after counting a packet (and
// JudgeFleet after taking a fleet's slot): the measure to report, or nil
// below the stop levels. The measure is the rule's own, reused.
// The levels are judged on the windows' counts (rateCounts: the same
// levels as level of their rates), and only the rates reported are
// worked out.
func (f *Flood) judge(t *floodTarget) *detector.Measure {
	anyLevel := f.anyAt.level(&t.any)
	echoLevel := f.echoAt.level(&t.echo)
	if echoLevel == detector.LevelQuiet && anyLevel == detector.LevelQuiet {
		return nil
	}
	m := &f.m // every field set: no clearing first
	m.Window = f.cfg.Window
	c := &t.any
	if echoLevel >= anyLevel {
		c = &t.echo
		t.trigger = triggerEcho
		m.Level, m.Threshold = echoLevel, f.cfg.EchoPPS
	} else {
		t.trigger = triggerAny
		m.Level, m.Threshold = anyLevel, f.cfg.AnyPPS
	}
	m.PPS, m.BPS = c.RatesOver(f.secs)
	m.WindowPackets, m.WindowBytes = c.Packets(), c.Bytes()
	return m
}

// rateCounts are the window counts at which rates worked out as
// window.Counter.RatesOver does (over secs seconds) reach a rule's start
// and stop levels: judging a window compares its two counts with them,
// and gives what level gives of its rates, without a division.
type rateCounts struct {
	firePkts, fireBytes, sustainPkts, sustainBytes uint64
}

// newRateCounts are the counts of the levels level judges with startPPS,
// startBPS and stop over windows of secs seconds.
func newRateCounts(startPPS, startBPS, stop, secs float64) rateCounts {
	return rateCounts{
		firePkts: leastCount(startPPS, 1, secs), fireBytes: leastCount(startBPS, 8, secs),
		sustainPkts: leastCount(startPPS*stop, 1, secs), sustainBytes: leastCount(startBPS*stop, 8, secs),
	}
}

// level is level(c.RatesOver(secs), ...) of the settings rc was made of.
func (rc *rateCounts) level(c *window.Counter) detector.Level {
	p, b := c.Packets(), c.Bytes()
	switch {
	case p >= rc.firePkts || b >= rc.fireBytes:
		return detector.LevelFire
	case p >= rc.sustainPkts || b >= rc.sustainBytes:
		return detector.LevelSustain
	}
	return detector.LevelQuiet
}

// leastCount is the least count n whose rate float64(n)*mul/secs (as
// RatesOver works it out: mul 1 for packets, 8 for bytes) is at least
// lvl; math.MaxUint64 when none below 2^62 is. The rate grows with n
// (each operation rounds monotonically), so n >= leastCount exactly when
// the rate reaches lvl.
func leastCount(lvl, mul, secs float64) uint64 {
	reach := func(n uint64) bool { return float64(int64(n))*mul/secs >= lvl }
	if !(secs > 0) { // RatesOver's rates are 0 whatever the count
		if 0 >= lvl {
			return 0
		}
		return math.MaxUint64
	}
	est := lvl * secs / mul
	if !(est < 1<<62) {
		if reach(1 << 62) {
			return 1 << 62
		}
		return math.MaxUint64
	}
	n := uint64(max(est, 0))
	for n > 0 && reach(n-1) {
		n--
	}
	for !reach(n) {
		n++
	}
	return n
}

// FloodScope implements detector.FloodScoper: queries to one host at the
// echo start level (the engine's gauge marks them p.Class.Flooded, so
// that the rules keyed by source leave a flood's spoofed senders alone).
func (f *Flood) FloodScope() detector.FloodScope {
	w := f.cfg.Window.Seconds()
	return detector.FloodScope{Start: f.cfg.EchoPPS * w, Stop: f.cfg.EchoPPS * f.cfg.StopRatio * w, Window: f.cfg.Window}
}

// Tick implements detector.Rule: every few windows it drops targets that
// have been idle for a whole window, so the table holds only live targets.
func (f *Flood) Tick(now time.Time, _ detector.Reporter) {
	if f.sweep.due(now, 10*f.cfg.Window) {
		f.targets.DropIdle(now.Add(-f.cfg.Window).UnixNano())
	}
}

// Describe implements detector.Describer: which rate made the target an
// attack target.
func (f *Flood) Describe(target netip.Addr, extra map[string]any) {
	t, ok := f.targets.Lookup(target)
	if !ok {
		return
	}
	switch t.trigger {
	case triggerEcho:
		extra["trigger"] = "echo_request_rate"
	case triggerAny:
		extra["trigger"] = "any_icmp_rate"
	}
	echoPPS, _ := t.echo.Rates(f.cfg.Window)
	anyPPS, _ := t.any.Rates(f.cfg.Window)
	extra["echo_pps"] = echoPPS
	extra["any_icmp_pps"] = anyPPS
}

// Tables implements detector.TableReporter.
func (f *Flood) Tables() []detector.TableStat {
	return []detector.TableStat{{
		Name: "icmp_flood.targets", Len: f.targets.Len(), Cap: f.targets.Cap(), Evicted: f.targets.Evicted(),
	}}
}
