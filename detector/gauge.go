package detector

import (
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
		g.scopes = append(g.scopes, gaugeScope{key: s.Key, start: uint32(min(s.Start, 1<<31)), stop: uint32(min(s.Stop, s.Start, 1<<31)), windowNs: int64(s.Window)})
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
	for i := range g.scopes {
		s := &g.scopes[i]
		var h uint64
		if s.key == nil {
			h = p.DstHash()
		} else {
			k, ok := s.key(p.Dst)
			if !ok {
				continue
			}
			h = sketch.HashAddr(k)
		}
		if s.cells == nil {
			s.cells = make([]gaugeCell, 1<<gaugeBits)
		}
		if s.observe(&s.cells[h>>(64-gaugeBits)], tn) {
			flooded = true
		}
	}
	return flooded
}

// observe counts a query in c at tn and returns the cell's state.
func (s *gaugeScope) observe(c *gaugeCell, tn int64) bool {
	ep := uint32(tn / s.windowNs)
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
	left := s.windowNs - tn%s.windowNs
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
		out.scopes[i] = gaugeScope{key: s.key, start: max(s.start/uint32(n), 1), stop: s.stop / uint32(n), windowNs: s.windowNs}
	}
	return out
}
