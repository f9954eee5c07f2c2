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
}

// gaugeBits sizes a scope's cells: 16 Ki of 16 bytes, 256 KiB.
const gaugeBits = 14

type gaugeScope struct {
	key         func(netip.Addr) (netip.Addr, bool)
	prefix      bool   // key by the network of bits4 / bits6 bits (FloodScope.Bits4)
	mask4       uint32 // bits4's netmask
	bits6       uint8
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
		gs := gaugeScope{key: s.Key, start: uint32(min(s.Start, 1<<31)), stop: uint32(min(s.Stop, s.Start, 1<<31)), windowNs: int64(s.Window)}
		if s.Key == nil && (s.Bits4 > 0 || s.Bits6 > 0) {
			gs.prefix, gs.mask4, gs.bits6 = true, ^uint32(0)<<(32-min(max(s.Bits4, 0), 32)), uint8(min(max(s.Bits6, 0), 128))
		}
		g.scopes = append(g.scopes, gs)
	}
	if len(g.scopes) == 0 {
		return nil
	}
	return &g
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
	switch p.ICMPType {
	case ICMPv4EchoRequest, 13, 15, 17:
		return true
	}
	return false
}

// Observe counts p, a query (IsQuery), captured at tn (Unix ns, the raw
// capture time), and tells whether its destination is flooded in any
// scope. It does not allocate once the cells are.
func (g *FloodGauge) Observe(p *Packet, tn int64) bool {
	flooded := false
	// The window's epoch and what is left of it, worked out once for the
	// scopes that share a window (all of them, by default).
	var w, left int64
	var ep uint32
	v4 := p.Dst.Is4()
	var a4 uint32 // an IPv4 destination, hashed here without a call
	if v4 {
		b := p.Dst.As4()
		a4 = binary.BigEndian.Uint32(b[:])
	}
	for i := range g.scopes {
		s := &g.scopes[i]
		var h uint64
		switch {
		case s.prefix && v4:
			if a4>>28 == 0xe { // multicast
				continue
			}
			h = sketch.Mix64(0xffff<<32 | uint64(a4&s.mask4)) // sketch.HashAddr of the network
		case s.prefix:
			var ok bool
			if h, ok = prefixHash6(p.Dst, s.bits6); !ok {
				continue
			}
		case s.key == nil && v4 && !p.dstHashed:
			h = sketch.Mix64(0xffff<<32 | uint64(a4)) // sketch.HashAddr(p.Dst)
			p.dstHash, p.dstHashed = h, true
		case s.key == nil:
			h = p.DstHash()
		default:
			k, ok := s.key(p.Dst)
			if !ok {
				continue
			}
			h = sketch.HashAddr(k)
		}
		if s.cells == nil {
			s.cells = make([]gaugeCell, 1<<gaugeBits)
		}
		if s.windowNs != w {
			w = s.windowNs
			q := tn / w
			ep, left = uint32(q), w-(tn-q*w)
		}
		if s.observe(&s.cells[h>>(64-gaugeBits)], ep, left) {
			flooded = true
		}
	}
	return flooded
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

// observe counts a query in c in epoch ep (the packet time's window
// number; left: the window's nanoseconds after the packet) and returns
// the cell's state.
func (s *gaugeScope) observe(c *gaugeCell, ep uint32, left int64) bool {
	switch ep - c.epoch {
	case 0, ^uint32(0): // this epoch, or a packet slightly out of order
	case 1:
		c.epoch, c.prev, c.cur = ep, c.cur, 0
	default:
		*c = gaugeCell{epoch: ep}
	}
	if c.cur < 1<<31 {
		c.cur++
	}
	// The sliding window's estimate: this epoch's count and the share of
	// the previous one still in the window.
	est := uint64(c.cur) + uint64(c.prev)*uint64(left)/uint64(s.windowNs)
	switch {
	case est >= uint64(s.start):
		c.on = true
	case est < uint64(s.stop):
		c.on = false
	}
	return c.on
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
		out.scopes[i] = gaugeScope{key: s.key, prefix: s.prefix, mask4: s.mask4, bits6: s.bits6, start: max(s.start/uint32(n), 1), stop: s.stop / uint32(n), windowNs: s.windowNs}
	}
	return out
}
