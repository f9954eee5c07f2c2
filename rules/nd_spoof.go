package rules

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
)

var ndSpoofInfo = detector.RuleInfo{
	Name:        "nd_spoof",
	SignatureID: 9000016,
	Rev:         1,
	Signature:   "ICMPv6 neighbor cache poisoning (NA spoofing)",
	Category:    "Attempted Administrator Privilege Gain",
	Severity:    1,
}

// ndSpoofDefinition registers nd_spoof.
func ndSpoofDefinition() Definition {
	return define(ndSpoofInfo,
		"nd_spoof: Neighbor Advertisements that rebind an address already known at another link-layer address (neighbor cache poisoning, THC-IPv6 parasite6, the IPv6 form of ARP spoofing). One rebinding is a host whose NIC changed; an address that flips back and forth, any rebinding of a router's address (one that sent RAs announcing a default router), one link-layer address taking over several known addresses, or many known addresses rebound each to its own new link-layer address, is an attack, and so is an NA for a known address padded past the options the sensor reads (32) with no target link-layer address option among them (padded_options: the address it names is unverified; such NAs for many known addresses are one attack on the first, whatever frame source each comes from). One attacker taking over many addresses is one attack: its target is the first address taken over, its context counts and lists them all.",
		map[string]string{
			"flips":        "An address rebound this many times within window (A to B and back) is being fought over.",
			"takeovers":    "A link-layer address that took over this many addresses known at other link-layer addresses (of more than one host: one host's addresses moving together are a NIC change or a failover) within window is poisoning caches (parasite6 answers every solicitation).",
			"fresh_macs":   "This many link-layer addresses each rebinding a live known address (heard within window) for the first time, within window, are one attacker forging a new MAC per address.",
			"window":       "The window the counts run over.",
			"max_bindings": "Cap on the bindings learned from NA, NS (source link-layer option) and RA; least recently seen are evicted and counted.",
		},
		DefaultNDSpoofConfig,
		func(c NDSpoofConfig) (detector.Rule, error) { return NewNDSpoof(c), nil })
}

// NDSpoofConfig configures nd_spoof.
type NDSpoofConfig struct {
	Enabled     bool          `mapstructure:"enabled"`
	Flips       int           `mapstructure:"flips"`
	Takeovers   int           `mapstructure:"takeovers"`
	FreshMACs   int           `mapstructure:"fresh_macs"`
	Window      time.Duration `mapstructure:"window"`
	MaxBindings int           `mapstructure:"max_bindings"`
}

// DefaultNDSpoofConfig returns nd_spoof's defaults: 2 flips of one
// address, 3 addresses taken over by one MAC, or 8 addresses rebound each
// by a new MAC, within 10 minutes.
func DefaultNDSpoofConfig() NDSpoofConfig {
	return NDSpoofConfig{Enabled: true, Flips: 2, Takeovers: 3, FreshMACs: 8, Window: 10 * time.Minute, MaxBindings: 65536}
}

// Validate checks the settings; errors name the configuration key.
func (c NDSpoofConfig) Validate() error {
	k := newCheck(ndSpoofInfo.Name)
	k.count("flips", c.Flips, 2, 1000)
	k.count("takeovers", c.Takeovers, 2, 1000)
	k.count("fresh_macs", c.FreshMACs, 2, 1000)
	k.duration("window", c.Window, time.Second, 24*time.Hour)
	k.count("max_bindings", c.MaxBindings, 1, 1<<22)
	return k.err()
}

// Why an address was reported (ndBinding.trigger, ndEpisode.trigger).
const (
	ndNotReported = iota
	ndFlips       // the address fought over
	ndRouter      // a router's address rebound
	ndTakeover    // one MAC taking over many addresses
	ndFreshMACs   // many addresses, each rebound to a new MAC
	ndPadded      // an NA whose target link-layer option, if any, lies past the option walk's bound
)

var ndTriggerNames = [...]string{"", "flips", "router", "takeover", "fresh_macs", "padded_options"}

// ndBinding is an address's learned link-layer address and its history.
type ndBinding struct {
	mac, old [6]byte
	flips    uint32 // rebindings within the window that began at since
	trigger  uint8  // why the address was reported (ndNotReported: never)
	router   bool   // a router's address: it sent an RA announcing a default router from mac
	since    int64
	last     int64
	rebound  int64 // packet time of the last rebinding
	padded   int64 // packet time of the last NA of it padded past the bound with no target link-layer option read (0: none)
}

// takeoverCell counts, per link-layer address (hashed into a fixed array
// of cells, with a fingerprint), the addresses it took over in a window,
// and the first of them (the target of its attack).
type takeoverCell struct {
	mac    [6]byte
	owner  [6]byte // the MAC its first address was taken from
	owners uint8   // 1: every address taken was owner's (a host that moved); 2: from several hosts
	n      uint32
	since  int64
	first  [16]byte
}

// ndListed is how many addresses an attack's context lists.
const ndListed = 16

// ndEpisode is one attacker's takeover of many addresses: one MAC's
// (takeover; admitted at its second address), or the link's when many
// new MACs each take one (fresh_macs). Keyed by its target, the first
// address taken.
type ndEpisode struct {
	mac       [6]byte // the attacker's MAC (takeover)
	trigger   uint8
	reported  bool
	nlisted   uint8
	addresses uint32 // addresses taken over
	macs      uint32 // distinct new MACs (fresh_macs)
	listed    [ndListed][16]byte
	last      int64
}

// add counts one more address taken over; routers' addresses are listed
// even when the list is full.
func (e *ndEpisode) add(a netip.Addr, router bool) {
	e.addresses++
	switch {
	case int(e.nlisted) < ndListed:
		e.listed[e.nlisted] = a.As16()
		e.nlisted++
	case router:
		e.listed[ndListed-1] = a.As16()
	}
}

// ndEpKey keys the attacks of many addresses: their first address, and
// whether it is the link's (flips, fresh_macs), one MAC's (takeover) or
// the padded NAs' (padded: padded_options).
type ndEpKey struct {
	first  netip.Addr
	link   bool
	padded bool
}

// freshRebind is one rebinding of a live address by a MAC new to it.
type freshRebind struct {
	t    int64
	addr [16]byte
}

// NDSpoof is the nd_spoof rule: a capped table of IPv6 address →
// link-layer address bindings, learned from NAs (target link-layer
// option, else the frame's source), NSs (source link-layer option, never
// from the unspecified address of duplicate address detection) and RAs
// (source link-layer option, else the frame's source). A rebinding by an
// NA is reported when the address has flipped Flips times within Window,
// at once when the address is a router's, when the new link-layer address
// has taken over Takeovers known addresses within Window, or when
// FreshMACs addresses heard within Window were each rebound by a MAC new
// to them within Window. An attacker taking over many addresses is one
// attack, on the first address it took (its later addresses, and their
// owners taking them back, are hits of that attack); NAs that keep a
// reported binding within Window keep its attack going. An NA padded
// past the option walk's bound with no target link-layer option read is
// a rebinding nobody can verify: reported for a known address
// (padded_options), never learned; such NAs for many addresses within
// Window are one attack on the first. Targets: the address taken over,
// or an attack's first one.
type NDSpoof struct {
	cfg      NDSpoofConfig
	windowNs int64
	bindings *table.Table[netip.Addr, ndBinding]
	door     *sketch.Doorkeeper // admits a binding to a full bindings table at its second packet
	known    presence           // the addresses bindings may hold (sketch.HashAddr): most of a flood's are proved absent without a lookup
	cells    []takeoverCell
	episodes *table.Table[ndEpKey, ndEpisode]
	fresh    []freshRebind // ring of the last FreshMACs fresh rebindings
	nfresh   int           // rebindings pushed in all
	link     netip.Addr    // the fresh_macs attack under way (its target)
	linkLast int64
	// pad is the padded NAs' attack under way (its target, the first
	// address of it), padSince when it began, padLast its last NA.
	pad               netip.Addr
	padSince, padLast int64
	sweep             sweepClock
}

// ndTakeoverCells is the size of the takeover array; ndEpisodes caps the
// attackers followed at once.
const (
	ndTakeoverCells = 4096
	ndEpisodes      = 256
)

// NewNDSpoof returns the nd_spoof rule.
func NewNDSpoof(cfg NDSpoofConfig) *NDSpoof {
	return &NDSpoof{cfg: cfg, windowNs: int64(cfg.Window), bindings: table.New[netip.Addr, ndBinding](cfg.MaxBindings, nil),
		door:     sketch.NewDoorkeeper(14),
		known:    newPresence(presenceBits(cfg.MaxBindings)),
		cells:    make([]takeoverCell, ndTakeoverCells),
		episodes: table.New[ndEpKey, ndEpisode](ndEpisodes, nil),
		fresh:    make([]freshRebind, max(cfg.FreshMACs, 1))}
}

// Info implements detector.Rule.
func (r *NDSpoof) Info() detector.RuleInfo { return ndSpoofInfo }

// Warm implements detector.Warmer: the takeover cells.
func (r *NDSpoof) Warm() {
	table.Prefault(r.cells)
	r.known.warm()
}

// Observe implements detector.Rule.
func (r *NDSpoof) Observe(p *detector.Packet, rep detector.Reporter) {
	if !p.IPv6 || !p.HasICMP {
		return
	}
	var addr netip.Addr
	na, ra, routerFlag := false, false, false
	switch {
	case isND(p, icmpmsg.V6NeighAdvert, 24):
		// (An NA's router flag is the sender's word: parasite6 may set it
		// in every forged NA. Only RAs make an address a router's.)
		addr, _, _, _, _ = icmpmsg.NeighborTarget(p.ICMPData)
		na = true
		if nd := p.NDOptions(); nd.Truncated && !nd.HasTgtLinkAddr {
			r.unverified(p, addr, rep)
			return
		}
	case isND(p, icmpmsg.V6NeighSolicit, 24), isND(p, icmpmsg.V6RouterAdvert, 16):
		if p.Src.IsUnspecified() {
			return // duplicate address detection: nobody's binding yet
		}
		addr = p.Src
		if p.ICMPType == icmpmsg.V6RouterAdvert {
			// A default router's RA (kill_router6's lifetime 0 names
			// no router: it is what an attacker sends in its name).
			adv, _ := icmpmsg.ParseRouterAdvert(p.ICMPData)
			ra, routerFlag = true, adv.Lifetime > 0
		}
	default:
		return
	}
	mac, fromOpt, ok := ndLinkAddr(p, p.NDOptions())
	// A solicitation binds only by its option; a router's RA binds by
	// its option or, without one, by the frame's source.
	if !ok || (!na && !fromOpt && !ra) || !bindable(addr) {
		return
	}
	now := p.TimeNs
	h := p.SrcHash() // the address's hash (an RA's or a solicitation's is its source)
	if na {
		h = sketch.HashAddr(addr)
	}
	var b *ndBinding
	if r.bindings.Len() < r.bindings.Cap() && p.Class.Owner == "" {
		// Room, and no flood: the binding is learned at its first
		// packet (one lookup, no second one to insert).
		var created bool
		if b, created = r.bindings.Get(addr, now); created {
			r.known.add(h)
			*b = ndBinding{mac: mac, since: now, last: now, router: routerFlag}
			return
		}
	} else if ok = r.known.mayHold(h); ok { // (a clear bit: no lookup)
		b, ok = r.bindings.Touch(addr, now)
	}
	if b == nil {
		// Once the table is full, or for a message of a flood (ra_flood's
		// or nd_flood's: forged routers and neighbors, a new one each), a
		// binding is learned from its second packet (the doorkeeper):
		// they cost a cell write instead of an insertion (and, once
		// full, an eviction), and evict no binding.
		if !r.door.Seen(sketch.Mix64(h ^ macKey(mac))) {
			return
		}
		b, _ = r.bindings.Get(addr, now)
		r.known.add(h)
		*b = ndBinding{mac: mac, since: now, last: now, router: routerFlag}
		return
	}
	if b.mac == mac {
		b.last = now
		b.router = b.router || routerFlag
		if na && b.trigger != ndNotReported && now-b.rebound <= r.windowNs {
			// The taker keeps what it took: its attack goes on.
			if target, ok := r.targetOf(addr, b.trigger, mac, now); ok {
				rep.Hit(target, p, &detector.Measure{Level: detector.LevelFire})
			}
		}
		return
	}
	if !na {
		// Only an advertisement rebinds (RFC 4861 7.2.5 and its override
		// flag); a solicitation's option updates a stale entry alone.
		if now-b.last > r.windowNs {
			b.mac, b.last = mac, now
		}
		return
	}
	live := now-b.last <= r.windowNs
	if now-b.since > r.windowNs {
		b.since, b.flips = now, 0
	}
	// mac taking back what it held just before (a flip war) takes over
	// nothing new.
	retake := b.old == mac
	if now-b.rebound > r.windowNs {
		b.trigger = ndNotReported // a new window: counted afresh
	}
	old := b.mac
	b.old, b.mac, b.last, b.rebound = old, mac, now, now
	b.flips++
	c := r.takeover(mac, old, addr, now, !retake)
	target, trigger := r.judge(addr, b, c, old, live, retake, now)
	if trigger == ndNotReported {
		return
	}
	if b.trigger == ndNotReported {
		b.trigger = trigger
	}
	rep.Hit(target, p, &detector.Measure{Level: detector.LevelFire})
}

// unverified judges an NA for addr padded past the option walk's bound
// with no target link-layer option read within it: it may carry one after
// it, which hosts read, so the binding it makes is one the sensor cannot
// verify. For an address with a known binding it is reported and the
// binding is kept as it is; it never teaches one. Such NAs for many
// addresses within the window are one attack on the link, on the first
// address (no host pads its NAs so; the sender's MAC, which a forger
// changes at will, does not split it), its context listing them all.
func (r *NDSpoof) unverified(p *detector.Packet, addr netip.Addr, rep detector.Reporter) {
	if !bindable(addr) || !r.known.mayHold(sketch.HashAddr(addr)) {
		return
	}
	now := p.TimeNs
	b, ok := r.bindings.Touch(addr, now)
	if !ok {
		return
	}
	e, ok := r.episodes.Lookup(ndEpKey{r.pad, false, true})
	if !ok || !r.pad.IsValid() || now-r.padLast > r.windowNs {
		// A new attack, on addr (or the one under way was evicted).
		r.pad, r.padSince = addr, now
		e, _ = r.episodes.Get(ndEpKey{addr, false, true}, now)
		*e = ndEpisode{trigger: ndPadded, reported: true}
		e.add(addr, b.router)
	} else if b.padded < r.padSince {
		e.add(addr, b.router) // an address new to this attack
	}
	r.padLast, e.last, b.padded = now, now, now
	rep.Hit(r.pad, p, &detector.Measure{Level: detector.LevelFire})
}

// judge decides whether the rebinding of addr (b, now at c's MAC, before
// at old; live: heard at old within the window; retake: c's MAC held it
// just before old) is an attack, and which: its target and trigger.
func (r *NDSpoof) judge(addr netip.Addr, b *ndBinding, c *takeoverCell, old [6]byte, live, retake bool, now int64) (netip.Addr, uint8) {
	// One MAC taking many addresses: one attack, on the first it took.
	// Its episode is admitted at the second address, reported from the
	// Takeovers-th.
	cur := c.mac == b.mac && now-c.since <= r.windowNs // c is this MAC's, this window's
	if cur && c.n >= 2 {
		first := netip.AddrFrom16(c.first)
		e, created := r.episodes.Get(ndEpKey{first, false, false}, now)
		if created || e.mac != c.mac || e.trigger != ndTakeover {
			*e = ndEpisode{mac: c.mac, trigger: ndTakeover}
			e.add(first, false)
			e.addresses = c.n - 1 // taken before the episode was (re)admitted
		}
		if addr != first && !retake {
			e.add(addr, b.router)
		}
		e.last = now
		// Addresses all taken from one MAC are a host that moved (a new
		// NIC, a failover): parasite6 takes them from every host.
		if c.n >= uint32(r.cfg.Takeovers) && c.owners > 1 {
			e.reported = true
			return first, ndTakeover
		}
	}
	// The owner taking its address back from a MAC under way.
	if oc := r.cell(old); oc.mac == old && oc.n >= uint32(r.cfg.Takeovers) && oc.owners > 1 && now-oc.since <= r.windowNs {
		return netip.AddrFrom16(oc.first), ndTakeover
	}
	// Many new MACs each taking one live address: one attack on the link,
	// on the first address taken.
	if cur && c.n == 1 && live && !retake {
		if t, ok := r.freshRebind(addr, b, now); ok {
			return t, ndFreshMACs
		}
	}
	eui, isEUI := eui64MAC(addr)
	router := b.router && !(isEUI && eui == b.mac) // (rebound to the MAC its EUI-64 address names: its owner's)
	if b.flips >= uint32(r.cfg.Flips) || router {
		// A flip war (or a router's address) with a MAC taking several
		// addresses belongs to its attack, on the first address it took.
		for _, tc := range [2]*takeoverCell{c, r.cell(old)} {
			if tc.n < 2 || now-tc.since > r.windowNs || (tc.mac != b.mac && tc.mac != old) {
				continue
			}
			first := netip.AddrFrom16(tc.first)
			if e, ok := r.episodes.Lookup(ndEpKey{first, false, false}); ok && e.mac == tc.mac {
				e.reported, e.last = true, now
				return first, ndFlips
			}
		}
	}
	if router {
		return addr, ndRouter // a router's address is never rebound
	}
	if b.flips >= uint32(r.cfg.Flips) || retake && r.linkActive(now) {
		// Addresses fought over: one attack on the link, on the first
		// (the owners of a fresh_macs attack taking theirs back, too).
		e := r.linkEpisode(addr, ndFlips, now)
		r.count(e, addr, b)
		return r.link, e.trigger
	}
	return netip.Addr{}, ndNotReported
}

// linkActive tells whether a link attack (flips, fresh_macs) is under way.
func (r *NDSpoof) linkActive(now int64) bool {
	if !r.link.IsValid() || now-r.linkLast > r.windowNs {
		return false
	}
	e, ok := r.episodes.Lookup(ndEpKey{r.link, true, false})
	return ok && (e.trigger == ndFlips || e.trigger == ndFreshMACs)
}

// linkEpisode returns the link attack under way, or starts one on addr
// with trigger.
func (r *NDSpoof) linkEpisode(addr netip.Addr, trigger uint8, now int64) *ndEpisode {
	if r.linkActive(now) {
		e, _ := r.episodes.Lookup(ndEpKey{r.link, true, false})
		r.linkLast, e.last = now, now
		return e
	}
	r.link, r.linkLast = addr, now
	e, _ := r.episodes.Get(ndEpKey{addr, true, false}, now)
	*e = ndEpisode{trigger: trigger, reported: true, last: now}
	return e
}

// count adds addr (binding b) to the link attack e once per window.
func (r *NDSpoof) count(e *ndEpisode, addr netip.Addr, b *ndBinding) {
	if b.trigger == ndNotReported {
		e.add(addr, b.router)
		b.trigger = e.trigger
	}
}

// freshRebind records addr (binding b) rebound live by a MAC new to it and
// tells whether that makes (or continues) a fresh_macs attack, and its
// target.
func (r *NDSpoof) freshRebind(addr netip.Addr, b *ndBinding, now int64) (netip.Addr, bool) {
	if r.linkActive(now) {
		if e, _ := r.episodes.Lookup(ndEpKey{r.link, true, false}); e.trigger == ndFreshMACs {
			r.linkLast, e.last = now, now
			e.macs++
			r.count(e, addr, b)
			return r.link, true
		}
	}
	n := len(r.fresh)
	r.fresh[r.nfresh%n] = freshRebind{t: now, addr: addr.As16()}
	r.nfresh++
	if r.nfresh < n {
		return netip.Addr{}, false
	}
	oldest := r.fresh[r.nfresh%n] // the slot written next holds the oldest
	if now-oldest.t > r.windowNs {
		return netip.Addr{}, false
	}
	// A flip war under way joins (the owners fight back): its target stays.
	e := r.linkEpisode(netip.AddrFrom16(oldest.addr), ndFreshMACs, now)
	e.trigger = ndFreshMACs
	for i := 0; i < n; i++ {
		a := netip.AddrFrom16(r.fresh[(r.nfresh+i)%n].addr)
		e.macs++
		if fb, ok := r.bindings.Lookup(a); ok {
			r.count(e, a, fb)
		}
	}
	r.nfresh = 0 // the next attack needs FreshMACs new rebindings of its own
	return r.link, true
}

// targetOf is the target of the attack that reported addr's binding with
// trigger, now held by mac, if mac is its taker: a router's address held,
// an address held by a MAC taking many, one of a fresh_macs attack. A
// flip war makes its own hits.
func (r *NDSpoof) targetOf(addr netip.Addr, trigger uint8, mac [6]byte, now int64) (netip.Addr, bool) {
	if c := r.cell(mac); c.mac == mac && c.n >= 2 && now-c.since <= r.windowNs {
		first := netip.AddrFrom16(c.first)
		if e, ok := r.episodes.Lookup(ndEpKey{first, false, false}); ok && e.mac == mac && e.reported {
			return first, true
		}
	}
	switch trigger {
	case ndRouter:
		return addr, true
	case ndFreshMACs:
		if r.linkActive(now) {
			return r.link, true
		}
	}
	return netip.Addr{}, false
}

// Interest implements detector.Interested: RAs, solicitations and
// advertisements.
func (r *NDSpoof) Interest() detector.Interest {
	return detector.Interest{ICMPv6: detector.Types(icmpmsg.V6RouterAdvert, icmpmsg.V6NeighSolicit, icmpmsg.V6NeighAdvert)}
}

// cell is mac's takeover cell (which may hold another MAC).
func (r *NDSpoof) cell(mac [6]byte) *takeoverCell {
	var k [16]byte
	copy(k[:], mac[:])
	return &r.cells[sketch.HashAddr(netip.AddrFrom16(k))%ndTakeoverCells]
}

// takeover counts addr as one more address taken over by mac (when
// count) and returns its cell: how many it has taken over in the current
// window, and the first. A cell that holds another MAC is taken over only
// to count.
func (r *NDSpoof) takeover(mac, from [6]byte, addr netip.Addr, now int64, count bool) *takeoverCell {
	c := r.cell(mac)
	if !count {
		return c
	}
	if c.mac != mac || now-c.since > r.windowNs {
		*c = takeoverCell{mac: mac, owner: from, owners: 1, since: now, first: addr.As16()}
	}
	if from != c.owner {
		c.owners = 2
	}
	c.n++
	return c
}

// Tick implements detector.Rule: bindings not seen for a day go, and
// attacks a window past their last address.
func (r *NDSpoof) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, time.Minute) {
		before := now.Add(-24 * time.Hour).UnixNano()
		r.bindings.Sweep(func(_ netip.Addr, b *ndBinding, _ int64) bool { return b.last < before })
		if r.known.rebuildDue() { // the bits of bindings gone (swept, evicted) add up
			r.known.reset()
			r.bindings.Range(func(a netip.Addr, _ *ndBinding) bool {
				r.known.add(sketch.HashAddr(a))
				return true
			})
		}
		idle := now.UnixNano() - 2*r.windowNs
		r.episodes.Sweep(func(_ ndEpKey, e *ndEpisode, _ int64) bool { return e.last < idle })
	}
}

// Describe implements detector.Describer: the old and the new link-layer
// address of the address taken over, its rebindings in the window and
// why it was reported (trigger); for an attacker taking over many
// addresses, how many (addresses), the first of them (taken_over) and,
// for new MACs each taking one, how many MACs (new_macs).
func (r *NDSpoof) Describe(target netip.Addr, extra map[string]any) {
	b, ok := r.bindings.Lookup(target)
	e, isEp := r.episodes.Lookup(ndEpKey{target, true, false})
	if !isEp || !e.reported {
		e, isEp = r.episodes.Lookup(ndEpKey{target, false, false})
	}
	if !isEp || !e.reported {
		e, isEp = r.episodes.Lookup(ndEpKey{target, false, true})
	}
	isEp = isEp && e.reported
	if ok && (b.trigger != ndNotReported || isEp) {
		extra["old_mac"] = macString(b.old)
		extra["new_mac"] = macString(b.mac)
		extra["rebindings"] = uint64(b.flips)
		extra["trigger"] = ndTriggerNames[b.trigger]
	}
	if !isEp {
		if ok && b.padded != 0 && (b.trigger == ndNotReported || b.padded > b.rebound) {
			// The last report of it was a padded NA: its binding, and a
			// new one nobody could read.
			extra["old_mac"] = macString(b.mac)
			extra["new_mac"] = "unverified"
			extra["rebindings"] = uint64(b.flips)
			extra["trigger"] = ndTriggerNames[ndPadded]
		}
		return
	}
	if e.trigger == ndPadded && ok {
		// The first address's binding, and a new one nobody could read.
		extra["old_mac"] = macString(b.mac)
		extra["new_mac"] = "unverified"
		extra["rebindings"] = uint64(b.flips)
	}
	extra["trigger"] = ndTriggerNames[e.trigger]
	extra["addresses"] = uint64(e.addresses)
	list := make([]string, 0, e.nlisted)
	for _, a := range e.listed[:e.nlisted] {
		list = append(list, netip.AddrFrom16(a).String())
	}
	extra["taken_over"] = list
	switch e.trigger {
	case ndTakeover:
		extra["new_mac"] = macString(e.mac)
	case ndFreshMACs:
		extra["new_macs"] = uint64(e.macs)
	}
}

// Tables implements detector.TableReporter.
func (r *NDSpoof) Tables() []detector.TableStat {
	return []detector.TableStat{
		{Name: "nd_spoof.bindings", Len: r.bindings.Len(), Cap: r.bindings.Cap(), Evicted: r.bindings.Evicted()},
		{Name: "nd_spoof.attackers", Len: r.episodes.Len(), Cap: r.episodes.Cap(), Evicted: r.episodes.Evicted()},
	}
}
