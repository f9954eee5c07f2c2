package rules

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

var carpetInfo = detector.RuleInfo{
	Name:        "icmp_carpet_flood",
	SignatureID: 9000012,
	Rev:         1,
	Signature:   "ICMP carpet-bombing flood over a prefix",
	Category:    "Attempted Denial of Service",
	Severity:    2,
}

// carpetDefinition registers icmp_carpet_flood.
func carpetDefinition() Definition {
	return define(carpetInfo,
		"icmp_carpet_flood: an ICMP flood spread over many hosts of one prefix (carpet bombing), so that no single host crosses icmp_flood's threshold. A flood of one host stays icmp_flood's.",
		map[string]string{
			"window":         "Sliding window, split in 10 buckets.",
			"echo_pps":       "Start levels toward one prefix: echo requests per second, and ICMP messages of any type per second. 40,000 echo requests a second over a /24 is 150 per host, below any per-host level, yet it fills the uplink.",
			"stop_ratio":     "The attack lasts while the rate stays at or above this fraction of the start level.",
			"ipv4_prefix":    "Prefix lengths the traffic is aggregated by, when home_networks is empty.",
			"home_networks":  "The prefixes to watch, each aggregated as one (CIDR, its own length), e.g. [192.0.2.0/24, 198.51.100.0/22, 2001:db8:1::/64]. Empty: every destination, by ipv4_prefix and ipv6_prefix.",
			"min_hosts":      "The traffic must reach at least this many distinct hosts of the prefix (estimated) ...",
			"max_host_share": "... and no single host may carry more than this share of it: a flood of one host is icmp_flood's.",
			"max_prefixes":   "Cap on prefixes with an exact window (about 1.4 KiB each). Prefixes get one only once an admission filter estimates their rate at 1/8 of the start level; least recently seen are evicted and counted.",
		},
		DefaultCarpetConfig,
		func(c CarpetConfig) (detector.Rule, error) { return NewCarpet(c), nil })
}

// CarpetConfig configures icmp_carpet_flood.
type CarpetConfig struct {
	Enabled      bool          `mapstructure:"enabled"`
	Window       time.Duration `mapstructure:"window"`
	EchoPPS      float64       `mapstructure:"echo_pps"`
	AnyPPS       float64       `mapstructure:"any_pps"`
	StopRatio    float64       `mapstructure:"stop_ratio"`
	IPv4Prefix   int           `mapstructure:"ipv4_prefix"`
	IPv6Prefix   int           `mapstructure:"ipv6_prefix"`
	HomeNetworks []string      `mapstructure:"home_networks"`
	MinHosts     int           `mapstructure:"min_hosts"`
	MaxHostShare float64       `mapstructure:"max_host_share"`
	MaxPrefixes  int           `mapstructure:"max_prefixes"`
}

// DefaultCarpetConfig returns icmp_carpet_flood's defaults: 5,000 echo
// requests or 10,000 ICMP messages a second to one /24 or /64, over at
// least 16 hosts with none carrying more than half.
func DefaultCarpetConfig() CarpetConfig {
	return CarpetConfig{
		Enabled:      true,
		Window:       time.Second,
		EchoPPS:      5000,
		AnyPPS:       10000,
		StopRatio:    0.5,
		IPv4Prefix:   24,
		IPv6Prefix:   64,
		MinHosts:     16,
		MaxHostShare: 0.5,
		MaxPrefixes:  16384,
	}
}

// Validate checks the settings; errors name the configuration key.
func (c CarpetConfig) Validate() error {
	k := newCheck(carpetInfo.Name)
	k.duration("window", c.Window, 10*time.Millisecond, time.Minute)
	k.positive("echo_pps", c.EchoPPS)
	k.positive("any_pps", c.AnyPPS)
	k.ratio("stop_ratio", c.StopRatio)
	k.count("ipv4_prefix", c.IPv4Prefix, 8, 31)
	k.count("ipv6_prefix", c.IPv6Prefix, 16, 127)
	k.prefixes("home_networks", c.HomeNetworks)
	k.count("min_hosts", c.MinHosts, 2, carpetMaxHosts)
	k.ratio("max_host_share", c.MaxHostShare)
	k.count("max_prefixes", c.MaxPrefixes, 1, 1<<22)
	return k.err()
}

// carpetBits is the size of a prefix's distinct-host bitmap (linear
// counting) for one window: 512 bits count up to a few thousand hosts
// within about 10 %; carpetMaxHosts bounds min_hosts to what it counts.
const (
	carpetBits     = 512
	carpetMaxHosts = 1000
)

type hostBitmap [carpetBits / 64]uint64

// set counts the bits set in h.
func (h *hostBitmap) set() int {
	n := 0
	for _, w := range h {
		n += bits.OnesCount64(w)
	}
	return n
}

// estimateHosts is the linear-counting estimate of distinct hosts in a
// bitmap with set bits set.
func estimateHosts(set int) float64 {
	if set >= carpetBits {
		return carpetBits * math.Log(carpetBits) // saturated: at least this many
	}
	return -carpetBits * math.Log(float64(carpetBits-set)/carpetBits)
}

// carpetPrefix is the state of one prefix with an exact window.
type carpetPrefix struct {
	echo, any window.Counter
	// hosts[epoch&1] is the bitmap of the window-long epoch; the previous
	// epoch's stays so that a count always spans at least one window.
	hosts [2]hostBitmap
	epoch int64
	// unionSet is the number of bits set in hosts[0]|hosts[1], kept as
	// bits are set (and counted afresh at an epoch's start), so that
	// judging a packet counts no bits; peakSet the most that judge found
	// (peak is their estimate, which grows with them: worked out only
	// when they do).
	unionSet, peakSet int
	top               sketch.TopK[netip.Addr] // packets per host since the prefix was admitted
	topMax            uint64                  // top's MaxCount, kept as top changes (judge reads it every packet)
	total             uint64
	trigger           uint8
	peak              float64 // the most distinct hosts seen while over the stop level
	// sole is the one host every packet went to while multi is false: a
	// flood of one host costs the carpet rule nothing more.
	sole  netip.Addr
	multi bool
	// srcs and hostRegs count distinct sources and hosts since the last
	// fleet report (fleet on): mergeable over sensors, unlike hosts.
	srcs, hostRegs sketch.MiniHLL
}

// Carpet is the icmp_carpet_flood rule. It aggregates ICMP traffic by
// destination prefix (home_networks, or /24 and /64) over a sliding window,
// as icmp_flood does per host, and reports a prefix whose echo or any-ICMP
// rate reaches its start level while the traffic is spread: at least
// MinHosts distinct hosts (a linear-counting bitmap per window), none
// carrying more than MaxHostShare of the prefix's packets (a space-saving
// summary of its hosts). A flood of one host leaves the share at 1 and
// stays icmp_flood's alone; a carpet with one host flooded harder in it
// raises both, each once. Prefixes get exact state only past an
// admission filter (icmp_flood's, keyed by the prefix), so the many
// prefixes of ordinary traffic and of a spoofed-destination flood cost a
// cell of a fixed array; the prefix table is capped and counts evictions.
type Carpet struct {
	cfg      CarpetConfig
	width    int64
	windowNs int64
	secs     float64
	home     []netip.Prefix
	prefixes *table.Table[netip.Addr, carpetPrefix]
	admit    admitter
	sweep    sweepClock
	// minBits is the number of set bits of a host bitmap whose estimate
	// reaches MinHosts: the per-packet test compares a popcount with it
	// instead of taking a logarithm.
	minBits int
	m       detector.Measure // judge's, reused
	fleet   carpetFleet      // JudgeFleet's scratch (carpet_fleet.go)
	fleetOn bool             // a fleet takes the reports: count sources and hosts (carpet_fleet.go)
}

// NewCarpet returns the icmp_carpet_flood rule.
func NewCarpet(cfg CarpetConfig) *Carpet {
	return &Carpet{
		cfg:      cfg,
		width:    int64(cfg.Window) / window.Buckets,
		windowNs: int64(cfg.Window),
		secs:     cfg.Window.Seconds(),
		home:     parsePrefixes(cfg.HomeNetworks),
		prefixes: table.New[netip.Addr, carpetPrefix](cfg.MaxPrefixes, nil),
		admit: newAdmitter(FloodConfig{Window: cfg.Window, EchoPPS: cfg.EchoPPS, AnyPPS: cfg.AnyPPS,
			EchoBPS: math.Inf(1), AnyBPS: math.Inf(1), StopRatio: cfg.StopRatio},
			admitBitsFor(cfg.MaxPrefixes, DefaultCarpetConfig().MaxPrefixes)),
		minBits: int(math.Ceil(carpetBits * (1 - math.Exp(-float64(cfg.MinHosts)/carpetBits)))),
	}
}

// Info implements detector.Rule.
func (r *Carpet) Info() detector.RuleInfo { return carpetInfo }

// prefixOf returns the network address of the prefix dst is counted in,
// and the prefix length; ok is false for a destination not watched.
func (r *Carpet) prefixOf(dst netip.Addr) (netip.Addr, int, bool) {
	if len(r.home) > 0 {
		for _, h := range r.home {
			if h.Contains(dst) {
				return h.Addr(), h.Bits(), true
			}
		}
		return netip.Addr{}, 0, false
	}
	if dst.Is4() {
		a := dst.As4()
		v := binary.BigEndian.Uint32(a[:])
		if v>>28 == 0xe { // multicast (224/4)
			return netip.Addr{}, 0, false
		}
		n := r.cfg.IPv4Prefix
		binary.BigEndian.PutUint32(a[:], v&(^uint32(0)<<(32-n)))
		return netip.AddrFrom4(a), n, true
	}
	if dst.IsMulticast() {
		return netip.Addr{}, 0, false
	}
	n := r.cfg.IPv6Prefix
	a := dst.As16()
	if n%8 != 0 {
		a[n/8] &= ^byte(0) << (8 - n%8)
	}
	clear(a[(n+7)/8:])
	return netip.AddrFrom16(a), n, true
}

// FloodScope implements detector.FloodScoper: queries to one prefix at
// the echo start level (the engine's gauge marks them p.Class.Flooded:
// a carpet's senders, each hitting many hosts of the prefix, are not
// scanners).
func (r *Carpet) FloodScope() detector.FloodScope {
	w := r.cfg.Window.Seconds()
	fs := detector.FloodScope{Start: r.cfg.EchoPPS * w, Stop: r.cfg.EchoPPS * r.cfg.StopRatio * w, Window: r.cfg.Window}
	if len(r.home) > 0 {
		fs.Key = r.floodKey
	} else {
		fs.Bits4, fs.Bits6 = r.cfg.IPv4Prefix, r.cfg.IPv6Prefix // prefixOf's networks, worked out inline
	}
	return fs
}

// floodKey is prefixOf's network address (configuration only: safe for
// concurrent use).
func (r *Carpet) floodKey(dst netip.Addr) (netip.Addr, bool) {
	net, _, ok := r.prefixOf(dst)
	return net, ok
}

// Interest implements detector.Interested: every ICMP message.
func (r *Carpet) Interest() detector.Interest {
	return detector.Interest{ICMPv4: detector.AllTypes, ICMPv6: detector.AllTypes}
}

// Observe implements detector.Rule.
func (r *Carpet) Observe(p *detector.Packet, rep detector.Reporter) {
	if !p.HasICMP || p.Class.Owner != "" || p.Class.Solicited {
		return
	}
	net, _, ok := r.prefixOf(p.Dst)
	if !ok {
		return
	}
	now := p.TimeNs
	idx := now / r.width
	echo := p.IsEchoRequest()
	e, ok := r.prefixes.Again(net, now) // a carpet's prefix, without a call
	if !ok {
		e, ok = r.prefixes.Touch(net, now)
	}
	if !ok {
		var seed admitSeed
		if r.admit.level != 0 && !r.admit.observe(sketch.HashAddr(net), idx, p.WireLen, echo, &seed) {
			return
		}
		e, _ = r.prefixes.Get(net, now)
		*e = carpetPrefix{epoch: now / r.windowNs, sole: p.Dst}
		if r.admit.level != 0 {
			seed.fill(&e.any, 0, idx, p.WireLen)
			seed.fill(&e.echo, 1, idx, p.WireLen)
		}
	}
	if !e.multi {
		// Every packet so far went to one host: that is icmp_flood's
		// case, and a carpet needs 16 hosts. Nothing to count until a
		// second host shows up.
		if p.Dst == e.sole {
			return
		}
		e.multi = true
	}
	if echo {
		e.any.AddBoth(&e.echo, idx, p.WireLen)
	} else {
		e.any.AddBucket(idx, p.WireLen)
		e.echo.AdvanceBucket(idx)
	}
	h := p.DstHash()
	if ep := now / r.windowNs; ep != e.epoch {
		if ep != e.epoch+1 {
			e.hosts[(ep+1)&1] = hostBitmap{}
		}
		e.hosts[ep&1] = hostBitmap{}
		e.epoch = ep
		e.unionSet = e.hosts[(ep+1)&1].set()
	}
	e.addHost(h)
	if r.fleetOn {
		e.srcs.AddHash(p.SrcHash())
		e.hostRegs.AddHash(h)
	}
	// The top hosts are sampled, one packet in carpetSample (a flood of
	// one host needs no exact count to show it carries everything).
	if e.total%carpetSample == 0 {
		e.top.AddHash(p.Dst, h, carpetSample)
		e.topMax = e.top.MaxCount()
	}
	e.total++
	if m := r.judge(e); m != nil {
		rep.Hit(net, p, m)
	}
}

// judge measures e as Observe does after counting a packet (and JudgeFleet
// after taking a fleet's slot): the measure to report, or nil when the
// prefix is below its stop level, reaches too few hosts or is not spread.
// The measure is the rule's own, reused.
func (r *Carpet) judge(e *carpetPrefix) *detector.Measure {
	anyPPS, anyBPS := e.any.RatesOver(r.secs)
	echoPPS, echoBPS := e.echo.RatesOver(r.secs)
	anyLevel := rateLevel(anyPPS, r.cfg.AnyPPS, r.cfg.StopRatio)
	echoLevel := rateLevel(echoPPS, r.cfg.EchoPPS, r.cfg.StopRatio)
	if anyLevel == detector.LevelQuiet && echoLevel == detector.LevelQuiet {
		return nil
	}
	set := e.unionSet
	if set < r.minBits || !r.spread(e) {
		return nil
	}
	if set > e.peakSet {
		e.peakSet = set
		if hosts := estimateHosts(set); hosts > e.peak {
			e.peak = hosts
		}
	}
	m := &r.m // every field set: no clearing first
	m.Window = r.cfg.Window
	if echoLevel >= anyLevel {
		e.trigger = triggerEcho
		m.Level, m.PPS, m.BPS, m.Threshold = echoLevel, echoPPS, echoBPS, r.cfg.EchoPPS
		m.WindowPackets, m.WindowBytes = e.echo.Packets(), e.echo.Bytes()
	} else {
		e.trigger = triggerAny
		m.Level, m.PPS, m.BPS, m.Threshold = anyLevel, anyPPS, anyBPS, r.cfg.AnyPPS
		m.WindowPackets, m.WindowBytes = e.any.Packets(), e.any.Bytes()
	}
	return m
}

// addHost sets the bit of the host whose hash is x in the epoch's bitmap.
func (e *carpetPrefix) addHost(x uint64) {
	w, bit := x%carpetBits/64, uint64(1)<<(x%64)
	if (e.hosts[0][w]|e.hosts[1][w])&bit == 0 {
		e.unionSet++
	}
	e.hosts[e.epoch&1][w] |= bit
}

// union is the bitmap of the hosts of e over the last one to two windows.
func (e *carpetPrefix) union() hostBitmap {
	var u hostBitmap
	for i := range u {
		u[i] = e.hosts[0][i] | e.hosts[1][i]
	}
	return u
}

// spread tells whether no single host carries most of e's traffic.
func (r *Carpet) spread(e *carpetPrefix) bool {
	// Through int64: the same value below 2^63, without uint64's branch.
	return float64(int64(e.topMax)) <= r.cfg.MaxHostShare*float64(int64(e.total))
}

// carpetIdle is how long a prefix's state outlives its last packet, so
// that an attack's end event (after the engine's hold time) still finds
// its hosts and top targets.
const carpetIdle = time.Minute

// Tick implements detector.Rule: prefixes idle for carpetIdle leave the
// table.
func (r *Carpet) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, 10*time.Second) {
		r.prefixes.DropIdle(now.Add(-carpetIdle).UnixNano())
	}
}

// Describe implements detector.Describer: the prefix as CIDR, the distinct
// hosts hit (estimate), the top targets and which rate triggered.
func (r *Carpet) Describe(target netip.Addr, extra map[string]any) {
	hold := math.Inf(1) // the addresses the prefix holds
	if _, bits, ok := r.prefixOf(target); ok {
		extra["prefix"] = netip.PrefixFrom(target, bits).String()
		if free := target.BitLen() - bits; free < 63 {
			hold = float64(uint64(1) << free)
		}
	}
	e, ok := r.prefixes.Lookup(target)
	if !ok {
		return
	}
	// The bitmap's estimate can exceed what a small prefix holds (262
	// for a /24): no more hosts than the prefix's addresses.
	extra["hosts"] = uint64(math.Round(min(e.peak, hold)))
	// A carpet spreads its packets evenly: the summary's counts are then
	// upper bounds (space-saving), said so by top_targets_estimated.
	var tops []any
	for _, t := range e.top.Top(topTargets, 0) {
		tops = append(tops, map[string]any{"ip": t.Key.String(), "packets": t.Count})
	}
	if len(tops) > 0 {
		extra["top_targets"] = tops
		if !e.top.Exact() {
			extra["top_targets_estimated"] = true
		}
	}
	switch e.trigger {
	case triggerEcho:
		extra["trigger"] = "echo_request_rate"
	case triggerAny:
		extra["trigger"] = "any_icmp_rate"
	}
	echoPPS, _ := e.echo.RatesOver(r.secs)
	anyPPS, _ := e.any.RatesOver(r.secs)
	extra["echo_pps"] = echoPPS
	extra["any_icmp_pps"] = anyPPS
}

// carpetSample is the sampling rate of a prefix's top hosts.
const carpetSample = 4

// topTargets is how many top targets an alert lists.
const topTargets = 5

// Tables implements detector.TableReporter.
func (r *Carpet) Tables() []detector.TableStat {
	return []detector.TableStat{{Name: "icmp_carpet_flood.prefixes", Len: r.prefixes.Len(), Cap: r.prefixes.Cap(), Evicted: r.prefixes.Evicted()}}
}
