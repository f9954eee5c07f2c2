package rules

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
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
	mac uint64 // macKey of the link-layer address
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

// hear records that mac (a macKey) spoke for the binding's address at
// now (named: in an RA), and tells whether the binding is confirmed now
// (a live claim of it is). A MAC it does not hold takes a stale or empty
// slot, else the weaker claim's: an unconfirmed one before a confirmed
// one, the one heard least recently between equals.
func (b *binding) hear(mac uint64, named bool, now int64) bool {
	i := 0
	if b.claims[0].mac != mac || b.claims[0].last == 0 {
		i = 1
		if b.claims[1].mac != mac || b.claims[1].last == 0 {
			i = -1
		}
	}
	switch {
	case i < 0:
		i = b.weaker(now)
		fallthrough
	case !b.claims[i].live(now): // (heard again after going stale: a new claim)
		b.claims[i] = claim{mac: mac, heard: 1, named: named, counted: now, last: now}
	default:
		c := &b.claims[i]
		if now-c.counted >= confirmSpacing && c.heard < ^uint16(0) {
			c.heard++
			c.counted = now
		}
		c.last = now
		c.named = c.named || named
	}
	o := &b.claims[1-i]
	return b.claims[i].confirmed() || o.live(now) && o.confirmed()
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

// stale tells whether no claim of the binding is live.
func (b *binding) stale(now int64) bool { return !b.claims[0].live(now) && !b.claims[1].live(now) }

// judge returns the reasons a redirect from mac in the binding's name is
// evidence for: none when mac is the one live claim, or the confirmed one
// against an unconfirmed rival; spoofed_router when mac is no live claim,
// or an unconfirmed one against a confirmed rival; binding_conflict
// whenever two live claims stand and mac is not the only confirmed one.
func (b *binding) judge(mac uint64, now int64) uint32 {
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
// see learn), and judges every redirect by the reasons of the contract. A
// redirect with a reason, or redirects to one receiver at the storm rate,
// start or feed an attack on that receiver.
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
	// held filters the addresses the two tables may hold: two bits per
	// bucket of sketch.HashAddr (the packet's SrcHash, which other rules
	// share), one set when routers may hold an address of the bucket,
	// one when candidates may. A table whose bit is clear is not probed:
	// a source that is no router costs no probe of routers, and a new
	// one none at all, nor the keyed hash. Evicted and deleted bindings
	// leave their bits set until the filter is rebuilt (at every sweep,
	// or once a quarter of the candidates' bits are); the hash need not be
	// secret: an address aimed at a router's bucket only buys a probe.
	held      *[1 << redirHeldBits / 32]uint64
	heldCands int // candidates' bits set
	// key is the tables' keyed hash: a source is hashed for both binding
	// tables once, and only when one is probed or written.
	key     addrKey
	refused uint64
	hosts   *table.Table[netip.Addr, redirHost]
	m       detector.Measure // the measure Observe reports, reused
	width   int64
	secs    float64 // cfg.Window in seconds
	sweep   sweepClock
}

// addrKey is a keyed hash of addresses: wyhash's multiply-and-fold of the
// 16-byte form, twice, with random words (as detector/frag's index). It
// costs a dozen instructions where hash/maphash's cost ~90, and without
// the words nobody can aim addresses at one index position of a table (a
// long probe chain), as sketch.HashAddr's collisions would.
type addrKey struct{ s0, s1, s2, s3 uint64 }

// newAddrKey returns a key of random words.
func newAddrKey() addrKey {
	return addrKey{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64() | 1}
}

// hash is the keyed hash of a (its zone aside: equal addresses hash alike).
func (k *addrKey) hash(a netip.Addr) uint64 {
	b := a.As16()
	hi, lo := bits.Mul64(binary.LittleEndian.Uint64(b[:8])^k.s0, binary.LittleEndian.Uint64(b[8:])^k.s1)
	hi, lo = bits.Mul64(hi^lo^k.s2, k.s3)
	return hi ^ lo
}

// NewRedirect returns the icmp_redirect rule.
func NewRedirect(cfg RedirectConfig) *Redirect {
	r := &Redirect{
		cfg:     cfg,
		trusted: parseAddrs(cfg.TrustedRouters),
		home:    parsePrefixes(cfg.HomeNetworks),
		door:    sketch.NewDoorkeeper(14),
		held:    new([1 << redirHeldBits / 32]uint64),
		key:     newAddrKey(),
		width:   int64(cfg.Window) / window.Buckets,
		secs:    cfg.Window.Seconds(),
	}
	hash := r.key.hash
	r.routers = table.New[netip.Addr, binding](cfg.MaxRouters, hash)
	r.candidates = table.New[netip.Addr, binding](cfg.MaxRouters, hash)
	r.hosts = table.New[netip.Addr, redirHost](cfg.MaxHosts, hash)
	return r
}

// redirHeldBits is log2 of Redirect.held's buckets: 65,536, two bits
// each, 16 KiB (two full tables of the default 4,096 bindings set one bit
// in sixteen of each kind; larger tables only make a set bit likelier).
const redirHeldBits = 16

// The two bits of a bucket of Redirect.held.
const (
	heldRouter    = 1
	heldCandidate = 2
)

// heldBits returns the bits of the bucket of sketch hash h: which tables
// may hold the address.
func (r *Redirect) heldBits(h uint64) uint64 {
	j := h >> (64 - redirHeldBits)
	return r.held[j/32] >> (2 * (j % 32)) & 3
}

// hold sets bit (heldRouter or heldCandidate) in the bucket of sketch
// hash h.
func (r *Redirect) hold(h, bit uint64) {
	j := h >> (64 - redirHeldBits)
	w, b := &r.held[j/32], bit<<(2*(j%32))
	if *w&b == 0 {
		*w |= b
		if bit == heldCandidate {
			r.heldCands++
		}
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
// link and the frame's Ethernet source is its own. Over ICMPv6 only a
// link-local source teaches: a host takes a redirect from a link-local
// source only (RFC 4861 8.1), so a global address's binding could only
// add reasons to a redirect that is offlink_source already. An RA names
// its sender a router (a confirmed claim at once) when its source
// link-layer option, if any, agrees with the Ethernet source; one whose
// option names another MAC teaches nothing. A claim stands until not
// heard for routerBindingTTL; two MACs claiming one address are both kept
// (see binding). A new binding enters a full candidates table at its
// second packet (the doorkeeper). The filter (by the packet's SrcHash)
// says which tables may hold the source: one whose bit is clear is not
// probed, and the keyed hash is worked out once, only for a table probed
// or written. It does not allocate: the tables' slabs are reused.
func (r *Redirect) learn(p *detector.Packet) {
	if !p.HasSrcMAC || !detector.UnroutedTTL(p.TTL) || !routerMessage(p) {
		return
	}
	named := false
	if p.IPv6 {
		if !p.Src.IsLinkLocalUnicast() {
			return // (as Observe's offlink_source)
		}
		if p.ICMPType == icmpmsg.V6RouterAdvert {
			if nd := p.NDOptions(); nd.HasSrcLinkAddr && nd.SrcLinkAddr != p.SrcMAC {
				return
			}
			named = true
		}
	}
	mac, now := macKey(p.SrcMAC), p.TimeNs
	sh := p.SrcHash()
	held := r.heldBits(sh)
	var h uint64 // the tables' keyed hash of p.Src, worked out once if at all
	hashed := false
	if held&heldRouter != 0 {
		rb, ok := r.routers.Again(p.Src, now)
		if !ok {
			h, hashed = r.key.hash(p.Src), true
			rb, ok = r.routers.TouchHashed(p.Src, h, now)
		}
		if ok {
			rb.hear(mac, named, now)
			return
		}
	}
	var b *binding
	if held&heldCandidate != 0 {
		var ok bool
		if b, ok = r.candidates.Again(p.Src, now); !ok {
			if !hashed {
				h, hashed = r.key.hash(p.Src), true
			}
			b, _ = r.candidates.TouchHashed(p.Src, h, now)
		}
	}
	if b == nil {
		if r.candidates.Len() >= r.candidates.Cap() && !r.door.Seen(sh^mac) {
			return // full: a new binding's first packet only knocks
		}
		if !hashed {
			h, hashed = r.key.hash(p.Src), true
		}
		b, _ = r.candidates.GetHashed(p.Src, h, now) // evicts another candidate when full
		r.hold(sh, heldCandidate)
	}
	if !b.hear(mac, named, now) {
		return // not confirmed yet
	}
	if r.routers.Len() >= r.routers.Cap() {
		r.refused++ // full of live confirmed bindings: it stays a candidate
		return
	}
	if !hashed {
		h = r.key.hash(p.Src)
	}
	v := *b
	r.candidates.DeleteHashed(p.Src, h)
	nb, _ := r.routers.GetHashed(p.Src, h, now)
	*nb = v
	r.hold(sh, heldRouter)
}

// binding returns what is known of router address a (sketch hash sh),
// confirmed or not.
func (r *Redirect) binding(a netip.Addr, sh uint64) (*binding, bool) {
	held := r.heldBits(sh)
	if held&heldRouter != 0 {
		if b, ok := r.routers.Lookup(a); ok {
			return b, true
		}
	}
	if held&heldCandidate != 0 {
		return r.candidates.Lookup(a)
	}
	return nil, false
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
		if len(p.ICMPData) < 8 {
			return
		}
		// The new gateway as a word (its address is made only to be
		// kept, below): 0.0.0.0, multicast, loopback or broadcast?
		g := binary.BigEndian.Uint32(p.ICMPData[4:8])
		if badGateway4(g) {
			reasons |= 1 << redirBadGateway
		}
		if len(r.home) > 0 {
			if link, ok := r.linkOf(p.Dst); ok {
				if !link.Contains(p.Src) {
					reasons |= 1 << redirOfflink
				}
				if g != 0 && !link.Contains(netip.AddrFrom4([4]byte(p.ICMPData[4:8]))) {
					reasons |= 1 << redirBadGateway
				}
			}
		}
	}
	var trusted bool
	if len(r.trusted) > 0 {
		if trusted = r.trusted[p.Src]; !trusted {
			reasons |= 1 << redirSpoofed
		}
	}
	if p.HasSrcMAC {
		if sh := p.SrcHash(); r.heldBits(sh) != 0 { // (a clear bucket: no binding, no call)
			if b, ok := r.binding(p.Src, sh); ok {
				reasons |= b.judge(macKey(p.SrcMAC), p.TimeNs)
			}
		}
	}
	h, ok := r.hosts.Again(p.Dst, p.TimeNs)
	if !ok {
		h, _ = r.hosts.Get(p.Dst, p.TimeNs)
	}
	h.last = p.TimeNs
	h.rate.AddBucket(p.TimeNs/r.width, p.WireLen)
	pps, bps := h.rate.RatesOver(r.secs)
	lvl := rateLevel(pps, r.cfg.Rate, r.cfg.StopRatio)
	if lvl == detector.LevelFire && !trusted {
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
		if !p.IPv6 {
			gateway, dest = netip.AddrFrom4([4]byte(p.ICMPData[4:8])), quotedDst4(p.ICMPData)
		}
		h.router, h.gateway, h.dest = p.Src, gateway, dest
	}
	m := &r.m // every field set
	m.Level, m.PPS, m.BPS, m.Window, m.Threshold = lvl, pps, bps, r.cfg.Window, r.cfg.Rate
	m.WindowPackets, m.WindowBytes = h.rate.Packets(), h.rate.Bytes()
	rep.Hit(p.Dst, p, m)
}

// badGateway4 tells whether the IPv4 address of word g is no gateway a
// redirect may name: 0.0.0.0, multicast, loopback or broadcast.
func badGateway4(g uint32) bool {
	return g == 0 || g>>28 == 0xe || g>>24 == 127 || g == 0xffffffff
}

// quotedDst4 is the destination of the IPv4 header an ICMP message (msg:
// its header and body) quotes, or the zero address where
// icmpmsg.ParseQuote finds no whole header: the redirected destination,
// read without parsing the rest of the quote.
func quotedDst4(msg []byte) netip.Addr {
	if len(msg) < 8+20 {
		return netip.Addr{}
	}
	b := msg[8:]
	if b[0]>>4 != 4 || b[0]&0x0f < 5 {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(b[16:20]))
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
		// A quarter of the candidates' bits set, most by bindings gone
		// (evicted): a probe for nothing on every fourth new source.
		if 4*r.heldCands >= 1<<redirHeldBits && r.heldCands > 2*r.candidates.Len() {
			r.rebuildFilters()
		}
		return
	}
	before := now.Add(-2 * time.Minute).UnixNano()
	r.hosts.Sweep(func(_ netip.Addr, h *redirHost, _ int64) bool { return h.last < before })
	ns := now.UnixNano()
	stale := func(_ netip.Addr, b *binding, _ int64) bool { return b.stale(ns) }
	r.routers.Sweep(stale)
	r.candidates.Sweep(stale)
	// The bits of the bindings left, without those swept or evicted.
	r.rebuildFilters()
}

// rebuildFilters sets the filter's bits of the bindings held, and only
// those.
func (r *Redirect) rebuildFilters() {
	*r.held = [1 << redirHeldBits / 32]uint64{}
	r.heldCands = 0
	r.routers.Range(func(a netip.Addr, _ *binding) bool {
		r.hold(sketch.HashAddr(a), heldRouter)
		return true
	})
	r.candidates.Range(func(a netip.Addr, _ *binding) bool {
		r.hold(sketch.HashAddr(a), heldCandidate)
		return true
	})
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
