package rules

import (
	"math"
	"math/bits"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

var ndFloodInfo = detector.RuleInfo{
	Name:        "nd_flood",
	SignatureID: 9000015,
	Rev:         1,
	Signature:   "ICMPv6 neighbor discovery flood (neighbor-cache exhaustion)",
	Category:    "Attempted Denial of Service",
	Severity:    2,
}

// ndFloodDefinition registers nd_flood.
func ndFloodDefinition() Definition {
	return define(ndFloodInfo,
		"nd_flood: Neighbor Solicitations for many distinct target addresses (neighbor-cache exhaustion, RFC 6583) or a flood of Neighbor Advertisements. Target: the host the messages are sent to; for solicitations and advertisements sent to a group, the router (or host) resolving that many addresses (the source) when one source does, else the one address every solicitation asks for (flood_solicitate6 against one host), else the link (ff02::1).",
		map[string]string{
			"window":      "Sliding window (10 buckets).",
			"ns_pps":      "Start level for solicitations: per second to one host, or from one resolving source, and ...",
			"min_targets": "... for at least this many distinct target addresses within window (estimated). A busy router resolves a few neighbors a second, and the same ones again and again.",
			"na_pps":      "Start level for advertisements per second to one host, or to the link from all sources together.",
			"link_pps":    "Start level for solicitations to groups from all sources together (flood_solicitate6 forges a new source each time).",
			"max_keys":    "Cap on hosts and sources tracked; least recently seen are evicted and counted.",
		},
		DefaultNDFloodConfig,
		func(c NDFloodConfig) (detector.Rule, error) { return NewNDFlood(c), nil })
}

// NDFloodConfig configures nd_flood.
type NDFloodConfig struct {
	Enabled    bool          `mapstructure:"enabled"`
	Window     time.Duration `mapstructure:"window"`
	NSPPS      float64       `mapstructure:"ns_pps"`
	MinTargets int           `mapstructure:"min_targets"`
	NAPPS      float64       `mapstructure:"na_pps"`
	LinkPPS    float64       `mapstructure:"link_pps"`
	StopRatio  float64       `mapstructure:"stop_ratio"`
	MaxKeys    int           `mapstructure:"max_keys"`
}

// DefaultNDFloodConfig returns nd_flood's defaults: 100 solicitations a
// second over 64 targets, 200 advertisements a second, 500 solicitations
// a second to groups from everyone, over 2 s.
func DefaultNDFloodConfig() NDFloodConfig {
	return NDFloodConfig{Enabled: true, Window: 2 * time.Second, NSPPS: 100, MinTargets: 64, NAPPS: 200, LinkPPS: 500, StopRatio: 0.5, MaxKeys: 16384}
}

// Validate checks the settings; errors name the configuration key.
func (c NDFloodConfig) Validate() error {
	k := newCheck(ndFloodInfo.Name)
	k.duration("window", c.Window, 100*time.Millisecond, time.Minute)
	k.positive("ns_pps", c.NSPPS)
	k.count("min_targets", c.MinTargets, 2, 1000)
	k.positive("na_pps", c.NAPPS)
	k.positive("link_pps", c.LinkPPS)
	k.ratio("stop_ratio", c.StopRatio)
	k.count("max_keys", c.MaxKeys, 1, 1<<22)
	return k.err()
}

// ndKey keys nd_flood's counters: a host or source, and the message kind.
type ndKey struct {
	addr netip.Addr
	na   bool
}

// ndCounter counts messages and their distinct targets for one key.
type ndCounter struct {
	rate    window.Counter
	targets [2][8]uint64 // distinct targets per window-long epoch (512-bit bitmaps)
	set     int          // bits set in either bitmap (kept as they are set)
	epoch   int64
	last    int64
}

func (c *ndCounter) addTarget(t netip.Addr, now, windowNs int64) {
	if ep := now / windowNs; ep != c.epoch {
		if ep != c.epoch+1 {
			c.targets[(ep+1)&1] = [8]uint64{}
		}
		c.targets[ep&1] = [8]uint64{}
		c.epoch = ep
		c.set = 0
		for _, w := range c.targets[(ep+1)&1] {
			c.set += bits.OnesCount64(w)
		}
	}
	x := sketch.HashAddr(t) % 512
	w, bit := x/64, uint64(1)<<(x%64)
	if (c.targets[0][w]|c.targets[1][w])&bit == 0 {
		c.set++
	}
	c.targets[c.epoch&1][w] |= bit
}

// distinct estimates the distinct targets (linear counting).
func (c *ndCounter) distinct() float64 { return distinctOf(c.set) }

// distinctOf is the linear-counting estimate of a 512-bit bitmap with set
// bits set.
func distinctOf(set int) float64 {
	if set >= 512 {
		return 512 * math.Log(512)
	}
	return -512 * math.Log(float64(512-set)/512)
}

// setFor is the fewest set bits whose estimate reaches d (513 when none
// does): distinctOf(c.set) < d exactly when c.set < setFor(d), so the
// per-packet test compares counts and takes no logarithm.
func setFor(d float64) int {
	for s := 0; s <= 512; s++ {
		if distinctOf(s) >= d {
			return s
		}
	}
	return 513
}

// allNodes is ff02::1, the link's target for group floods.
var allNodes = netip.MustParseAddr("ff02::1")

// NDFlood is the nd_flood rule. It counts solicitations per destination
// host (unicast) or per resolving source (to a group), with their
// distinct targets, and advertisements per destination; messages to
// groups from all sources together are counted for the link: its target
// is the one address they all solicit when they do (that host's cache is
// the one filling), else ff02::1. Keys are capped and evictions counted.
// Messages at nd_flood's rates are nd_flood's (p.Class.Owner): icmp_flood
// leaves them out.
type NDFlood struct {
	cfg      NDFloodConfig
	width    int64
	windowNs int64
	secs     float64 // the window in seconds
	// minSet and stopSet: the set target bits whose estimate reaches
	// min_targets, and min_targets × stop_ratio (setFor).
	minSet, stopSet int
	door            *sketch.Doorkeeper // admits a counter to a full keys table at its second message
	keys            *table.Table[ndKey, ndCounter]
	solo            soloTarget // what the link's solicitations ask for
	sweep           sweepClock
	// seen is what Classify found of the packet's keys, for Observe, which
	// follows it for the same packet (see Classify).
	seen ndSeen
}

// ndSeen is what NDFlood.Classify found of a packet's keys (keysOf) in
// the table: the counters (nil: absent), valid while ok. Observe reads it
// instead of hashing each key again (an NS and NA flood alternates two
// keys, so the table's last-key shortcut misses every time), and drops it
// at its first insertion, which may move the counters.
type ndSeen struct {
	keys [2]ndKey
	c    [2]*ndCounter
	ok   bool
}

// soloTarget tells whether every solicitation to a group over the last one
// or two windows asked for one address (flood_solicitate6 against one
// host: that host's cache is the one filling), and which. Two window-long
// epochs, like ndCounter's bitmaps, but exact: an address, and whether
// another one was asked for.
type soloTarget struct {
	addr  [2]netip.Addr
	mixed [2]bool
	epoch int64
}

func (s *soloTarget) add(t netip.Addr, now, windowNs int64) {
	if ep := now / windowNs; ep != s.epoch {
		if ep != s.epoch+1 {
			s.addr[(ep+1)&1], s.mixed[(ep+1)&1] = netip.Addr{}, false
		}
		s.addr[ep&1], s.mixed[ep&1] = netip.Addr{}, false
		s.epoch = ep
	}
	i := s.epoch & 1
	switch {
	case !s.addr[i].IsValid():
		s.addr[i] = t
	case s.addr[i] != t:
		s.mixed[i] = true
	}
}

// one returns the one address asked for in both epochs, if there is one.
func (s *soloTarget) one() (netip.Addr, bool) {
	a, b := s.addr[0], s.addr[1]
	if s.mixed[0] || s.mixed[1] || a.IsValid() && b.IsValid() && a != b {
		return netip.Addr{}, false
	}
	if !a.IsValid() {
		a = b
	}
	return a, a.IsValid()
}

// NewNDFlood returns the nd_flood rule.
func NewNDFlood(cfg NDFloodConfig) *NDFlood {
	return &NDFlood{cfg: cfg, width: int64(cfg.Window) / window.Buckets, windowNs: int64(cfg.Window), secs: cfg.Window.Seconds(),
		keys:    table.New[ndKey, ndCounter](cfg.MaxKeys, nil),
		door:    sketch.NewDoorkeeper(14),
		minSet:  setFor(float64(cfg.MinTargets)),
		stopSet: setFor(float64(cfg.MinTargets) * cfg.StopRatio)}
}

// Info implements detector.Rule.
func (r *NDFlood) Info() detector.RuleInfo { return ndFloodInfo }

// Classify implements detector.Classifier: an NS or NA counted toward a
// key at its stop level or above is nd_flood's.
// The engine classifies a packet just before its rules observe it: the
// counters found are kept for Observe (r.seen), found with Touch (Observe
// counts the packet at the same time), and every key is looked up.
func (r *NDFlood) Classify(p *detector.Packet) {
	r.seen.ok = false
	ns := isND(p, icmpmsg.V6NeighSolicit, 24)
	if !ns && !isND(p, icmpmsg.V6NeighAdvert, 24) {
		return
	}
	r.seen = ndSeen{keys: r.keysOf(p, ns), ok: true}
	for j, k := range r.seen.keys {
		if !k.addr.IsValid() {
			continue
		}
		if c, ok := r.keys.Touch(k, p.TimeNs); ok {
			r.seen.c[j] = c
			// Moved to the packet's time in place, as Observe's count
			// next moves it (no copy of the window to judge).
			c.rate.AdvanceBucket(p.TimeNs / r.width)
			if pps, _ := c.rate.RatesOver(r.secs); pps >= r.level(k, ns)*r.cfg.StopRatio {
				p.Class.Owner = ndFloodInfo.Name
			}
		}
	}
}

// Interest implements detector.Interested: solicitations, advertisements.
func (r *NDFlood) Interest() detector.Interest {
	return detector.Interest{ICMPv6: detector.Types(icmpmsg.V6NeighSolicit, icmpmsg.V6NeighAdvert)}
}

// keyHash is the doorkeeper's hash of k, one of p's keys (keysOf): the
// packet's own hash of the address, the message kind mixed in.
func (r *NDFlood) keyHash(p *detector.Packet, k ndKey) uint64 {
	h := p.DstHash()
	if k.addr == p.Src {
		h = p.SrcHash()
	}
	if k.na {
		h = ^h
	}
	return sketch.Mix64(h)
}

// keysOf returns the keys p counts toward: the destination host, or for a
// group destination the source and the link.
func (r *NDFlood) keysOf(p *detector.Packet, ns bool) [2]ndKey {
	if !p.DstMulticast() {
		return [2]ndKey{{p.Dst, !ns}}
	}
	var k [2]ndKey
	if ns && !p.Src.IsUnspecified() {
		k[0] = ndKey{p.Src, false}
	}
	k[1] = ndKey{allNodes, !ns}
	return k
}

// level is the start level for key k.
func (r *NDFlood) level(k ndKey, ns bool) float64 {
	switch {
	case !ns:
		return r.cfg.NAPPS
	case k.addr == allNodes:
		return r.cfg.LinkPPS
	}
	return r.cfg.NSPPS
}

// Observe implements detector.Rule.
func (r *NDFlood) Observe(p *detector.Packet, rep detector.Reporter) {
	ns := isND(p, icmpmsg.V6NeighSolicit, 24)
	if !ns && !isND(p, icmpmsg.V6NeighAdvert, 24) {
		return
	}
	target, _, _, _, _ := icmpmsg.NeighborTarget(p.ICMPData)
	now := p.TimeNs
	seen := r.seen // Classify's, when it looked this packet's keys up
	r.seen.ok = false
	keys := seen.keys
	if !seen.ok {
		keys = r.keysOf(p, ns)
	}
	for j, k := range keys {
		if !k.addr.IsValid() {
			continue
		}
		var c *ndCounter
		ok := seen.ok && seen.c[j] != nil
		if ok {
			c = seen.c[j]
		} else if !seen.ok {
			c, ok = r.keys.Touch(k, now)
		}
		if !ok {
			// Admission: once the table is full, a host's or a source's
			// counter is made at its second message (the doorkeeper),
			// so solicitations from spoofed sources, one each, cost a
			// cell write instead of an insertion and an eviction, and
			// evict no counter of a host being flooded. The link's
			// counter is always kept.
			if k.addr != allNodes && r.keys.Len() >= r.keys.Cap() && !r.door.Seen(r.keyHash(p, k)) {
				continue
			}
			c, _ = r.keys.Get(k, now)
			seen.ok = false // (the insertion may have moved the other key's counter)
		}
		c.last = now
		c.rate.Add(now, r.width, p.WireLen)
		c.addTarget(target, now, r.windowNs)
		if ns && k.addr == allNodes {
			r.solo.add(target, now, r.windowNs)
		}
		pps, bps := c.rate.RatesOver(r.secs)
		start := r.level(k, ns)
		lvl := rateLevel(pps, start, r.cfg.StopRatio)
		// Solicitations to one host or from one source must also spread
		// over many targets: resolving a few neighbors fast is no attack.
		if ns && k.addr != allNodes && c.set < r.minSet { // fewer distinct targets than min_targets
			lvl = min(lvl, detector.LevelSustain)
			if lvl == detector.LevelSustain && c.set < r.stopSet {
				lvl = detector.LevelQuiet
			}
		}
		if lvl == detector.LevelQuiet {
			continue
		}
		victim := k.addr
		if ns && k.addr == allNodes {
			// Solicitations from everyone for one address fill that
			// host's cache (and its router's): it is the target. For
			// many addresses the link stays the target.
			if a, ok := r.solo.one(); ok && !a.IsMulticast() && !a.IsUnspecified() {
				victim = a
			}
		}
		rep.Hit(victim, p, &detector.Measure{Level: lvl, PPS: pps, BPS: bps, Window: r.cfg.Window, Threshold: start,
			WindowPackets: c.rate.Packets(), WindowBytes: c.rate.Bytes()})
		return
	}
}

// Tick implements detector.Rule.
func (r *NDFlood) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, 10*time.Second) {
		before := now.Add(-time.Minute).UnixNano()
		r.keys.Sweep(func(_ ndKey, c *ndCounter, _ int64) bool { return c.last < before })
	}
}

// Describe implements detector.Describer: the distinct target addresses
// solicited or advertised (estimate).
func (r *NDFlood) Describe(target netip.Addr, extra map[string]any) {
	best := 0.0
	keys := []ndKey{{target, false}, {target, true}}
	if a, ok := r.solo.one(); ok && a == target {
		keys = append(keys, ndKey{allNodes, false}) // a solicitation flood to the link for target alone
	}
	for _, k := range keys {
		if c, ok := r.keys.Lookup(k); ok {
			best = max(best, c.distinct())
		}
	}
	extra["nd_targets"] = uint64(math.Round(best))
}

// Tables implements detector.TableReporter.
func (r *NDFlood) Tables() []detector.TableStat {
	return []detector.TableStat{{Name: "nd_flood.keys", Len: r.keys.Len(), Cap: r.keys.Cap(), Evicted: r.keys.Evicted()}}
}
