package rules_test

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/rules"
)

// TestCarpetFleetReport: with fleet reporting on, a carpet under way is
// reported once an interval — its 10 buckets hold every packet the rule
// counted in the interval — and the packets between two reports cost no
// allocation (observations are built at the interval, not per packet).
func TestCarpetFleetReport(t *testing.T) {
	// 38,000 packets at 40,000/s over 254 hosts: 0.95 s.
	frames := carpet(netip.MustParsePrefix("192.0.2.0/24"), 254, 40000, 38000, addr("198.51.100.7"), true)
	var reports []detector.Observation
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), rules.NewCarpet(rules.DefaultCarpetConfig()))
	if err != nil {
		t.Fatal(err)
	}
	e.SetFleet(time.Second, 0.125, func(o *detector.Observation) { reports = append(reports, *o) })
	base := frames[0].Time.Truncate(time.Second).Add(time.Second) // an interval's start
	shift := base.Sub(frames[0].Time)
	i := 0
	feed := func() {
		f := frames[i%len(frames)]
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time.Add(shift), len(f.Data))
		i++
	}
	for range 20000 {
		feed()
	}
	allocs := testing.AllocsPerRun(100, func() {
		for range 100 { // 10,000 packets, within the first interval
			feed()
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per 100 packets of a carpet with fleet reporting on", allocs)
	}
	for i < len(frames) {
		feed()
	}
	if len(reports) != 0 {
		t.Fatalf("%d reports within the first interval", len(reports))
	}
	e.Advance(base.Add(time.Second + 50*time.Millisecond))
	if len(reports) != 1 {
		t.Fatalf("%d reports after the interval, want 1", len(reports))
	}
	o := reports[0]
	var echo uint64
	for _, s := range o.Echo[:o.Slots] {
		echo += uint64(s.Packets)
	}
	if o.Rule != "icmp_carpet_flood" || o.Key != netip.MustParseAddr("192.0.2.0") || o.Bits != 24 || o.Slots != 10 ||
		time.Unix(0, o.FirstSlot*int64(o.SlotWidth)).UTC() != base.UTC() || o.AttackStarted.IsZero() {
		t.Errorf("observation %+v", o)
	}
	// The rule counts from the packet that showed a second host on, with
	// its windows seeded by the admission filter.
	if echo < 37500 || echo > 38000 {
		t.Errorf("the interval's buckets hold %d echo requests, the carpet sent 38,000", echo)
	}
	// A new spoofed source each packet, 254 hosts: the registers count
	// them (64 registers: 13 % standard error; 3 of them allowed).
	if s, h := float64(o.Sources.Estimate()), float64(o.HostsHLL.Estimate()); math.Abs(s-38000) > 0.39*38000 || math.Abs(h-254) > 0.39*254 {
		t.Errorf("registers estimate %.0f sources and %.0f hosts, want about 38,000 and 254", s, h)
	}
	e.Advance(base.Add(3 * time.Second))
	if len(reports) != 1 {
		t.Errorf("a quiet prefix was reported again: %d reports", len(reports))
	}
}

// TestCarpetFleetHosts: a fleet carpet over a /64 and 50,000 hosts
// saturates the 512-bit bitmap (about 3,200 at most); the sensors' merged
// host registers give its alerts' hosts instead, within their error. Over
// a /24 the bitmap's count stands.
func TestCarpetFleetHosts(t *testing.T) {
	for _, tc := range []struct {
		key        string
		bits       int
		hosts      int
		lo, hi     uint64
		bitmapFull bool
	}{
		{"2001:db8:1::", 64, 50000, 30500, 69500, true},
		{"192.0.2.0", 24, 200, 190, 210, false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			var evs []*detector.Event
			e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, ev) }), rules.NewCarpet(rules.DefaultCarpetConfig()))
			if err != nil {
				t.Fatal(err)
			}
			slot := ruleEpoch.UnixNano() / int64(100*time.Millisecond)
			var hll sketch.MiniHLL
			var bm [8]uint64
			base := addr(tc.key).As16()
			for i := range tc.hosts {
				b := base
				b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
				a := netip.AddrFrom16(b)
				if tc.bits == 24 {
					a = netip.AddrFrom4([4]byte{b[0], b[1], b[2], byte(i)})
				}
				h := sketch.HashAddr(a)
				hll.AddHash(h)
				bm[h%512/64] |= 1 << (h % 64) // the rule's hostBitmap.add
			}
			if tc.bitmapFull {
				bm = [8]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
			}
			for s := range 3 {
				o := &detector.Observation{Rule: "icmp_carpet_flood", Key: addr(tc.key), Bits: tc.bits, SlotWidth: 100 * time.Millisecond,
					FirstSlot: slot + int64(10*s), Slots: 10, Hosts: bm, HostsHLL: hll, HostTotal: 10000}
				for i := range 10 {
					o.Echo[i] = detector.SlotCount{Packets: 1000, Bytes: 98000}
					o.Any[i] = o.Echo[i]
				}
				e.ObserveFleet(o)
			}
			e.Close(detector.EndInputEnd)
			if len(evs) != 2 {
				t.Fatalf("%d events, want a start and an end", len(evs))
			}
			if h, _ := evs[1].Extra["hosts"].(uint64); h < tc.lo || h > tc.hi {
				t.Errorf("hosts %v, want %d (%d to %d)", evs[1].Extra["hosts"], tc.hosts, tc.lo, tc.hi)
			}
		})
	}
}
