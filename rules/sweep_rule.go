package rules

import (
	"math"
	"math/bits"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

var sweepInfo = detector.RuleInfo{
	Name:        "icmp_sweep",
	SignatureID: 9000010,
	Rev:         1,
	Signature:   "ICMP host sweep (host discovery)",
	Category:    "Attempted Information Leak",
	Severity:    3,
}

// sweepDefinition registers icmp_sweep.
func sweepDefinition() Definition {
	return define(sweepInfo,
		"icmp_sweep: one source probing many distinct hosts with echo, timestamp, information or address-mask requests (nmap -sn -PE/-PP/-PM, fping -g, masscan --ping). A source that keeps probing the hosts it probed before (a monitoring server) is not sweeping anew: it may raise one alert when the sensor first sees it, then none.",
		map[string]string{
			"window":         "Sliding window the new destinations of a source are counted over (10 buckets).",
			"min_hosts":      "Start level: this many destinations a source had not probed before, within window.",
			"hold_time":      "An attack lasts until the source has gone this long without probing new hosts at the stop level; at most one alert per source per hold period.",
			"ignore_sources": "Sources never reported (monitoring servers, your own scanners): IP addresses or CIDR prefixes.",
			"max_sources":    "Cap on tracked sources (about 600 bytes each). A source gets state only once it holds a cell of an admission filter with probes to 8 distinct hosts within window (a flood's sources never do); least recently seen are evicted and counted.",
		},
		DefaultSweepConfig,
		func(c SweepConfig) (detector.Rule, error) { return NewSweep(c), nil })
}

// SweepConfig configures icmp_sweep.
type SweepConfig struct {
	Enabled       bool          `mapstructure:"enabled"`
	Window        time.Duration `mapstructure:"window"`
	MinHosts      int           `mapstructure:"min_hosts"`
	StopRatio     float64       `mapstructure:"stop_ratio"`
	HoldTime      time.Duration `mapstructure:"hold_time"`
	IgnoreSources []string      `mapstructure:"ignore_sources"`
	MaxSources    int           `mapstructure:"max_sources"`
}

// DefaultSweepConfig returns icmp_sweep's defaults: 32 new hosts within
// 10 s, held a minute.
func DefaultSweepConfig() SweepConfig {
	return SweepConfig{Enabled: true, Window: 10 * time.Second, MinHosts: 32, StopRatio: 0.5, HoldTime: time.Minute, MaxSources: 8192}
}

// Validate checks the settings; errors name the configuration key.
func (c SweepConfig) Validate() error {
	k := newCheck(sweepInfo.Name)
	k.duration("window", c.Window, 100*time.Millisecond, 10*time.Minute)
	k.count("min_hosts", c.MinHosts, 2, sweepKnownBits/4)
	k.ratio("stop_ratio", c.StopRatio)
	k.duration("hold_time", c.HoldTime, time.Second, time.Hour)
	for i, s := range c.IgnoreSources {
		if _, err := parseAddrOrPrefix(s); err != nil {
			k.fail("ignore_sources["+itoa(i)+"]", "%q is not an IP address or CIDR prefix", s)
		}
	}
	k.count("max_sources", c.MaxSources, 1, 1<<22)
	return k.err()
}

// sweepKnownBits is the size of each generation of a source's
// known-destination bitmap.
const sweepKnownBits = 2048

type knownSet [sweepKnownBits / 64]uint64

// The admission filter: 16 Ki cells (256 KiB, cache-resident), and the
// distinct destinations (of 64 bitmap bits) that give a source state.
const (
	sweepAdmitBits  = 14
	sweepAdmitDests = 8
)

// sweepCell is one admission cell (16 bytes): the source holding it (a
// fingerprint of its hash), a majority-vote count, so that sources that
// send one probe each (a spoofed flood) cancel out instead of adding up,
// and a 64-bit bitmap of the destinations its holder probed this window.
// A source gets state once it holds its cell with probes to
// sweepAdmitDests distinct destinations: a flood of one host, from one
// source or many, never does.
type sweepCell struct {
	fp    uint32
	epoch uint16
	n     uint16
	dests uint64
}

// sweepSource is what icmp_sweep keeps of one probing source.
type sweepSource struct {
	newDests window.Counter // destinations not probed before, per bucket
	// known[cur] and known[cur^1] are two generations of the destinations
	// probed: a destination in either is known; a generation more than
	// half full hands over to the other (cleared), so the bitmap keeps
	// counting through a sweep of any size while a fixed set of hosts
	// stays known.
	known    [2]knownSet
	cur      uint8
	curBits  int
	types    uint32 // probe types seen: bit 0 echo, 1 timestamp, 2 information, 3 address mask
	prefixes [4]uint64
	probed   uint64 // new destinations since the source got state
	answered uint64 // replies to the source
	last     int64
}

// Sweep is the icmp_sweep rule. Per source, it counts the destinations of
// its probes that it had not probed before, over a sliding window, and
// reports a source that reaches MinHosts. Destinations are remembered in
// a two-generation bitmap per source (hashed; a few percent of new hosts
// may pass for known), so memory per source is fixed. Sources get state
// only once an admission filter has seen them probe 8 distinct hosts in a
// window (see sweepCell); the table is capped and counts evictions.
type Sweep struct {
	cfg      SweepConfig
	width    int64
	windowNs int64
	ignore   []netip.Prefix
	admit    []sweepCell
	sources  *table.Table[netip.Addr, sweepSource]
	sweep    sweepClock
}

// NewSweep returns the icmp_sweep rule.
func NewSweep(cfg SweepConfig) *Sweep {
	r := &Sweep{
		cfg:      cfg,
		width:    int64(cfg.Window) / window.Buckets,
		windowNs: int64(cfg.Window),
		admit:    make([]sweepCell, 1<<sweepAdmitBits),
		sources:  table.New[netip.Addr, sweepSource](cfg.MaxSources, nil),
	}
	for _, s := range cfg.IgnoreSources {
		if p, err := parseAddrOrPrefix(s); err == nil {
			r.ignore = append(r.ignore, p)
		}
	}
	return r
}

// Warm implements detector.Warmer: the admission cells.
func (r *Sweep) Warm() { table.Prefault(r.admit) }

// Info implements detector.Rule: its own hold time.
func (r *Sweep) Info() detector.RuleInfo {
	i := sweepInfo
	i.HoldTime = r.cfg.HoldTime
	return i
}

// Interest implements detector.Interested: ICMP queries and their replies.
func (r *Sweep) Interest() detector.Interest {
	return detector.Interest{ICMPv4: detector.Types(0, 8, 13, 14, 15, 16, 17, 18), ICMPv6: detector.Types(128, 129)}
}

// probeType returns the probe kind bit of a request, or 0.
func probeType(p *detector.Packet) uint32 {
	if !p.HasICMP || p.ICMPCode != 0 {
		return 0
	}
	if p.IPv6 {
		if p.ICMPType == detector.ICMPv6EchoRequest {
			return 1
		}
		return 0
	}
	switch p.ICMPType {
	case detector.ICMPv4EchoRequest:
		return 1
	case 13:
		return 2
	case 15:
		return 4
	case 17:
		return 8
	}
	return 0
}

// isProbeReply tells whether p answers a probe (echo, timestamp,
// information or address-mask reply).
func isProbeReply(p *detector.Packet) bool {
	if !p.HasICMP {
		return false
	}
	if p.IPv6 {
		return p.ICMPType == detector.ICMPv6EchoReply
	}
	switch p.ICMPType {
	case detector.ICMPv4EchoReply, 14, 16, 18:
		return true
	}
	return false
}

// Observe implements detector.Rule.
func (r *Sweep) Observe(p *detector.Packet, rep detector.Reporter) {
	if p.Fragment && p.FragOffset != 0 {
		return
	}
	kind := probeType(p)
	if kind == 0 {
		if isProbeReply(p) {
			if s, ok := r.sources.Lookup(p.Dst); ok {
				s.answered++
			}
		}
		return
	}
	if !p.SourceRemote {
		r.probe(p, kind, rep)
	}
}

// ObserveSource implements detector.SourceObserver: with several engines,
// the probes of a scanner this engine owns.
func (r *Sweep) ObserveSource(p *detector.Packet, rep detector.Reporter) {
	if kind := probeType(p); kind != 0 && !(p.Fragment && p.FragOffset != 0) {
		r.probe(p, kind, rep)
	}
}

// Classify implements detector.Classifier: a probe from a source that is
// sweeping now (new hosts at the stop level or above) is marked
// p.Class.Sweeping, so smurf does not take its probes of broadcast
// addresses for a reflection attack in the scanner's name.
func (r *Sweep) Classify(p *detector.Packet) {
	if p.SourceRemote || probeType(p) == 0 {
		return
	}
	c := &r.admit[p.SrcHash()>>(64-sweepAdmitBits)]
	if c.fp != uint32(p.SrcHash()) || bits.OnesCount64(c.dests) < sweepAdmitDests {
		return
	}
	s, ok := r.sources.Lookup(p.Src)
	if !ok {
		return
	}
	n := s.newDests
	n.Advance(p.TimeNs, r.width)
	if float64(n.Packets()) >= float64(r.cfg.MinHosts)*r.cfg.StopRatio {
		p.Class.Sweeping = true
	}
}

// probe counts a probe of kind from p.Src and reports the source when its
// new destinations reach the level.
func (r *Sweep) probe(p *detector.Packet, kind uint32, rep detector.Reporter) {
	if p.Dst.IsMulticast() || p.Class.Owner != "" || p.Class.Flooded {
		return // a flood's or a carpet's probes make no scanner
	}
	now := p.TimeNs
	// The admission filter first: a source that holds no cell has no
	// state worth a table lookup (a spoofed flood costs a cell access).
	dh := p.DstHash()
	seen, ok := r.admitted(p.SrcHash(), dh, now)
	if !ok {
		return
	}
	s, ok := r.sources.Touch(p.Src, now)
	if !ok {
		if r.ignored(p.Src) {
			return
		}
		s, _ = r.sources.Get(p.Src, now)
		*s = sweepSource{probed: uint64(seen - 1)} // the hosts probed before admission, this one aside
	}
	s.last = now
	s.types |= kind
	x := dh % sweepKnownBits
	w, bit := x/64, uint64(1)<<(x%64)
	cur := &s.known[s.cur]
	known := (cur[w]|s.known[s.cur^1][w])&bit != 0
	if cur[w]&bit == 0 {
		cur[w] |= bit
		s.curBits++
		if s.curBits > sweepKnownBits/2 {
			s.cur ^= 1
			s.known[s.cur] = knownSet{}
			s.curBits = 0
		}
	}
	if known {
		s.newDests.AdvanceBucket(now / r.width)
	} else {
		s.newDests.Add(now, r.width, p.WireLen)
		s.probed++
		ph := sketch.HashPrefix(p.Dst) % 256
		s.prefixes[ph/64] |= 1 << (ph % 64)
	}
	n := float64(s.newDests.Packets())
	lvl := rateLevel(n, float64(r.cfg.MinHosts), r.cfg.StopRatio)
	if lvl == detector.LevelQuiet || known {
		return
	}
	pps, bps := s.newDests.Rates(r.cfg.Window)
	rep.Hit(p.Src, p, &detector.Measure{Level: lvl, PPS: pps, BPS: bps, Window: r.cfg.Window,
		Threshold: float64(r.cfg.MinHosts) / r.cfg.Window.Seconds(), WindowPackets: s.newDests.Packets(), WindowBytes: s.newDests.Bytes()})
}

// admitted counts a probe from a source (h: its sketch.HashAddr) to a
// destination (dh: its hash) in the admission filter and tells whether
// the source holds its cell with probes to enough distinct destinations
// in the current window to have state.
func (r *Sweep) admitted(h, dh uint64, now int64) (int, bool) {
	c := &r.admit[h>>(64-sweepAdmitBits)]
	fp := uint32(h)
	switch ep := uint16(now / r.windowNs); {
	case c.epoch != ep:
		*c = sweepCell{fp: fp, epoch: ep, n: 1}
	case c.fp == fp:
		c.n = min(c.n+1, 1<<15)
	case c.n > 1:
		c.n--
		return 0, false
	default:
		*c = sweepCell{fp: fp, epoch: ep, n: 1}
	}
	c.dests |= 1 << (dh % 64)
	n := bits.OnesCount64(c.dests)
	return n, n >= sweepAdmitDests
}

func (r *Sweep) ignored(a netip.Addr) bool {
	for _, p := range r.ignore {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Tick implements detector.Rule: sources idle longer than the hold time
// and the window leave the table.
func (r *Sweep) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, 10*time.Second) {
		before := now.Add(-max(r.cfg.HoldTime, r.cfg.Window) - time.Minute).UnixNano()
		r.sources.Sweep(func(_ netip.Addr, s *sweepSource, _ int64) bool { return s.last < before })
	}
}

// Describe implements detector.Describer: hosts probed, probe types, the
// /24s (/64s) covered (estimate), replies seen.
func (r *Sweep) Describe(target netip.Addr, extra map[string]any) {
	s, ok := r.sources.Lookup(target)
	if !ok {
		return
	}
	extra["hosts_probed"] = s.probed
	var types []string
	for i, n := range []string{"echo", "timestamp", "information", "address_mask"} {
		if s.types&(1<<i) != 0 {
			types = append(types, n)
		}
	}
	extra["probe_types"] = types
	set := 0
	for _, w := range s.prefixes {
		set += bits.OnesCount64(w)
	}
	if set < 256 {
		extra["prefixes"] = uint64(math.Round(-256 * math.Log(float64(256-set)/256)))
	}
	extra["answered"] = s.answered
}

// Tables implements detector.TableReporter.
func (r *Sweep) Tables() []detector.TableStat {
	return []detector.TableStat{{Name: "icmp_sweep.sources", Len: r.sources.Len(), Cap: r.sources.Cap(), Evicted: r.sources.Evicted()}}
}
