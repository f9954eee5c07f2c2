package rules

import (
	"net"
	"net/netip"
	"sort"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/table"
)

var rogueRAInfo = detector.RuleInfo{
	Name:        "rogue_ra",
	SignatureID: 9000014,
	Rev:         1,
	Signature:   "ICMPv6 rogue Router Advertisement",
	Category:    "Attempted Administrator Privilege Gain",
	Severity:    1,
}

// rogueRADefinition registers rogue_ra.
func rogueRADefinition() Definition {
	return define(rogueRAInfo,
		"rogue_ra: a Router Advertisement from a router that is not one of the link's routers: an unknown router announcing a default route or a prefix, an RA claiming a known router's address from another link-layer address (kill_router6 sends router lifetime 0 in the real router's name), an RA whose source link-layer address option names another MAC than the frame's Ethernet source, or an RA with a hop limit other than 255.",
		map[string]string{
			"routers":     "The link's routers: link-local addresses and/or link-layer addresses (e.g. [fe80::1, 00:11:22:33:44:55]). Empty: learned.",
			"learning":    "When routers is empty, the routers seen advertising during this much packet time from the first RA are the link's routers (their list is in every alert's known_routers); routers seen only in an RA flood are not.",
			"max_routers": "Cap on the routers remembered (configured, learned and rogue); least recently seen are evicted and counted.",
		},
		DefaultRogueRAConfig,
		func(c RogueRAConfig) (detector.Rule, error) { return NewRogueRA(c), nil })
}

// RogueRAConfig configures rogue_ra.
type RogueRAConfig struct {
	Enabled    bool          `mapstructure:"enabled"`
	Routers    []string      `mapstructure:"routers"`
	Learning   time.Duration `mapstructure:"learning"`
	MaxRouters int           `mapstructure:"max_routers"`
}

// DefaultRogueRAConfig returns rogue_ra's defaults: routers learned over
// the first minute of packet time.
func DefaultRogueRAConfig() RogueRAConfig {
	return RogueRAConfig{Enabled: true, Learning: time.Minute, MaxRouters: 1024}
}

// Validate checks the settings; errors name the configuration key.
func (c RogueRAConfig) Validate() error {
	k := newCheck(rogueRAInfo.Name)
	for i, s := range c.Routers {
		if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
			continue
		}
		if hw, err := net.ParseMAC(s); err == nil && len(hw) == 6 {
			continue
		}
		k.fail("routers["+itoa(i)+"]", "%q is neither an IPv6 address nor an Ethernet address", s)
	}
	k.duration("learning", c.Learning, 0, 24*time.Hour)
	k.count("max_routers", c.MaxRouters, 1, 1<<20)
	return k.err()
}

const (
	rogueUnknown = iota
	rogueSpoofed
	rogueHopLimit
	rogueSLLAMismatch
	rogueFragmented
	numRogueReasons
)

var rogueReasonNames = [numRogueReasons]string{"unknown_router", "spoofed_router", "hop_limit", "slla_mismatch", "fragmented"}

// raRouter is what rogue_ra knows of one advertising address.
type raRouter struct {
	mac   [6]byte
	known bool // one of the link's routers
	last  int64
}

// rogueTarget is the context of an attack on one destination.
type rogueTarget struct {
	reasons  [numRogueReasons]uint64
	router   netip.Addr
	mac      [6]byte
	lifetime uint16
	pref     uint8
	prefixes []netip.Prefix // the last rogue RA's (at most 4), for the alert
	last     int64
}

// RogueRA is the rogue_ra rule. The link's routers are configured (by
// address and/or link-layer address) or learned: every router advertising
// during the learning period, except in RAs that another rule owns (an
// ra_flood's forged routers). After it, an RA from any other router that
// announces a default route or a prefix is rogue; at any time, an RA
// claiming a known router's address from another link-layer address, or
// whose link-local address is a modified EUI-64 of another MAC than the
// one it is sent from, is spoofed, and an RA with a hop limit other than
// 255 is rogue. A router is the frame's Ethernet source, never what its
// source link-layer option says: an option naming another MAC than the
// frame's source is itself a reason (slla_mismatch). Tables of routers
// and targets are capped.
type RogueRA struct {
	cfg      RogueRAConfig
	addrs    map[netip.Addr]bool
	macs     map[[6]byte]bool
	routers  *table.Table[netip.Addr, raRouter]
	targets  *table.Table[netip.Addr, rogueTarget]
	first    int64 // packet time of the first packet seen (the learning period's start)
	started  bool
	sweepClk sweepClock
}

// NewRogueRA returns the rogue_ra rule.
func NewRogueRA(cfg RogueRAConfig) *RogueRA {
	r := &RogueRA{
		cfg:     cfg,
		addrs:   map[netip.Addr]bool{},
		macs:    map[[6]byte]bool{},
		routers: table.New[netip.Addr, raRouter](cfg.MaxRouters, nil),
		targets: table.New[netip.Addr, rogueTarget](cfg.MaxRouters, nil),
	}
	for _, s := range cfg.Routers {
		if a, err := netip.ParseAddr(s); err == nil {
			r.addrs[a] = true
		} else if hw, err := net.ParseMAC(s); err == nil && len(hw) == 6 {
			r.macs[[6]byte(hw)] = true
		}
	}
	return r
}

// Info implements detector.Rule.
func (r *RogueRA) Info() detector.RuleInfo { return rogueRAInfo }

// configured tells whether routers are configured (no learning).
func (r *RogueRA) configured() bool { return len(r.addrs)+len(r.macs) > 0 }

// Observe implements detector.Rule.
func (r *RogueRA) Observe(p *detector.Packet, rep detector.Reporter) {
	if !r.started {
		r.first, r.started = p.TimeNs, true
	}
	if !isND(p, icmpmsg.V6RouterAdvert, 16) {
		return
	}
	ra, _ := icmpmsg.ParseRouterAdvert(p.ICMPData)
	mac, fromOpt, haveMAC := ndLinkAddr(p)
	var reasons uint32
	if p.TTL != 255 {
		reasons |= 1 << rogueHopLimit
	}
	// The option is what the sender wrote; the frame's source is what the
	// switch delivered. A router writes its own MAC in both: an option
	// naming another MAC is someone borrowing that MAC's good name
	// (kill_router6 with the real router's MAC in its option). The
	// router is then judged by the frame's source, never by the option.
	if fromOpt && p.HasSrcMAC && mac != p.SrcMAC {
		reasons |= 1 << rogueSLLAMismatch
	}
	if p.HasSrcMAC {
		mac = p.SrcMAC
	}
	if p.Reassembled { // RFC 6980: ND is never fragmented; RA-Guard evasion (RFC 7113)
		reasons |= 1 << rogueFragmented
	}
	// A modified EUI-64 address names its MAC: an RA sent in its name
	// from another MAC is forged.
	if want, ok := eui64MAC(p.Src); ok && haveMAC && mac != want {
		reasons |= 1 << rogueSpoofed
	}
	// The options as the packet's one bounded walk read them: an RA padded
	// past its bound (no router sends one) may hide prefixes there, so it
	// counts as announcing.
	nd := p.NDOptions()
	announces := ra.Lifetime > 0 || nd.Prefixes > 0 || nd.RouteInfo || nd.Truncated
	var pfx [4]netip.Prefix
	npfx := 0
	for i := 0; i < int(nd.NPrefix) && npfx < len(pfx); i++ {
		if x, ok := nd.Prefix(p.ICMPData, i); ok {
			pfx[npfx] = x
			npfx++
		}
	}
	// RAs of a flood (ra_flood's, by the classification step) teach
	// nothing, even while learning: forged routers are not the link's.
	learning := !r.configured() && p.TimeNs-r.first < int64(r.cfg.Learning) && p.Class.Owner == ""
	rt, created := r.routers.Get(p.Src, p.TimeNs)
	if created {
		rt.mac = mac
		if want, ok := eui64MAC(p.Src); ok {
			rt.mac = want // the MAC its EUI-64 address names, not a forger's
		}
		rt.known = learning || r.addrs[p.Src] || haveMAC && r.macs[mac]
	}
	switch {
	case haveMAC && rt.mac != mac:
		if rt.known {
			reasons |= 1 << rogueSpoofed // a known router's address from another link-layer address
		}
	case !rt.known && announces:
		reasons |= 1 << rogueUnknown
	default:
		rt.last = p.TimeNs
	}
	if r.configured() && len(r.macs) > 0 && haveMAC && !r.macs[mac] && r.addrs[p.Src] {
		reasons |= 1 << rogueSpoofed // a configured router's address from an unlisted MAC
	}
	if reasons == 0 {
		return
	}
	t, _ := r.targets.Get(p.Dst, p.TimeNs)
	t.last = p.TimeNs
	for i := 0; i < numRogueReasons; i++ {
		if reasons&(1<<i) != 0 {
			t.reasons[i]++
		}
	}
	t.router, t.mac, t.lifetime, t.pref = p.Src, mac, ra.Lifetime, ra.Preference
	t.prefixes = append(t.prefixes[:0], pfx[:npfx]...)
	rep.Hit(p.Dst, p, &detector.Measure{Level: detector.LevelFire})
}

// Interest implements detector.Interested: Router Advertisements.
func (r *RogueRA) Interest() detector.Interest {
	return detector.Interest{ICMPv6: detector.Types(icmpmsg.V6RouterAdvert)}
}

// Tick implements detector.Rule: targets idle for 2 minutes go; routers
// stay while seen within a day.
func (r *RogueRA) Tick(now time.Time, _ detector.Reporter) {
	if !r.sweepClk.due(now, 10*time.Second) {
		return
	}
	before := now.Add(-2 * time.Minute).UnixNano()
	r.targets.Sweep(func(_ netip.Addr, t *rogueTarget, _ int64) bool { return t.last < before })
	old := now.Add(-24 * time.Hour).UnixNano()
	r.routers.Sweep(func(_ netip.Addr, rt *raRouter, touched int64) bool { return touched < old })
}

// Describe implements detector.Describer: the router, its link-layer
// address, router lifetime, preference, prefixes, the reasons, and the
// link's known routers.
func (r *RogueRA) Describe(target netip.Addr, extra map[string]any) {
	t, ok := r.targets.Lookup(target)
	if !ok {
		return
	}
	reasons := map[string]any{}
	for i, n := range t.reasons {
		if n > 0 {
			reasons[rogueReasonNames[i]] = n
		}
	}
	extra["reasons"] = reasons
	extra["router"] = t.router
	extra["router_mac"] = macString(t.mac)
	extra["router_lifetime"] = t.lifetime
	extra["preference"] = [4]string{"medium", "high", "reserved", "low"}[t.pref&3]
	var ps []string
	for _, p := range t.prefixes {
		ps = append(ps, p.String())
	}
	if len(ps) > 0 {
		extra["prefixes"] = ps
	}
	var known []string
	r.routers.Range(func(a netip.Addr, rt *raRouter) bool {
		if rt.known && len(known) < 8 {
			known = append(known, a.String()+" "+macString(rt.mac))
		}
		return true
	})
	sort.Strings(known)
	if len(known) > 0 {
		extra["known_routers"] = known
	}
}

// Tables implements detector.TableReporter.
func (r *RogueRA) Tables() []detector.TableStat {
	return []detector.TableStat{
		{Name: "rogue_ra.routers", Len: r.routers.Len(), Cap: r.routers.Cap(), Evicted: r.routers.Evicted()},
		{Name: "rogue_ra.targets", Len: r.targets.Len(), Cap: r.targets.Cap(), Evicted: r.targets.Evicted()},
	}
}
