package rules

import (
	"math/bits"
	"net"
	"net/netip"
	"sort"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/sketch"
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
		"rogue_ra: a Router Advertisement from a router that is not one of the link's routers: an unknown router announcing a default route or a prefix, an RA claiming a known router's address from another link-layer address (kill_router6 sends router lifetime 0 in the real router's name), an RA whose source link-layer address option names another MAC than the frame's Ethernet source, an RA in a known router's name padded past the options the sensor reads (32) with no source link-layer address option among them, or an RA with a hop limit other than 255.",
		map[string]string{
			"routers":     "The link's routers: link-local addresses and/or link-layer addresses (e.g. [fe80::1, 00:11:22:33:44:55]). Empty: learned.",
			"learning":    "When routers is empty, the routers seen advertising during this much packet time from the first RA are the link's routers (their list is in every alert's known_routers), except those that announce a prefix none of the known routers announces or a higher preference (reported: new_prefix, preference), routers seen only in an RA flood, and RAs padded past the 32 options read with no source link-layer option among them.",
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
	rogueNewPrefix
	roguePreference
	roguePadded
	numRogueReasons
)

var rogueReasonNames = [numRogueReasons]string{"unknown_router", "spoofed_router", "hop_limit", "slla_mismatch", "fragmented", "new_prefix", "preference", "padded_options"}

// raPrefixes is how many prefixes rogue_ra remembers per router.
const raPrefixes = 8

// maxTrusted caps the link's routers (configured ones heard, and learned):
// they live outside the routers table, so no flood of forged routers can
// evict them.
const maxTrusted = 32

// raRouter is what rogue_ra knows of one advertising address.
type raRouter struct {
	addr    netip.Addr // (trusted routers, which are kept in an array)
	mac     [6]byte
	bound   bool // mac is the router's: its EUI-64 address names it, or an RA announcing something came from it
	eui     bool // mac is the one its modified EUI-64 address names
	def     bool // it announced a default route (router lifetime > 0)
	routes  bool // it announced routes (route-information options)
	rank    uint8
	npfx    uint8
	pfx     [raPrefixes]raPrefix // masked
	learned bool                 // trusted by learning (configured routers are trusted by the configuration)
	last    int64
}

// reset makes rt a router first heard now at addr from mac: every field
// as a new raRouter's but the prefixes past npfx (0), which nothing reads
// (an RA flood's forged routers are judged in the one scratch record: a
// cleared 256-byte array per RA was a tenth of the rule's cost).
func (rt *raRouter) reset(addr netip.Addr, mac [6]byte) {
	// Every field of raRouter but pfx: keep in step with it.
	rt.addr, rt.mac = addr, mac
	rt.bound, rt.eui, rt.def, rt.routes, rt.learned = false, false, false, false, false
	rt.rank, rt.npfx, rt.last = 0, 0, 0
}

// prefRank orders RFC 4191 preferences: low 0, medium (and reserved) 1,
// high 2.
func prefRank(pref uint8) uint8 { return [4]uint8{1, 2, 1, 0}[pref&3] }

// has tells whether rt announced x.
func (rt *raRouter) has(x raPrefix) bool {
	for _, y := range rt.pfx[:rt.npfx] {
		if y == x {
			return true
		}
	}
	return false
}

// heard records what an RA of rt announced but its prefixes (see
// keep).
func (rt *raRouter) heard(ra icmpmsg.RouterAdvert, routes bool) {
	if ra.Lifetime > 0 {
		rt.def, rt.rank = true, prefRank(ra.Preference)
	}
	rt.routes = rt.routes || routes
}

// keep records the prefixes (masked) of an RA of rt, as the packet's one
// option walk found them (nd, of msg), while rt has room for them; each
// it keeps that set did not hold is added to set (when not nil: the
// link's prefixes, rt being trusted).
func (rt *raRouter) keep(nd *icmpmsg.ND, msg []byte, set *pfxSet) {
	// Room first: once raPrefixes are kept, the rest of an RA's (up to
	// MaxNDPrefixes) cost no read and no scan each.
	for i := 0; i < int(nd.NPrefix) && int(rt.npfx) < raPrefixes; i++ {
		hi, lo, n, ok := nd.PrefixWords(msg, i)
		if !ok {
			continue
		}
		if x := (raPrefix{hi, lo, n}).masked(); !rt.has(x) {
			rt.pfx[rt.npfx] = x
			rt.npfx++
			if set != nil {
				set.add(x)
			}
		}
	}
}

// pfxSet is the link's prefixes: every prefix (masked) its trusted
// routers announced (maxTrusted × raPrefixes at most), an open-addressing
// set in twice as many slots, so that an RA's prefix is weighed against
// the link's by one probe or a few, however many routers and prefixes
// the link has. Its hash needs no key: only trusted routers' prefixes
// are inserted, and an attacker aiming its prefixes at a cluster of them
// buys a few more probes at most.
type pfxSet struct {
	slot [pfxSlots]raPrefix
	full [pfxSlots / 64]uint64 // which slots hold a prefix
}

// pfxSlots is the link prefix set's size: twice the most it holds.
const pfxSlots = 2 * maxTrusted * raPrefixes

// pfxSlot is x's home slot in a pfxSet.
func pfxSlot(x raPrefix) uint {
	return uint((x.hi^bits.RotateLeft64(x.lo, 32)^uint64(x.bits))*0x9e3779b97f4a7c15>>32) % pfxSlots
}

// has tells whether the set holds x.
func (s *pfxSet) has(x raPrefix) bool {
	for i := pfxSlot(x); ; i = (i + 1) % pfxSlots {
		if s.full[i/64]&(1<<(i%64)) == 0 {
			return false
		}
		if s.slot[i] == x {
			return true
		}
	}
}

// add puts x in the set (a set never holds more than half its slots: see
// pfxSlots).
func (s *pfxSet) add(x raPrefix) {
	for i := pfxSlot(x); ; i = (i + 1) % pfxSlots {
		if s.full[i/64]&(1<<(i%64)) == 0 {
			s.full[i/64] |= 1 << (i % 64)
			s.slot[i] = x
			return
		}
		if s.slot[i] == x {
			return
		}
	}
}

// rogueTarget is the context of an attack on one destination.
type rogueTarget struct {
	reasons  [numRogueReasons]uint64
	router   netip.Addr
	mac      [6]byte
	lifetime uint16
	pref     uint8
	prefixes [4]raPrefix // the last rogue RA's first nprefix prefixes (as sent), for the alert
	nprefix  uint8
	last     int64
}

// RogueRA is the rogue_ra rule. The link's routers are configured (by
// address and/or link-layer address) or learned: every router advertising
// during the learning period that announces nothing new against the
// routers already known (see judge), except in RAs that another rule owns
// (an ra_flood's forged routers). After it, an RA from any other router
// that announces a default route or a prefix is rogue; at any time, an RA
// from a router not of the link announcing a prefix none of the link's
// routers announces or a higher preference is rogue, and an RA
// claiming a known router's address from another link-layer address, or
// whose link-local address is a modified EUI-64 of another MAC than the
// one it is sent from, is spoofed, and an RA with a hop limit other than
// 255 is rogue. A router is the frame's Ethernet source, never what its
// source link-layer option says: an option naming another MAC than the
// frame's source is itself a reason (slla_mismatch). An RA in one of the
// link's routers' names padded past the option walk's bound with no
// source link-layer option within it is padded_options: hosts read every
// option and use the first such option, which the sensor did not read.
// Tables of routers and targets are capped.
type RogueRA struct {
	cfg      RogueRAConfig
	addrs    map[netip.Addr]bool
	macs     map[[6]byte]bool
	routers  *table.Table[netip.Addr, raRouter] // routers not (or no longer) trusted
	trusted  [maxTrusted]raRouter               // the link's routers: configured ones heard, and learned
	ntrusted int
	refused  uint64             // routers not learned because the trusted array was full
	door     *sketch.Doorkeeper // admits an untrusted router to a full routers table at its second RA
	known    presence           // the addresses routers may hold (sketch.HashAddr): a forged router's is proved absent without a lookup
	scratch  raRouter           // a router judged without an entry (not admitted)
	link     pfxSet             // the trusted routers' prefixes
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
		door:    sketch.NewDoorkeeper(14),
		known:   newPresence(presenceBits(cfg.MaxRouters)),
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
	nd := p.NDOptions() // the packet's one bounded option walk
	mac, fromOpt, haveMAC := ndLinkAddr(p, nd)
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
	eui, isEUI := eui64MAC(p.Src)
	if isEUI && haveMAC && mac != eui {
		reasons |= 1 << rogueSpoofed
	}
	// An RA padded past the walk's bound (no router sends one) may hide
	// prefixes there, so it counts as announcing. The prefixes this RA
	// announces (the walk keeps MaxNDPrefixes; an
	// RA padded past the walk's bound may hide more) are read where they
	// are weighed, and only there: a router heard once, not admitted to
	// the table, keeps none (see judge).
	announces := ra.Lifetime > 0 || nd.Prefixes > 0 || nd.RouteInfo || nd.Truncated
	// RAs of a flood (ra_flood's, by the classification step) teach
	// nothing, even while learning: forged routers are not the link's.
	flood := p.Class.Owner != ""
	learning := !r.configured() && p.TimeNs-r.first < int64(r.cfg.Learning) && !flood
	reasons |= r.judge(p, ra, mac, haveMAC, announces, nd, learning, flood, eui, isEUI)
	if len(r.macs) > 0 && len(r.addrs) > 0 && haveMAC && !r.macs[mac] && r.addrs[p.Src] {
		reasons |= 1 << rogueSpoofed // a configured router's address from an unlisted MAC
	}
	if reasons == 0 {
		return
	}
	t, ok := r.targets.Again(p.Dst, p.TimeNs) // (a flood's one destination: no call)
	if !ok {
		t, _ = r.targets.Get(p.Dst, p.TimeNs)
	}
	t.last = p.TimeNs
	for m := reasons; m != 0; m &= m - 1 {
		t.reasons[bits.TrailingZeros32(m)]++
	}
	t.router, t.mac, t.lifetime, t.pref = p.Src, mac, ra.Lifetime, ra.Preference
	// The first four prefixes as sent, for the alert.
	k := 0
	for i := range int(min(nd.NPrefix, uint8(len(t.prefixes)))) {
		if hi, lo, n, ok := nd.PrefixWords(p.ICMPData, i); ok {
			t.prefixes[k%len(t.prefixes)] = raPrefix{hi, lo, n}
			k++
		}
	}
	t.nprefix = uint8(k)
	rep.Hit(p.Dst, p, &detector.Measure{Level: detector.LevelFire})
}

// judge weighs an RA from p.Src sent from mac against what rogue_ra knows
// of the link's routers, learns from it, and returns its reasons.
//
// Learning is not trust. The first router heard is the link's; a router
// that appears while others are known is judged against them at every RA:
// a prefix (or routes) none of them announces is new_prefix, a higher
// default-router preference than all of theirs is preference. A router
// with no such reason heard while learning becomes one of the link's; one
// heard after is unknown_router when it announces anything. When two
// routers disagree on prefixes, the learned one claiming high preference
// over a newcomer that does not is the one trying to win (a rogue already
// running when the sensor started): it loses its trust, and the newcomer
// takes its place. A router's address claimed from another MAC is
// spoofed_router, except that an address whose RAs all had router
// lifetime 0 (kill_router6 in its name, heard first) is rebound to the
// first MAC announcing a default router from it.
//
// An RA in one of the link's routers' names (trusted, or configured)
// that was padded past the option walk's bound (hidden) with no source
// link-layer option read within it is padded_options and teaches
// nothing: hosts read every option and use the first such option, so the
// RA may name another link-layer address than the router's.
//
// Such a padded RA never makes a router one of the link's either, not
// even the first heard while learning.
//
// Prefixes the walk read but did not keep (more than MaxNDPrefixes, or
// malformed ones) count as new: hosts may use them.
//
// A router's prefixes are weighed against the link's (r.link, one probe
// each) until the first the link does not announce. What an RA taught
// is kept only of a router with an entry: one not admitted (a forged
// router heard once, see below) keeps no prefix, unless it may demote a
// learned router (demotable), which compares prefixes.
//
// nd is the packet's option walk; eui and isEUI are eui64MAC(p.Src).
func (r *RogueRA) judge(p *detector.Packet, ra icmpmsg.RouterAdvert, mac [6]byte, haveMAC, announces bool,
	nd *icmpmsg.ND, learning, flood bool, eui [6]byte, isEUI bool) uint32 {
	now := p.TimeNs
	routes, hidden := nd.RouteInfo, nd.Truncated
	padded := hidden && !nd.HasSrcLinkAddr // the link-layer address hosts use is unread
	if k := r.trustedIndex(p.Src); k >= 0 {
		rt := &r.trusted[k]
		if padded {
			return 1 << roguePadded // teaches nothing
		}
		if haveMAC && rt.mac != mac {
			if !rt.bound || !rt.eui && !rt.def && ra.Lifetime > 0 {
				rt.mac, rt.bound = mac, true // the first MAC to announce a default router from it
			} else {
				return 1 << rogueSpoofed // a known router's address from another link-layer address
			}
		}
		rt.last = now
		if announces {
			rt.bound = true
		}
		rt.heard(ra, routes)
		rt.keep(nd, p.ICMPData, &r.link)
		return 0
	}
	configured := len(r.addrs) > 0 && r.addrs[p.Src] || haveMAC && len(r.macs) > 0 && r.macs[mac]
	var rt *raRouter
	known := false
	if r.known.mayHold(p.SrcHash()) { // (a clear bit: a router never heard, no lookup)
		rt, known = r.routers.Touch(p.Src, now)
	}
	if !known {
		// Admission: once the table is full, an untrusted router gets an
		// entry at its second RA (the doorkeeper), so a flood of forged
		// routers, each sending one, costs a cell write per RA instead of
		// an insertion and an eviction, and evicts none of the routers
		// the table holds. Its first RA is judged all the same, as a
		// router heard for the first time (what a new entry would say);
		// only what it taught is not kept. A router that may become one
		// of the link's (configured, or announcing while learning) always
		// gets its entry.
		if learning && announces || configured || r.routers.Len() < r.routers.Cap() || r.door.Seen(p.SrcHash()) {
			rt = r.router(p.Src, p.SrcHash(), now)
		} else {
			rt = &r.scratch
		}
		rt.reset(p.Src, mac)
		if isEUI {
			rt.mac, rt.eui, rt.bound = eui, true, true // the MAC its EUI-64 address names, not a forger's
		}
	}
	if haveMAC && rt.mac != mac {
		if rt.bound && (rt.eui || rt.def || ra.Lifetime == 0) {
			return 1 << rogueSpoofed
		}
		// Its RAs so far announced no default router from rt.mac (or
		// nothing at all): the first MAC announcing one is its own.
		rt.reset(p.Src, mac)
	}
	if announces && !rt.bound {
		rt.bound = true
	}
	rt.last = now
	rt.heard(ra, routes)
	if rt != &r.scratch || !flood && announces && rt.bound && r.demotable(rt) {
		rt.keep(nd, p.ICMPData, nil)
	}
	if configured {
		r.trust(p.Src, false)
		if padded {
			return 1 << roguePadded
		}
		return 0
	}
	var reasons uint32
	displaced := false
	if !flood && announces && rt.bound && r.demote(*rt, now) {
		// The table moved under rt (the demoted went back into it). A
		// router not admitted gets its entry now: it may take the
		// demoted one's place.
		if rt == &r.scratch {
			n := r.scratch
			rt = r.router(p.Src, p.SrcHash(), now)
			*rt = n
		}
		if rt, displaced = r.routers.Lookup(p.Src); !displaced {
			return 0
		}
	}
	if r.ntrusted > 0 && announces {
		// Prefixes the walk did not keep (past MaxNDPrefixes, or
		// malformed) may be new: an RA padded with the link's own
		// prefixes hides a new one behind them, as one padded past the
		// walk's bound (hidden) does.
		if hidden || nd.Prefixes > nd.NPrefix || routes && !r.anyRoutes() || r.newPrefix(nd, p.ICMPData) {
			reasons |= 1 << rogueNewPrefix
		}
		if top, ok := r.topRank(); ok && ra.Lifetime > 0 && prefRank(ra.Preference) > top {
			reasons |= 1 << roguePreference
		}
	}
	switch {
	case reasons == 0 && announces && rt.bound && (learning || displaced) && !padded:
		r.trust(p.Src, true) // a router of the link, learned (or the one a demoted router had hidden)
	case announces && (!learning || flood):
		reasons |= 1 << rogueUnknown
	}
	return reasons
}

// router returns a's entry in the routers table (h: its sketch.HashAddr),
// made when absent: every entry made is added to r.known.
func (r *RogueRA) router(a netip.Addr, h uint64, now int64) *raRouter {
	r.known.add(h)
	rt, _ := r.routers.Get(a, now)
	return rt
}

// trustedIndex is a's index among the trusted routers, or -1.
func (r *RogueRA) trustedIndex(a netip.Addr) int {
	for i := range r.trusted[:r.ntrusted] {
		if r.trusted[i].addr == a {
			return i
		}
	}
	return -1
}

// trust moves router a from the routers table to the trusted array.
func (r *RogueRA) trust(a netip.Addr, learned bool) {
	rt, ok := r.routers.Lookup(a)
	if !ok {
		return
	}
	if r.ntrusted == maxTrusted {
		r.refused++
		return
	}
	r.trusted[r.ntrusted] = *rt
	r.trusted[r.ntrusted].learned = learned
	for _, x := range rt.pfx[:rt.npfx] {
		r.link.add(x)
	}
	r.ntrusted++
	r.routers.Delete(a)
}

// demote takes away the trust of every learned router that claims high
// preference over newcomer n while the two disagree on prefixes: of two
// routers that disagree, the one claiming to be preferred is the one
// trying to win. It goes back to the routers table, judged like any
// other from its next RA on. demote tells whether it demoted any (the
// routers table changed then).
func (r *RogueRA) demote(n raRouter, now int64) bool {
	if !n.def || n.rank >= 2 {
		return false
	}
	demoted := false
	for i := 0; i < r.ntrusted; {
		a := &r.trusted[i]
		if !a.learned || !a.def || a.rank < 2 || !disagree(a, &n) {
			i++
			continue
		}
		old := *a
		r.ntrusted--
		r.trusted[i] = r.trusted[r.ntrusted]
		r.trusted[r.ntrusted] = raRouter{}
		rt := r.router(old.addr, sketch.HashAddr(old.addr), now)
		*rt = old
		rt.learned = false
		demoted = true
	}
	if demoted {
		r.relink()
	}
	return demoted
}

// disagree tells whether a and b announce different prefixes.
func disagree(a, b *raRouter) bool {
	for _, x := range a.pfx[:a.npfx] {
		if !b.has(x) {
			return true
		}
	}
	for _, x := range b.pfx[:b.npfx] {
		if !a.has(x) {
			return true
		}
	}
	return false
}

// newPrefix tells whether the RA's prefixes (nd, of msg) hold one (masked)
// no trusted router announced; it reads them up to the first such.
func (r *RogueRA) newPrefix(nd *icmpmsg.ND, msg []byte) bool {
	for i := 0; i < int(nd.NPrefix); i++ {
		if hi, lo, n, ok := nd.PrefixWords(msg, i); ok && !r.link.has(raPrefix{hi, lo, n}.masked()) {
			return true
		}
	}
	return false
}

// demotable tells whether demote(n) may demote a router: n announces a
// default route below high preference and a learned router claims high
// preference. Only then are n's prefixes compared.
func (r *RogueRA) demotable(n *raRouter) bool {
	if !n.def || n.rank >= 2 {
		return false
	}
	for i := range r.trusted[:r.ntrusted] {
		if a := &r.trusted[i]; a.learned && a.def && a.rank >= 2 {
			return true
		}
	}
	return false
}

// relink rebuilds the link's prefixes from the trusted routers'.
func (r *RogueRA) relink() {
	r.link.full = [pfxSlots / 64]uint64{}
	for i := range r.trusted[:r.ntrusted] {
		for _, x := range r.trusted[i].pfx[:r.trusted[i].npfx] {
			r.link.add(x)
		}
	}
}

// anyRoutes tells whether a trusted router announced routes.
func (r *RogueRA) anyRoutes() bool {
	for i := range r.trusted[:r.ntrusted] {
		if r.trusted[i].routes {
			return true
		}
	}
	return false
}

// topRank is the highest preference among the trusted default routers.
func (r *RogueRA) topRank() (uint8, bool) {
	top, ok := uint8(0), false
	for i := range r.trusted[:r.ntrusted] {
		if t := &r.trusted[i]; t.def && (!ok || t.rank > top) {
			top, ok = t.rank, true
		}
	}
	return top, ok
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
	if r.known.rebuildDue() { // the bits of routers gone (swept, evicted, trusted) add up
		r.known.reset()
		r.routers.Range(func(a netip.Addr, _ *raRouter) bool {
			r.known.add(sketch.HashAddr(a))
			return true
		})
	}
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
	for _, p := range t.prefixes[:t.nprefix] {
		ps = append(ps, p.prefix().String())
	}
	if len(ps) > 0 {
		extra["prefixes"] = ps
	}
	var known []string
	for i := range r.trusted[:min(r.ntrusted, 8)] {
		known = append(known, r.trusted[i].addr.String()+" "+macString(r.trusted[i].mac))
	}
	sort.Strings(known)
	if len(known) > 0 {
		extra["known_routers"] = known
	}
}

// Tables implements detector.TableReporter.
func (r *RogueRA) Tables() []detector.TableStat {
	return []detector.TableStat{
		{Name: "rogue_ra.routers", Len: r.routers.Len(), Cap: r.routers.Cap(), Evicted: r.routers.Evicted()},
		{Name: "rogue_ra.trusted", Len: r.ntrusted, Cap: maxTrusted, Evicted: r.refused},
		{Name: "rogue_ra.targets", Len: r.targets.Len(), Cap: r.targets.Cap(), Evicted: r.targets.Evicted()},
	}
}
