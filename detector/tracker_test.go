package detector_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// Two floods hit by turns, packet after packet (an IPv4 and an IPv6
// victim: the tracker keeps the attack hit last and the one before), and
// a third victim flooded alone between them: each attack's totals are its
// own packets, every one of them.
func TestTrackerAttacksHitByTurns(t *testing.T) {
	v4, v6, v3 := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("2001:db8::5"), netip.MustParseAddr("10.0.0.9")
	e, events := collectingEngine(t)
	sent := map[netip.Addr]uint64{}
	ts := epoch
	send := func(dst netip.Addr, i int) {
		src := synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15+7, dst.Is4())
		f, err := synth.EchoFrame(synth.Echo{Src: src, Dst: dst, Seq: uint16(i)})
		if err != nil {
			t.Fatal(err)
		}
		ts = ts.Add(100 * time.Microsecond)
		e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
		sent[dst]++
	}
	for i := 0; i < 30000; i++ {
		dst := v4
		switch {
		case i >= 10000 && i < 12000 && i%2 == 0:
			dst = v3
		case i%2 == 1:
			dst = v6
		}
		send(dst, i)
	}
	e.Close(detector.EndInputEnd)
	ends := map[netip.Addr]uint64{}
	for _, ev := range *events {
		if ev.Rule.Name == "icmp_flood" && ev.Phase == detector.PhaseEnd {
			ends[ev.Target] += ev.Packets
		}
	}
	for _, dst := range []netip.Addr{v4, v6, v3} {
		if ends[dst] != sent[dst] {
			t.Errorf("%v: the icmp_flood attack counted %d packets, %d were sent", dst, ends[dst], sent[dst])
		}
	}
}

// TestTrackerTopSourcesInSpoofedFlood: an echo flood of one victim where
// every packet but the real sources' comes from a new spoofed source. The
// real sources are listed as top sources with (nearly) all their packets,
// whatever their share: at 10 % (above a sixteenth, which the summary
// alone guarantees), at 3 % and 1 % (below it: the spoofed sources used to
// push them out of the summary again and again, each time losing their
// count), two at 4 % each; a flood of spoofed sources alone lists none,
// and its distinct sources are estimated.
func TestTrackerTopSourcesInSpoofedFlood(t *testing.T) {
	victim := netip.MustParseAddr("10.0.0.5")
	real := []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")}
	const n = 20000
	for _, tc := range []struct {
		name  string
		every []int // real source i sends every every[i]-th packet
	}{
		{"one at 10 %", []int{10}},
		{"one at 3 %", []int{33}},
		{"one at 1 %", []int{100}},
		{"two at 4 %", []int{25, 25}},
		{"spoofed only", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, events := collectingEngine(t)
			sent := map[netip.Addr]uint64{}
			ts := epoch
			for i := 0; i < n; i++ {
				src := synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15+11, true)
				for j, every := range tc.every {
					if (i+j)%every == 0 {
						src = real[j]
						sent[src]++
						break
					}
				}
				f, err := synth.EchoFrame(synth.Echo{Src: src, Dst: victim, Seq: uint16(i)})
				if err != nil {
					t.Fatal(err)
				}
				ts = ts.Add(100 * time.Microsecond)
				e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
			}
			e.Close(detector.EndInputEnd)
			end := floodEnd(t, *events, victim)
			listed := map[netip.Addr]uint64{}
			for _, s := range end.TopSources {
				listed[s.Addr] = s.Packets
			}
			if len(listed) != len(sent) {
				t.Errorf("top sources %v, want the %d real sources alone", end.TopSources, len(sent))
			}
			for src, k := range sent {
				// The packets before the flood reached its stop level
				// (a twentieth of the capture) are no attack's.
				if got := listed[src]; got < k*9/10 || got > k {
					t.Errorf("%v sent %d packets, listed with %d", src, k, got)
				}
			}
			distinct := float64(n - len(sent))
			for _, k := range sent {
				distinct -= float64(k)
			}
			// The estimate is within 10 % of the attack's sources, which
			// lack the spoofed sources of the packets before it (5 %).
			if !end.SourcesEstimated || float64(end.Sources) < 0.85*distinct || float64(end.Sources) > 1.1*distinct {
				t.Errorf("sources %d (estimated %v), want about %.0f", end.Sources, end.SourcesEstimated, distinct)
			}
		})
	}
}

// floodEnd is the last icmp_flood end event on victim among events; the
// test fails without one.
func floodEnd(t *testing.T, events []*detector.Event, victim netip.Addr) *detector.Event {
	t.Helper()
	var end *detector.Event
	for _, ev := range events {
		if ev.Rule.Name == "icmp_flood" && ev.Phase == detector.PhaseEnd && ev.Target == victim {
			end = ev
		}
	}
	if end == nil {
		t.Fatal("no icmp_flood end event")
	}
	return end
}

// collectingEngine is an engine running every rule whose events the
// returned slice collects.
func collectingEngine(t *testing.T) (*detector.Engine, *[]*detector.Event) {
	t.Helper()
	evs := new([]*detector.Event)
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { *evs = append(*evs, ev) }), allRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	return e, evs
}

// TestTrackerICMPTypesInRuns: a flood whose ICMP types come in runs of
// different lengths (the tracker counts a run in one go when the type
// changes or an event reads them). Every hit of the attack is one of its
// last packets, so the end event's per-type counts are those of its last
// N packets, N their sum: a run lost or counted twice shows.
func TestTrackerICMPTypesInRuns(t *testing.T) {
	victim := netip.MustParseAddr("10.0.0.5")
	typeOf := func(i int) uint8 {
		switch j := i % 17; {
		case j < 9:
			return 8 // echo request
		case j < 14:
			return 13 // timestamp
		default:
			return 15 // information request
		}
	}
	e, events := collectingEngine(t)
	const n = 20000
	ts := epoch
	for i := 0; i < n; i++ {
		src := synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15+5, true)
		f, err := synth.EchoFrame(synth.Echo{Src: src, Dst: victim, Seq: uint16(i), Type: typeOf(i)})
		if err != nil {
			t.Fatal(err)
		}
		ts = ts.Add(100 * time.Microsecond)
		e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
	}
	e.Close(detector.EndInputEnd)
	end := floodEnd(t, *events, victim)
	got := map[uint8]uint64{}
	var hits int
	for _, tc := range end.ICMPTypes {
		got[tc.Type] += tc.Packets
		hits += int(tc.Packets)
	}
	if hits < n/2 || hits > n {
		t.Fatalf("icmp_types %v count %d packets of %d", end.ICMPTypes, hits, n)
	}
	want := map[uint8]uint64{}
	for i := n - hits; i < n; i++ {
		want[typeOf(i)]++
	}
	for typ, k := range want {
		if got[typ] != k {
			t.Errorf("type %d: counted %d, the last %d packets hold %d (icmp_types %v)", typ, got[typ], hits, k, end.ICMPTypes)
		}
	}
}
