package detector

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector/sketch"
)

// FloodScope is where a rule measures floods of queries by destination: a
// host (icmp_flood) or a prefix (icmp_carpet_flood), and the rates, in
// queries per Window, at which one starts and stops.
type FloodScope struct {
	// Key maps a destination to what it is counted under (its prefix's
	// network address) and tells whether it is counted at all; nil: the
	// host itself. It must be safe for concurrent use (a dispatcher's
	// fronts call it): it reads configuration only.
	Key func(dst netip.Addr) (netip.Addr, bool)
	// Bits4 and Bits6, when Key is nil and either is set, count a
	// unicast destination under its network of that many leading bits
	// (IPv4, IPv6; multicast destinations are not counted): a prefix
	// scope the gauge works out inline, without a call per packet.
	Bits4, Bits6 int
	// Start and Stop are the levels, in queries per Window: the scope is
	// flooded from a window reaching Start until one falls below Stop.
	Start, Stop float64
	Window      time.Duration
}

// FloodScoper is implemented by rules that measure floods of echo (and
// other query) requests by destination. The engine gauges their scopes
// (FloodGauge) before the classification step and sets p.Class.Flooded on
// the queries of a flooded destination.
type FloodScoper interface {
	FloodScope() FloodScope
}

// FloodGauge tells whether a query belongs to a request flood under way:
// whether its destination host or prefix, in one of the rules' scopes,
// receives queries at the scope's level. It counts queries in a fixed
// array of tumbling-window cells per scope, indexed by a hash of the key
// (keys sharing a cell add up: a destination may be taken for flooded,
// never missed), with the scope's hysteresis per cell. It reads only the
// packet's own fields and raw capture time, so a dispatcher that sees
// every frame (detector/shard) gauges exactly as one engine does, and
// hands the verdict to the engines with the frame (Mark). The cells are
// allocated at the first query.
type FloodGauge struct {
	scopes []gaugeScope
	// window is the scopes' window when they share one (all of them, by
	// default; 0 otherwise), and epoch, epochEnd the window number and the
	// end (Unix ns) of the last query's window in it: the next queries of
	// the same window take both without a division.
	window, epochEnd int64
	epoch            uint32
	cold             bool // no cells yet
	pair             bool // scopes[0] a host's, scopes[1] a prefix's, one window
	// host and prefix are scopes[0] and scopes[1] when pair.
	host, prefix *gaugeScope
}

// gaugeBits sizes a scope's cells: 16 Ki of 16 bytes, 256 KiB.
const gaugeBits = 14

// How a scope keys a destination (gaugeScope.kind).
const (
	scopeHost   = iota // the host itself
	scopePrefix        // its network of bits4 / bits6 bits (FloodScope.Bits4)
	scopeKey           // FloodScope.Key's
)

type gaugeScope struct {
	key         func(netip.Addr) (netip.Addr, bool)
	kind        uint8
	bits6       uint8
	mask4       uint32 // bits4's netmask
	start, stop uint32
	windowNs    int64
	cells       []gaugeCell
}

// gaugeCell counts the queries of a window-long epoch and the one before.
type gaugeCell struct {
	epoch     uint32
	cur, prev uint32
	on        bool
}

// NewFloodGauge returns a gauge of the scopes of rules (nil when none
// has one).
func NewFloodGauge(rules []Rule) *FloodGauge {
	var g FloodGauge
	for _, r := range rules {
		fs, ok := r.(FloodScoper)
		if !ok {
			continue
		}
		s := fs.FloodScope()
		if s.Window <= 0 || s.Start < 1 {
			continue
		}
		gs := gaugeScope{key: s.Key, kind: scopeHost, start: uint32(min(s.Start, 1<<31)), stop: uint32(min(s.Stop, s.Start, 1<<31)), windowNs: int64(s.Window)}
		switch {
		case s.Key != nil:
			gs.kind = scopeKey
		case s.Bits4 > 0 || s.Bits6 > 0:
			gs.kind, gs.mask4, gs.bits6 = scopePrefix, ^uint32(0)<<(32-min(max(s.Bits4, 0), 32)), uint8(min(max(s.Bits6, 0), 128))
		}
		g.scopes = append(g.scopes, gs)
	}
	if len(g.scopes) == 0 {
		return nil
	}
	g.setup()
	return &g
}

// setup works out how g observes a query: g.window when every scope has
// the same window, g.pair when the scopes are the usual two (a host's and
// a prefix's, icmp_flood's and icmp_carpet_flood's); the cells come at
// the first query.
func (g *FloodGauge) setup() {
	g.window, g.epochEnd, g.cold = g.scopes[0].windowNs, 0, true
	for _, s := range g.scopes {
		if s.windowNs != g.window {
			g.window = 0
		}
	}
	g.pair = g.window != 0 && len(g.scopes) == 2 && g.scopes[0].kind == scopeHost && g.scopes[1].kind == scopePrefix
	if g.pair {
		g.host, g.prefix = &g.scopes[0], &g.scopes[1]
	}
}

// IsQuery tells whether p is a query request a flood gauge counts: an
// echo request, or an ICMPv4 timestamp, information or address-mask
// request, whole or as a first fragment.
func IsQuery(p *Packet) bool {
	if !p.HasICMP || p.ICMPCode != 0 {
		return false
	}
	if p.IPv6 {
		return p.ICMPType == ICMPv6EchoRequest
	}
	return p.ICMPType < 32 && queryTypes4>>p.ICMPType&1 != 0
}

// queryTypes4 has bit t set for the ICMPv4 query types t: echo (8),
// timestamp (13), information (15) and address-mask (17) requests.
const queryTypes4 = 1<<ICMPv4EchoRequest | 1<<13 | 1<<15 | 1<<17

// Observe counts p, a query (IsQuery), captured at tn (Unix ns, the raw
// capture time), and tells whether its destination is flooded in any
// scope. It does not allocate once the cells are.
//
// This is the usual case written out: the usual two scopes (g.pair: a
// host's, a prefix's, one window) in the last query's window (g.epoch,
// no division), their cells' fast path inline (countCell does not
// inline), no loop and no call but for an IPv6 prefix; observeOther
// does the rest.
func (g *FloodGauge) Observe(p *Packet, tn int64) bool {
	ep, left := g.epoch, g.epochEnd-tn
	if left <= 0 || left > g.window || tn < 0 || !g.pair || g.cold {
		return g.observeOther(p, tn)
	}
	hs, ps := g.host, g.prefix
	var hh, hp uint64
	counted := true // by the prefix scope (not multicast)
	if p.Dst.Is4() {
		b := p.Dst.As4()
		a4 := binary.BigEndian.Uint32(b[:])
		if !p.dstHashed {
			p.dstHash, p.dstHashed = sketch.Mix64(0xffff<<32|uint64(a4)), true // sketch.HashAddr(p.Dst)
		}
		hh = p.dstHash
		if a4>>28 == 0xe { // multicast
			counted = false
		} else {
			hp = sketch.Mix64(0xffff<<32 | uint64(a4&ps.mask4)) // sketch.HashAddr of the network
		}
	} else {
		hh = p.DstHash()
		hp, counted = prefixHash6(p.Dst, ps.bits6)
	}
	var flooded bool
	c := &hs.cells[hh>>(64-gaugeBits)]
	if cur := c.cur + 1; c.epoch == ep && cur <= 1<<31 && (cur >= hs.start || uint64(cur)+uint64(c.prev) < uint64(hs.stop)) {
		c.cur, c.on = cur, cur >= hs.start
		flooded = c.on
	} else {
		flooded = hs.countSlow(c, ep, left)
	}
	if !counted {
		return flooded
	}
	c = &ps.cells[hp>>(64-gaugeBits)]
	if cur := c.cur + 1; c.epoch == ep && cur <= 1<<31 && (cur >= ps.start || uint64(cur)+uint64(c.prev) < uint64(ps.stop)) {
		c.cur, c.on = cur, cur >= ps.start
		return flooded || c.on
	}
	return ps.countSlow(c, ep, left) || flooded
}

// observeOther is Observe of a query out of the last query's window, the
// first one (the cells allocated), or for other scopes than the usual
// two: the window's number and what is left of it after tn, shared by
// every scope (g.window; a division), else worked out per scope
// (observeEach).
//
//go:noinline
func (g *FloodGauge) observeOther(p *Packet, tn int64) bool {
	if g.cold {
		g.alloc()
	}
	if g.window == 0 {
		return g.observeEach(p, tn)
	}
	q := tn / g.window
	ep, left := uint32(q), (q+1)*g.window-tn
	if tn >= 0 { // (a time before 1970 is not cached: its quotient rounds up)
		g.epoch, g.epochEnd = ep, (q+1)*g.window
		if g.pair {
			return g.Observe(p, tn) // now in the cached window
		}
	}
	flooded := false
	for i := range g.scopes {
		s := &g.scopes[i]
		if h, ok := s.hash(p); ok && s.countCell(&s.cells[h>>(64-gaugeBits)], ep, left) {
			flooded = true
		}
	}
	return flooded
}

// countCell counts a query in c, a cell of s, in epoch ep (left: the
// window's nanoseconds after the packet) and returns its state. The
// sliding window's estimate is this epoch's count and the share of the
// previous one still in the window: at least cur, at most cur + prev, so
// most queries need no product or quotient. (countCell is over the
// inliner's budget: Observe writes its usual case inline for the two
// usual scopes; countSlow does the rest.)
func (s *gaugeScope) countCell(c *gaugeCell, ep uint32, left int64) bool {
	if cur := c.cur + 1; c.epoch == ep && cur <= 1<<31 && (cur >= s.start || uint64(cur)+uint64(c.prev) < uint64(s.stop)) {
		c.cur, c.on = cur, cur >= s.start
		return c.on
	}
	return s.countSlow(c, ep, left)
}

// countSlow is countCell for a cell that moves to another epoch or whose
// estimate is near the levels.
//
//go:noinline
func (s *gaugeScope) countSlow(c *gaugeCell, ep uint32, left int64) bool {
	if c.epoch != ep {
		c.roll(ep)
	}
	c.cur += 1 - c.cur>>31
	if n := uint64(c.cur) + uint64(c.prev); n < uint64(s.stop) || c.cur >= s.start {
		c.on = n >= uint64(s.stop)
		return c.on
	}
	est := uint64(c.cur) + uint64(c.prev)*uint64(left)/uint64(s.windowNs)
	switch {
	case est >= uint64(s.start):
		c.on = true
	case est < uint64(s.stop):
		c.on = false
	}
	return c.on
}

// alloc makes the scopes' cells (at the first query).
func (g *FloodGauge) alloc() {
	for i := range g.scopes {
		g.scopes[i].cells = make([]gaugeCell, 1<<gaugeBits)
	}
	g.cold = false
}

// observeEach is Observe for scopes of different windows: each scope's
// epoch worked out apart.
func (g *FloodGauge) observeEach(p *Packet, tn int64) bool {
	flooded := false
	for i := range g.scopes {
		s := &g.scopes[i]
		h, ok := s.hash(p)
		if !ok {
			continue
		}
		q := tn / s.windowNs
		if s.countCell(&s.cells[h>>(64-gaugeBits)], uint32(q), (q+1)*s.windowNs-tn) {
			flooded = true
		}
	}
	return flooded
}

// hash returns the hash (sketch.HashAddr) of what s counts p's
// destination under, and false when s does not count it.
func (s *gaugeScope) hash(p *Packet) (uint64, bool) {
	switch s.kind {
	case scopeHost:
		return p.DstHash(), true
	case scopePrefix:
		if p.Dst.Is4() {
			b := p.Dst.As4()
			a4 := binary.BigEndian.Uint32(b[:])
			if a4>>28 == 0xe { // multicast
				return 0, false
			}
			return sketch.Mix64(0xffff<<32 | uint64(a4&s.mask4)), true
		}
		return prefixHash6(p.Dst, s.bits6)
	}
	k, ok := s.key(p.Dst)
	if !ok {
		return 0, false
	}
	return sketch.HashAddr(k), true
}

// prefixHash6 is sketch.HashAddr of the network of the IPv6 address
// dst's bits6 leading bits, and false when dst is multicast (as
// netip.Addr.IsMulticast, an IPv4-mapped group included).
func prefixHash6(dst netip.Addr, bits6 uint8) (uint64, bool) {
	b := dst.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	if hi>>56 == 0xff || hi == 0 && lo>>28 == 0xffffe {
		return 0, false
	}
	if bits6 <= 64 {
		hi, lo = hi&(^uint64(0)<<(64-bits6)), 0
	} else {
		lo &= ^uint64(0) << (128 - bits6)
	}
	if hi == 0 {
		return sketch.Mix64(lo), true
	}
	return sketch.Mix64(sketch.Mix64(hi) ^ lo), true
}

// roll moves c to epoch ep (the packet time's window number), c.epoch
// being another: the next epoch's count starts, the current one becomes
// the previous; after a longer gap both start from zero. A packet
// slightly out of order (the epoch before) counts in the current one.
func (c *gaugeCell) roll(ep uint32) {
	switch ep - c.epoch {
	case ^uint32(0):
	case 1:
		c.epoch, c.prev, c.cur = ep, c.cur, 0
	default:
		*c = gaugeCell{epoch: ep}
	}
}

// Share returns a new gauge of g's scopes (no counts) whose levels are
// 1/n of g's: with n fronts each seeing a share of the flows (AF_PACKET
// fanout spreads a spoofed flood evenly over its sockets), each front
// gauges its share. A flood carried by one flow then marks at 1/n of the
// level. Share of a nil gauge is nil.
func (g *FloodGauge) Share(n int) *FloodGauge {
	if g == nil {
		return nil
	}
	n = max(n, 1)
	out := &FloodGauge{scopes: make([]gaugeScope, len(g.scopes))}
	for i, s := range g.scopes {
		out.scopes[i] = gaugeScope{key: s.key, kind: s.kind, mask4: s.mask4, bits6: s.bits6, start: max(s.start/uint32(n), 1), stop: s.stop / uint32(n), windowNs: s.windowNs}
	}
	out.setup()
	return out
}
