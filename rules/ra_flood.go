package rules

import (
	"math"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

var raFloodInfo = detector.RuleInfo{
	Name:        "ra_flood",
	SignatureID: 9000013,
	Rev:         1,
	Signature:   "ICMPv6 Router Advertisement flood",
	Category:    "Attempted Denial of Service",
	Severity:    2,
}

// raFloodDefinition registers ra_flood.
func raFloodDefinition() Definition {
	return define(raFloodInfo,
		"ra_flood: a flood of ICMPv6 Router Advertisements to one destination (ff02::1 for the link, or a host), usually from many forged routers and prefixes (THC-IPv6 flood_router26): every host processes each one. A real router sends one every few minutes, plus answers to solicitations.",
		map[string]string{
			"window":      "Sliding window (10 buckets).",
			"pps":         "Start level: RAs per second to one destination.",
			"max_targets": "Cap on destinations tracked (ff02::1 and unicast hosts); least recently seen are evicted and counted.",
		},
		DefaultRAFloodConfig,
		func(c RAFloodConfig) (detector.Rule, error) { return NewRAFlood(c), nil })
}

// RAFloodConfig configures ra_flood.
type RAFloodConfig struct {
	Enabled    bool          `mapstructure:"enabled"`
	Window     time.Duration `mapstructure:"window"`
	PPS        float64       `mapstructure:"pps"`
	StopRatio  float64       `mapstructure:"stop_ratio"`
	MaxTargets int           `mapstructure:"max_targets"`
}

// DefaultRAFloodConfig returns ra_flood's defaults: 20 RAs a second over
// 3 s.
func DefaultRAFloodConfig() RAFloodConfig {
	return RAFloodConfig{Enabled: true, Window: 3 * time.Second, PPS: 20, StopRatio: 0.5, MaxTargets: 1024}
}

// Validate checks the settings; errors name the configuration key.
func (c RAFloodConfig) Validate() error {
	k := newCheck(raFloodInfo.Name)
	k.duration("window", c.Window, 100*time.Millisecond, time.Minute)
	k.positive("pps", c.PPS)
	k.ratio("stop_ratio", c.StopRatio)
	k.count("max_targets", c.MaxTargets, 1, 1<<20)
	return k.err()
}

// raTarget is ra_flood's state for one destination.
type raTarget struct {
	rate     window.Counter
	prefixes [8]uint64 // linear-counting bitmap of the prefixes announced (512 bits)
	set      int       // bits set in prefixes (kept as they are set)
	last     int64
}

// RAFlood is the ra_flood rule: the rate of RAs to each destination over a
// sliding window. The distinct routers are the attack's sources (the
// tracker's estimate); the distinct prefixes announced are counted in a
// fixed bitmap per destination. RAs at its rate are ra_flood's
// (p.Class.Owner), so icmp_flood does not report the same flood again.
type RAFlood struct {
	cfg     RAFloodConfig
	width   int64
	secs    float64 // the window in seconds
	targets *table.Table[netip.Addr, raTarget]
	sweep   sweepClock
}

// NewRAFlood returns the ra_flood rule.
func NewRAFlood(cfg RAFloodConfig) *RAFlood {
	return &RAFlood{cfg: cfg, width: int64(cfg.Window) / window.Buckets, secs: cfg.Window.Seconds(), targets: table.New[netip.Addr, raTarget](cfg.MaxTargets, nil)}
}

// Info implements detector.Rule.
func (r *RAFlood) Info() detector.RuleInfo { return raFloodInfo }

// Classify implements detector.Classifier: an RA to a destination at the
// stop level or above is ra_flood's.
func (r *RAFlood) Classify(p *detector.Packet) {
	if !isND(p, icmpmsg.V6RouterAdvert, 16) {
		return
	}
	// Touch, not Lookup: Observe asks for the same entry next, and a
	// flood's one destination is then the table's last key (no hash; no
	// call, by Again).
	t, ok := r.targets.Again(p.Dst, p.TimeNs)
	if !ok {
		t, ok = r.targets.Touch(p.Dst, p.TimeNs)
	}
	if ok {
		// Moved to the packet's time in place, as Observe's count next
		// moves it (no copy of the window to judge).
		t.rate.AdvanceBucket(p.TimeNs / r.width)
		if pps, _ := t.rate.RatesOver(r.secs); pps >= r.cfg.PPS*r.cfg.StopRatio {
			p.Class.Owner = raFloodInfo.Name
		}
	}
}

// Interest implements detector.Interested: Router Advertisements.
func (r *RAFlood) Interest() detector.Interest {
	return detector.Interest{ICMPv6: detector.Types(icmpmsg.V6RouterAdvert)}
}

// Observe implements detector.Rule.
func (r *RAFlood) Observe(p *detector.Packet, rep detector.Reporter) {
	if !isND(p, icmpmsg.V6RouterAdvert, 16) {
		return
	}
	t, ok := r.targets.Again(p.Dst, p.TimeNs) // (Classify's key)
	if !ok {
		t, _ = r.targets.Get(p.Dst, p.TimeNs)
	}
	t.last = p.TimeNs
	t.rate.Add(p.TimeNs, r.width, p.WireLen)
	// The prefixes as sent (the packet's one bounded option walk), until
	// the bitmap is full: a flood of new prefixes fills it within a few
	// hundred RAs, and from then on its RAs cost no prefix read (a full
	// bitmap counts nothing more).
	if nd := p.NDOptions(); t.set < 512 {
		for i := 0; i < int(nd.NPrefix); i++ {
			// Hashed from its words (sketch.HashAddr of its address,
			// its length mixed in) without making it an address first.
			if hi, lo, n, ok := nd.PrefixWords(p.ICMPData, i); ok {
				x := sketch.Mix64(lo)
				if hi != 0 {
					x = sketch.Mix64(sketch.Mix64(hi) ^ lo)
				}
				x = (x ^ uint64(n)) % 512
				if w, bit := &t.prefixes[x/64], uint64(1)<<(x%64); *w&bit == 0 {
					*w |= bit
					t.set++
				}
			}
		}
	}
	pps, bps := t.rate.RatesOver(r.secs)
	lvl := rateLevel(pps, r.cfg.PPS, r.cfg.StopRatio)
	if lvl == detector.LevelQuiet {
		return
	}
	rep.Hit(p.Dst, p, &detector.Measure{Level: lvl, PPS: pps, BPS: bps, Window: r.cfg.Window, Threshold: r.cfg.PPS,
		WindowPackets: t.rate.Packets(), WindowBytes: t.rate.Bytes()})
}

// Tick implements detector.Rule.
func (r *RAFlood) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, 10*time.Second) {
		before := now.Add(-time.Minute).UnixNano()
		r.targets.Sweep(func(_ netip.Addr, t *raTarget, _ int64) bool { return t.last < before })
	}
}

// Describe implements detector.Describer: the distinct prefixes announced
// (estimate); the distinct routers are the event's sources.
func (r *RAFlood) Describe(target netip.Addr, extra map[string]any) {
	t, ok := r.targets.Lookup(target)
	if !ok {
		return
	}
	if set := t.set; set < 512 {
		extra["prefixes"] = uint64(math.Round(-512 * math.Log(float64(512-set)/512)))
	} else {
		extra["prefixes"] = uint64(512 * math.Log(512))
	}
}

// Tables implements detector.TableReporter.
func (r *RAFlood) Tables() []detector.TableStat {
	return []detector.TableStat{{Name: "ra_flood.targets", Len: r.targets.Len(), Cap: r.targets.Cap(), Evicted: r.targets.Evicted()}}
}
