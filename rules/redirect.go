package rules

import (
	"math/bits"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

var redirectInfo = detector.RuleInfo{
	Name:        "icmp_redirect",
	SignatureID: 9000009,
	Rev:         1,
	Signature:   "ICMP redirect a host must reject, or redirect storm",
	Category:    "Attempted Information Leak",
	Severity:    2,
}

// redirectDefinition registers icmp_redirect.
func redirectDefinition() Definition {
	return define(redirectInfo,
		"icmp_redirect: ICMP (type 5) and ICMPv6 (type 137) redirects a correct host must reject (RFC 1122 3.2.2.2, RFC 4861 8.1) or that a real router would not send: off-link sender, bad new gateway, a sender that is not the router it claims to be, an ICMPv6 hop limit other than 255, or a storm. A lone valid redirect from the real router is no attack.",
		map[string]string{
			"trusted_routers": "The routers allowed to send redirects (IP addresses). When set, a redirect from any other address is spoofed_router.",
			"home_networks":   "Your links (CIDR). When set, an IPv4 redirect whose sender or new gateway is not on the receiver's link is offlink_source or bad_gateway. Empty: only what needs no knowledge of your links is checked.",
			"rate":            "Redirects per second to one receiver that make a storm.",
			"max_routers":     "Cap on each of the two tables of learned router link-layer bindings (from routers' own packets, RAs and NAs; never from redirects): candidates (heard in fewer than 3 separate seconds; least recently heard evicted and counted) and confirmed routers (never evicted while heard within 10 minutes; when full, a newly confirmed binding is refused and counted).",
			"max_hosts":       "Cap on receivers tracked for the storm rate.",
		},
		DefaultRedirectConfig,
		func(c RedirectConfig) (detector.Rule, error) { return NewRedirect(c), nil })
}

// RedirectConfig configures icmp_redirect.
type RedirectConfig struct {
	Enabled        bool          `mapstructure:"enabled"`
	TrustedRouters []string      `mapstructure:"trusted_routers"`
	HomeNetworks   []string      `mapstructure:"home_networks"`
	Rate           float64       `mapstructure:"rate"`
	Window         time.Duration `mapstructure:"window"`
	StopRatio      float64       `mapstructure:"stop_ratio"`
	MaxRouters     int           `mapstructure:"max_routers"`
	MaxHosts       int           `mapstructure:"max_hosts"`
}

// DefaultRedirectConfig returns icmp_redirect's defaults: no trusted
// routers or home networks configured, a storm at 10 redirects a second to
// one receiver over 1 s.
func DefaultRedirectConfig() RedirectConfig {
	return RedirectConfig{Enabled: true, Rate: 10, Window: time.Second, StopRatio: 0.5, MaxRouters: 4096, MaxHosts: 16384}
}

// Validate checks the settings; errors name the configuration key.
func (c RedirectConfig) Validate() error {
	k := newCheck(redirectInfo.Name)
	k.addrs("trusted_routers", c.TrustedRouters)
	k.prefixes("home_networks", c.HomeNetworks)
	k.positive("rate", c.Rate)
	k.duration("window", c.Window, 10*time.Millisecond, time.Minute)
	k.ratio("stop_ratio", c.StopRatio)
	k.count("max_routers", c.MaxRouters, 1, 1<<22)
	k.count("max_hosts", c.MaxHosts, 1, 1<<24)
	return k.err()
}

const (
	redirOfflink = iota
	redirBadGateway
	redirSpoofed
	redirHopLimit
	redirRate
	redirConflict
	numRedirReasons
)

var redirReasonNames = [numRedirReasons]string{"offlink_source", "bad_gateway", "spoofed_router", "hop_limit", "rate", "binding_conflict"}

// claim is one link-layer address heard speaking for a router's IP
// address.
type claim struct {
	mac [6]byte
	// heard counts hearings at least confirmSpacing apart (saturating);
	// named: an RA from this MAC names the address a router.
	heard   uint16
	named   bool
	counted int64 // packet time of the last hearing counted in heard
	last    int64 // packet time of the last hearing (0: no claim)
}

// live tells whether the claim was heard within routerBindingTTL of now.
func (c *claim) live(now int64) bool { return c.last != 0 && now-c.last <= int64(routerBindingTTL) }

// confirmed tells whether the claim was heard over time (confirmHearings
// hearings, confirmSpacing apart) or named by an RA: a burst of spoofed
// packets cannot confirm a claim, and a confirmed claim outweighs one
// that is not.
func (c *claim) confirmed() bool { return c.named || c.heard >= confirmHearings }

// Confirmation: a claim heard in 3 separate seconds (a gateway answering a
// ping a second, or forwarding errors, in 2 s) is confirmed.
const (
	confirmHearings = 3
	confirmSpacing  = int64(time.Second)
)

// binding is what icmp_redirect knows of one router address: the
// link-layer addresses that claim it, at most two — two live claims are
// a conflict (binding_conflict), evidence in itself, not a tie that
// arrival order breaks.
type binding struct {
	claims [2]claim
}

// hear records that mac spoke for the binding's address at now (named:
// in an RA). A MAC it does not hold takes a stale or empty slot, else the
// weaker claim's: an unconfirmed one before a confirmed one, the one heard
// least recently between equals.
func (b *binding) hear(mac [6]byte, named bool, now int64) {
	i := -1
	for j := range b.claims {
		if b.claims[j].last != 0 && b.claims[j].mac == mac {
			i = j
		}
	}
	if i >= 0 && !b.claims[i].live(now) {
		b.claims[i] = claim{} // heard again after going stale: a new claim
	}
	if i < 0 || b.claims[i].last == 0 {
		if i < 0 {
			i = b.weaker(now)
		}
		b.claims[i] = claim{mac: mac, heard: 1, named: named, counted: now, last: now}
		return
	}
	c := &b.claims[i]
	if now-c.counted >= confirmSpacing && c.heard < ^uint16(0) {
		c.heard++
		c.counted = now
	}
	c.last = now
	c.named = c.named || named
}

// weaker returns the slot a new claim takes (see hear).
func (b *binding) weaker(now int64) int {
	rank := func(c *claim) int {
		switch {
		case !c.live(now):
			return 0
		case !c.confirmed():
			return 1
		}
		return 2
	}
	x, y := &b.claims[0], &b.claims[1]
	if rx, ry := rank(x), rank(y); rx != ry {
		if rx < ry {
			return 0
		}
		return 1
	}
	if y.last < x.last {
		return 1
	}
	return 0
}

// confirmed tells whether a live claim of the binding is confirmed.
func (b *binding) confirmed(now int64) bool {
	for i := range b.claims {
		if c := &b.claims[i]; c.live(now) && c.confirmed() {
			return true
		}
	}
	return false
}

// stale tells whether no claim of the binding is live.
func (b *binding) stale(now int64) bool { return !b.claims[0].live(now) && !b.claims[1].live(now) }

// judge returns the reasons a redirect from mac in the binding's name is
// evidence for: none when mac is the one live claim, or the confirmed one
// against an unconfirmed rival; spoofed_router when mac is no live claim,
// or an unconfirmed one against a confirmed rival; binding_conflict
// whenever two live claims stand and mac is not the only confirmed one.
func (b *binding) judge(mac [6]byte, now int64) uint32 {
	var match, other *claim
	for i := range b.claims {
		c := &b.claims[i]
		if !c.live(now) {
			continue
		}
		if c.mac == mac {
			match = c
		} else {
			other = c
		}
	}
	switch {
	case other == nil:
		return 0 // no claim, or mac's alone
	case match == nil:
		if b.claims[0].live(now) && b.claims[1].live(now) {
			return 1<<redirSpoofed | 1<<redirConflict
		}
		return 1 << redirSpoofed
	case match.confirmed() && !other.confirmed():
		return 0
	case !match.confirmed() && other.confirmed():
		return 1<<redirSpoofed | 1<<redirConflict
	}
	return 1 << redirConflict
}

// redirHost is a receiver of redirects.
type redirHost struct {
	rate    window.Counter
	reasons [numRedirReasons]uint64
	router  netip.Addr // the last redirect's sender, gateway and destination
	gateway netip.Addr
	dest    netip.Addr
	last    int64
}

// Redirect is the icmp_redirect rule. It learns which link-layer address
// each router speaks from — the Ethernet source of a router's own ICMP
// packets, its RAs and NAs, never a redirect — weighing the claims (a
// confirmed one outweighs a one-shot one, two live ones are a
// binding_conflict) in two capped tables (candidates, confirmed routers;
// see learn), and judges every redirect by the reasons of the contract. A redirect with a reason, or redirects to one receiver at the
// storm rate, start or feed an attack on that receiver.
type Redirect struct {
	cfg     RedirectConfig
	trusted map[netip.Addr]bool
	home    []netip.Prefix
	// routers holds confirmed bindings; candidates those not confirmed
	// yet (a one-shot spoofed binding stays there). A candidate moves to
	// routers once confirmed, unless routers is full — of live bindings:
	// stale ones are swept — which then refuses it (counted). Only
	// candidates are evicted to make room, so a burst of new one-shot
	// bindings cannot flush a confirmed router.
	routers    *table.Table[netip.Addr, binding]
	candidates *table.Table[netip.Addr, binding]
	// door admits a new binding to a full candidates table at its second
	// packet: errors and replies from spoofed sources, one each, cost a
	// cell write instead of an insertion and an eviction, and evict no
	// candidate (a router heard once yet).
	door *sketch.Doorkeeper
	// held has the bit of every address in routers or candidates set (by
	// its sketch.HashAddr; evicted ones too until the next sweep): a
	// packet whose source's bit is clear has no binding, and costs no
	// table lookup. The two tables share one hash function, so a source
	// is hashed for them once.
	held    []uint64
	refused uint64
	hosts   *table.Table[netip.Addr, redirHost]
	width   int64
	sweep   sweepClock
}

// redirHeldBits sizes Redirect.held: 128 Ki bits, 16 KiB (two full
// tables of the default 4,096 bindings set at most one bit in sixteen).
const redirHeldBits = 17

// mayHold tells whether the address of sketch hash h may have a binding.
func (r *Redirect) mayHold(h uint64) bool {
	i := h >> (64 - redirHeldBits)
	return r.held[i/64]&(1<<(i%64)) != 0
}

// hold sets the bit of the address of sketch hash h.
func (r *Redirect) hold(h uint64) {
	i := h >> (64 - redirHeldBits)
	r.held[i/64] |= 1 << (i % 64)
}

// NewRedirect returns the icmp_redirect rule.
func NewRedirect(cfg RedirectConfig) *Redirect {
	hash := table.RandomHash[netip.Addr]()
	return &Redirect{
		cfg:        cfg,
		trusted:    parseAddrs(cfg.TrustedRouters),
		home:       parsePrefixes(cfg.HomeNetworks),
		routers:    table.New[netip.Addr, binding](cfg.MaxRouters, hash),
		candidates: table.New[netip.Addr, binding](cfg.MaxRouters, hash),
		door:       sketch.NewDoorkeeper(14),
		held:       make([]uint64, 1<<redirHeldBits/64),
		hosts:      table.New[netip.Addr, redirHost](cfg.MaxHosts, nil),
		width:      int64(cfg.Window) / window.Buckets,
	}
}

// Info implements detector.Rule.
func (r *Redirect) Info() detector.RuleInfo { return redirectInfo }

func isRedirect(p *detector.Packet) bool {
	if p.IPv6 {
		return p.ICMPType == icmpmsg.V6Redirect
	}
	return p.ICMPType == icmpmsg.V4Redirect
}

// Interest implements detector.Interested: redirects, and what teaches a
// router's link-layer address (errors, echo replies, RAs, NAs).
func (r *Redirect) Interest() detector.Interest {
	return detector.Interest{
		ICMPv4: detector.Types(0, icmpmsg.V4DestUnreach, icmpmsg.V4SourceQuench, icmpmsg.V4Redirect, icmpmsg.V4TimeExceeded, icmpmsg.V4ParamProblem),
		ICMPv6: detector.Types(icmpmsg.V6DestUnreach, icmpmsg.V6PacketTooBig, icmpmsg.V6TimeExceeded, icmpmsg.V6ParamProblem,
			129, icmpmsg.V6RouterAdvert, icmpmsg.V6NeighAdvert, icmpmsg.V6Redirect),
	}
}

// learn records the link-layer address p's source speaks from when p is
// a message a router sends itself from its link (an RA, an NA, an error
// or an echo reply) and arrived unrouted: its TTL or hop limit is still a
// usual initial value (64, 128, 255), so the source is on the sensor's
// link and the frame's Ethernet source is its own. An RA names its
// sender a router (a confirmed claim at once) when its source link-layer
// option, if any, agrees with the Ethernet source; one whose option names
// another MAC teaches nothing. A claim stands until not heard for
// routerBindingTTL; two MACs claiming one address are both kept (see
// binding). A new binding enters a full candidates table at its second
// packet (the doorkeeper). It does not allocate: the tables' slabs are
// reused.
func (r *Redirect) learn(p *detector.Packet) {
	if !p.HasSrcMAC || !detector.UnroutedTTL(p.TTL) || !routerMessage(p) {
		return
	}
	mac, named := p.SrcMAC, false
	if p.IPv6 && p.ICMPType == icmpmsg.V6RouterAdvert {
		if nd := p.NDOptions(); nd.HasSrcLinkAddr && nd.SrcLinkAddr != mac {
			return
		}
		named = true
	}
	now := p.TimeNs
	var b *binding
	var h uint64 // the tables' hash of p.Src, worked out once
	held := r.mayHold(p.SrcHash())
	if held {
		h = r.routers.Hash(p.Src)
		if rb, ok := r.routers.TouchHashed(p.Src, h, now); ok {
			rb.hear(mac, named, now)
			return
		}
		b, _ = r.candidates.TouchHashed(p.Src, h, now)
	}
	if b == nil {
		if r.candidates.Len() >= r.candidates.Cap() && !r.door.Seen(sketch.Mix64(p.SrcHash()^macKey(mac))) {
			return // full: a new binding's first packet only knocks
		}
		if !held {
			h = r.routers.Hash(p.Src)
		}
		b, _ = r.candidates.GetHashed(p.Src, h, now) // evicts another candidate when full
		r.hold(p.SrcHash())
	}
	b.hear(mac, named, now)
	if !b.confirmed(now) {
		return
	}
	if r.routers.Len() >= r.routers.Cap() {
		r.refused++ // full of live confirmed bindings: it stays a candidate
		return
	}
	v := *b
	r.candidates.DeleteHashed(p.Src, h)
	nb, _ := r.routers.GetHashed(p.Src, h, now)
	*nb = v
}

// binding returns what is known of router address a, confirmed or not.
func (r *Redirect) binding(a netip.Addr) (*binding, bool) {
	if b, ok := r.routers.Lookup(a); ok {
		return b, true
	}
	return r.candidates.Lookup(a)
}

// macKey is a MAC address as a 64-bit word.
func macKey(m [6]byte) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

// routerMessage tells whether p is of a kind a router sends of its own:
// an error, an echo reply, an RA or an NA.
func routerMessage(p *detector.Packet) bool {
	if icmpmsg.IsError(p.IPv6, p.ICMPType) || p.IsEchoReply() {
		return true
	}
	return p.IPv6 && (p.ICMPType == icmpmsg.V6RouterAdvert || p.ICMPType == icmpmsg.V6NeighAdvert)
}

// routerBindingTTL is how long a router's learned link-layer address
// stands without being seen again.
const routerBindingTTL = 10 * time.Minute

// Observe implements detector.Rule.
func (r *Redirect) Observe(p *detector.Packet, rep detector.Reporter) {
	if !p.HasICMP || p.Fragment {
		return
	}
	if !isRedirect(p) {
		if !p.LinkRemote {
			r.learn(p)
		}
		return
	}
	var reasons uint32
	var gateway, dest netip.Addr
	if p.IPv6 {
		target, d, ok := icmpmsg.RedirectV6(p.ICMPData)
		if !ok {
			return
		}
		gateway, dest = target, d
		if p.TTL != 255 {
			reasons |= 1 << redirHopLimit
		}
		if !p.Src.IsLinkLocalUnicast() {
			reasons |= 1 << redirOfflink
		}
		if target.IsMulticast() || target.IsUnspecified() || !target.IsLinkLocalUnicast() && target != d {
			reasons |= 1 << redirBadGateway
		}
	} else {
		gw, ok := icmpmsg.RedirectV4Gateway(p.ICMPData)
		if !ok {
			return
		}
		gateway = gw
		if q, st := icmpmsg.ParseQuote(false, p.ICMPData); st == icmpmsg.QuoteOK {
			dest = q.Dst
		}
		if gw.IsUnspecified() || gw.IsMulticast() || gw.IsLoopback() || gw == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			reasons |= 1 << redirBadGateway
		}
		if link, ok := r.linkOf(p.Dst); ok {
			if !link.Contains(p.Src) {
				reasons |= 1 << redirOfflink
			}
			if !gw.IsUnspecified() && !link.Contains(gw) {
				reasons |= 1 << redirBadGateway
			}
		}
	}
	if len(r.trusted) > 0 && !r.trusted[p.Src] {
		reasons |= 1 << redirSpoofed
	}
	if b, ok := r.binding(p.Src); ok && p.HasSrcMAC {
		reasons |= b.judge(p.SrcMAC, p.TimeNs)
	}
	h, _ := r.hosts.Get(p.Dst, p.TimeNs)
	h.last = p.TimeNs
	h.rate.Add(p.TimeNs, r.width, p.WireLen)
	pps, bps := h.rate.Rates(r.cfg.Window)
	lvl := rateLevel(pps, r.cfg.Rate, r.cfg.StopRatio)
	if lvl == detector.LevelFire && !r.trusted[p.Src] {
		reasons |= 1 << redirRate
	}
	if reasons == 0 && lvl == detector.LevelQuiet {
		return
	}
	if reasons != 0 {
		lvl = detector.LevelFire
		for b := reasons; b != 0; b &= b - 1 {
			h.reasons[bits.TrailingZeros32(b)]++
		}
		h.router, h.gateway, h.dest = p.Src, gateway, dest
	}
	rep.Hit(p.Dst, p, &detector.Measure{Level: lvl, PPS: pps, BPS: bps, Window: r.cfg.Window, Threshold: r.cfg.Rate,
		WindowPackets: h.rate.Packets(), WindowBytes: h.rate.Bytes()})
}

// ObserveLink implements detector.LinkObserver: with several engines, the
// link's engine learns from the echo replies and errors routed to other
// engines (detector.LinkCopy), so every redirect is judged by everything
// the link taught, whatever the number of engines.
func (r *Redirect) ObserveLink(p *detector.Packet, _ detector.Reporter) {
	if p.HasICMP && !p.Fragment {
		r.learn(p)
	}
}

// linkOf returns the home network holding a, if home_networks is set.
func (r *Redirect) linkOf(a netip.Addr) (netip.Prefix, bool) {
	for _, h := range r.home {
		if h.Contains(a) {
			return h, true
		}
	}
	return netip.Prefix{}, false
}

// Tick implements detector.Rule: idle receivers and stale bindings go.
func (r *Redirect) Tick(now time.Time, _ detector.Reporter) {
	if !r.sweep.due(now, 10*time.Second) {
		return
	}
	before := now.Add(-2 * time.Minute).UnixNano()
	r.hosts.Sweep(func(_ netip.Addr, h *redirHost, _ int64) bool { return h.last < before })
	ns := now.UnixNano()
	stale := func(_ netip.Addr, b *binding, _ int64) bool { return b.stale(ns) }
	r.routers.Sweep(stale)
	r.candidates.Sweep(stale)
	// The bits of the bindings left, without those swept or evicted.
	clear(r.held)
	hold := func(a netip.Addr, _ *binding) bool {
		r.hold(sketch.HashAddr(a))
		return true
	}
	r.routers.Range(hold)
	r.candidates.Range(hold)
}

// Describe implements detector.Describer: the reasons, the claimed router,
// the new gateway and the redirected destination.
func (r *Redirect) Describe(target netip.Addr, extra map[string]any) {
	h, ok := r.hosts.Lookup(target)
	if !ok {
		return
	}
	reasons := map[string]any{}
	for i, n := range h.reasons {
		if n > 0 {
			reasons[redirReasonNames[i]] = n
		}
	}
	if len(reasons) > 0 {
		extra["reasons"] = reasons
	}
	if h.router.IsValid() {
		extra["router"] = h.router
		extra["gateway"] = h.gateway
	}
	if h.dest.IsValid() {
		extra["redirected_destination"] = h.dest
	}
}

// Tables implements detector.TableReporter.
func (r *Redirect) Tables() []detector.TableStat {
	return []detector.TableStat{
		{Name: "icmp_redirect.routers", Len: r.routers.Len(), Cap: r.routers.Cap(), Evicted: r.routers.Evicted() + r.refused},
		{Name: "icmp_redirect.candidates", Len: r.candidates.Len(), Cap: r.candidates.Cap(), Evicted: r.candidates.Evicted()},
		{Name: "icmp_redirect.hosts", Len: r.hosts.Len(), Cap: r.hosts.Cap(), Evicted: r.hosts.Evicted()},
	}
}
