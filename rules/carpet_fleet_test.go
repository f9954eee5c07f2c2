package rules_test

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
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
