package detector

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector/sketch"
)

// refGauge is the flood gauge as it was written before its fast path (a
// division, a product and a quotient per scope and query): the reference
// the gauge must agree with, query for query.
type refGauge struct{ scopes []refScope }

type refScope struct {
	fs    FloodScope
	cells [1 << gaugeBits]gaugeCell
}

func newRefGauge(scopes []FloodScope) *refGauge {
	g := &refGauge{}
	for _, fs := range scopes {
		if fs.Window <= 0 || fs.Start < 1 {
			continue
		}
		g.scopes = append(g.scopes, refScope{fs: fs})
	}
	return g
}

// key is what the scope counts dst under.
func (s *refScope) key(dst netip.Addr) (netip.Addr, bool) {
	switch {
	case s.fs.Key != nil:
		return s.fs.Key(dst)
	case s.fs.Bits4 > 0 || s.fs.Bits6 > 0:
		if dst.IsMulticast() {
			return netip.Addr{}, false
		}
		if dst.Is4() {
			return netip.PrefixFrom(dst, min(max(s.fs.Bits4, 0), 32)).Masked().Addr(), true
		}
		return netip.PrefixFrom(dst, min(max(s.fs.Bits6, 0), 128)).Masked().Addr(), true
	}
	return dst, true
}

func (g *refGauge) observe(dst netip.Addr, tn int64, n int) bool {
	flooded := false
	for i := range g.scopes {
		s := &g.scopes[i]
		k, ok := s.key(dst)
		if !ok {
			continue
		}
		start := uint32(min(s.fs.Start, 1<<31))
		stop := uint32(min(s.fs.Stop, s.fs.Start, 1<<31))
		start, stop = max(start/uint32(n), 1), stop/uint32(n)
		w := int64(s.fs.Window)
		q := tn / w
		ep, left := uint32(q), w-(tn-q*w)
		c := &s.cells[sketch.HashAddr(k)>>(64-gaugeBits)]
		switch ep - c.epoch {
		case 0, ^uint32(0):
		case 1:
			c.epoch, c.prev, c.cur = ep, c.cur, 0
		default:
			*c = gaugeCell{epoch: ep}
		}
		if c.cur < 1<<31 {
			c.cur++
		}
		est := uint64(c.cur) + uint64(c.prev)*uint64(left)/uint64(w)
		switch {
		case est >= uint64(start):
			c.on = true
		case est < uint64(stop):
			c.on = false
		}
		if c.on {
			flooded = true
		}
	}
	return flooded
}

// gaugeScopeRule is a rule that only has a flood scope.
type gaugeScopeRule struct{ fs FloodScope }

func (r gaugeScopeRule) Info() RuleInfo            { return RuleInfo{Name: "scope"} }
func (r gaugeScopeRule) Observe(*Packet, Reporter) {}
func (r gaugeScopeRule) Tick(time.Time, Reporter)  {}
func (r gaugeScopeRule) FloodScope() FloodScope    { return r.fs }

// The gauge's verdicts are the reference's, query for query, over
// streams that cross every level up and down: floods of one host and
// carpets of a prefix ramping up and dying down, background queries
// anywhere, IPv6, multicast, packets slightly and far out of order, gaps
// of many windows, queries on a window's edge, times before 1970; with the default scopes (host and
// inline prefix, one window), scopes of different windows, a Key scope,
// and a dispatcher's shares (Share).
func TestGaugeMatchesReference(t *testing.T) {
	host := FloodScope{Start: 1000, Stop: 500, Window: time.Second}
	prefix := FloodScope{Start: 5000, Stop: 2500, Window: time.Second, Bits4: 24, Bits6: 64}
	key := FloodScope{Start: 300, Stop: 100, Window: 2 * time.Second, Key: func(dst netip.Addr) (netip.Addr, bool) {
		if !dst.Is4() {
			return netip.Addr{}, false
		}
		return netip.PrefixFrom(dst, 16).Masked().Addr(), true
	}}
	short := FloodScope{Start: 40, Stop: 39, Window: 100 * time.Millisecond}
	for _, tc := range []struct {
		name   string
		scopes []FloodScope
		share  int
		t0     int64
	}{
		{"default scopes", []FloodScope{host, prefix}, 1, 1765100000e9},
		{"different windows and a key", []FloodScope{host, prefix, key, short}, 1, 1765100000e9},
		{"a share of 3", []FloodScope{host, prefix}, 3, 1765100000e9},
		{"one scope, before 1970", []FloodScope{host}, 1, -5e9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rules []Rule
			for _, fs := range tc.scopes {
				rules = append(rules, gaugeScopeRule{fs})
			}
			g := NewFloodGauge(rules)
			if tc.share > 1 {
				g = g.Share(tc.share)
			}
			ref := newRefGauge(tc.scopes)
			r := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			victim := netip.MustParseAddr("10.1.2.3")
			carpet := [3]byte{192, 0, 2}
			victim6 := netip.MustParseAddr("2001:db8:1:2::5")
			tn := tc.t0
			flooded, clear := 0, 0
			// Phases of 0.5 s to 3 s, each at a rate drawn from 100 to
			// 20,000 queries a second, the flood's share varying.
			for phase := 0; phase < 40; phase++ {
				pps := 100 + r.IntN(20000)
				end := tn + int64(500+r.IntN(2500))*1e6
				if phase%9 == 8 {
					tn += int64(r.IntN(10)) * 1e9 // a gap of up to 10 windows
				}
				toVictim, toCarpet := r.Float64(), r.Float64()
				for tn < end {
					tn += int64(r.ExpFloat64() * 1e9 / float64(pps))
					at := tn
					switch r.IntN(50) {
					case 0:
						at -= int64(r.IntN(3)) * int64(time.Second) / 2 // out of order
					case 1:
						at -= at % int64(100*time.Millisecond) // on a window's edge
					}
					var dst netip.Addr
					switch x := r.Float64(); {
					case x < toVictim*0.6:
						dst = victim
					case x < toVictim*0.6+toCarpet*0.3:
						dst = netip.AddrFrom4([4]byte{carpet[0], carpet[1], carpet[2], byte(r.IntN(256))})
					case x < 0.9:
						dst = victim6
						if r.IntN(2) == 0 {
							b := dst.As16()
							b[15] = byte(r.IntN(256))
							dst = netip.AddrFrom16(b)
						}
					case x < 0.93:
						dst = [...]netip.Addr{netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("ff02::1"), netip.MustParseAddr("::ffff:239.1.1.1")}[r.IntN(3)]
					default:
						var b [4]byte
						for i := range b {
							b[i] = byte(r.Uint32())
						}
						dst = netip.AddrFrom4(b)
					}
					p := Packet{Dst: dst, IPv6: dst.Is6(), HasICMP: true, ICMPType: ICMPv4EchoRequest}
					if p.IPv6 {
						p.ICMPType = ICMPv6EchoRequest
					}
					got, want := g.Observe(&p, at), ref.observe(dst, at, tc.share)
					if got != want {
						t.Fatalf("phase %d, query to %v at %d: the gauge says flooded=%v, the reference %v", phase, dst, at, got, want)
					}
					if got {
						flooded++
					} else {
						clear++
					}
				}
			}
			if flooded < 1000 || clear < 1000 {
				t.Fatalf("%d flooded and %d clear verdicts: the stream does not cross the levels both ways", flooded, clear)
			}
		})
	}
}
