package rules_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/shard"
	"github.com/icmpids/icmpids/rules"
)

// replayWorkers feeds frames through a shard.Set of n engines running the
// default rules (as icmpids replay --workers n does) and returns the
// attacks started, as startsOf lists them.
func replayWorkers(t testing.TB, frames []synth.Frame, n int) []string {
	t.Helper()
	var evs []*detector.Event
	first := defaultRules(t)
	var group func(*detector.Packet) bool
	for _, r := range first {
		if g, ok := r.(shard.Grouper); ok {
			group = g.Group
		}
	}
	set, err := shard.New(shard.Config{Workers: n, Group: group}, detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, ev) }),
		func(i int, sink detector.Sink) (*detector.Engine, error) {
			rs := first
			if i > 0 {
				rs = defaultRules(t)
			}
			return detector.New(detector.DefaultConfig(), sink, rs...)
		})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		set.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	set.Close(detector.EndInputEnd)
	return startsOf(evs)
}

// spoofedCarpet returns count echo requests at rate to the hosts of
// prefix from sources spoofed sources, each of which hits many hosts
// (packet i: source i%sources, host (i/sources + 7*i) % hosts).
func spoofedCarpet(prefix netip.Prefix, sources, hosts int, rate float64, count int, seed uint64) []synth.Frame {
	v4 := prefix.Addr().Is4()
	m := synth.Msg{Type: 8, Rest: make([]byte, 60)}
	if !v4 {
		m.Type = 128
	}
	srcs := make([]netip.Addr, sources)
	for i := range srcs {
		srcs[i] = synth.RandomAddr(seed+uint64(i)*0x9e3779b97f4a7c15, v4)
	}
	return seq(m, ruleEpoch, rate, count, func(i int, m *synth.Msg) {
		m.Src = srcs[i%sources]
		m.Dst = nth(prefix.Addr(), 1+(i/sources+7*i)%hosts)
		m.Rest[2], m.Rest[3] = byte(i>>8), byte(i)
	})
}

// randomFlood returns an echo flood of victim from sources spoofed
// sources, perSource packets each with random 64-byte data, at rate:
// round robin over the sources, or each source's packets in a row
// (burst); with answered, the victim echoes every request.
func randomFlood(victim netip.Addr, sources, perSource int, rate float64, burst, answered bool) []synth.Frame {
	v4 := victim.Is4()
	srcs := make([]netip.Addr, sources)
	for i := range srcs {
		srcs[i] = synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15+5, v4)
	}
	data := random(77, 64, 64)
	var out []synth.Frame
	step := time.Duration(float64(time.Second) / rate)
	for i := 0; i < sources*perSource; i++ {
		src, n := i%sources, i/sources
		if burst {
			src, n = i/perSource, i%perSource
		}
		at := ruleEpoch.Add(time.Duration(i) * step)
		d := data(i)
		out = append(out, echoData(srcs[src], victim, false, uint16(src), uint16(n), d).At(at))
		if answered {
			out = append(out, echoData(victim, srcs[src], true, uint16(src), uint16(n), d).At(at.Add(step/2)))
		}
	}
	return out
}

// One attack is one attack (issue 26): a spoofed carpet is one
// icmp_carpet_flood and no sweeps; a spoofed flood with random data is
// one icmp_flood and no tunnels — with one engine and with several. Their
// benign twins: a scanner sweeping another prefix during a carpet is
// still a sweep, a tunnel beside a flood still a tunnel, and a monitoring
// server's rounds raise no more than the one first-round sweep the README
// documents.
func TestOneAttackIsOneAttack(t *testing.T) {
	p24 := netip.MustParsePrefix("192.0.2.0/24")
	p64 := netip.MustParsePrefix("2001:db8:1::/64")
	victim := addr("10.0.0.5")
	scanner := addr("10.0.0.128")
	tests := []struct {
		name   string
		frames []synth.Frame
		want   []string
	}{
		{"spoofed carpet over a /24 from 300 sources", spoofedCarpet(p24, 300, 254, 20000, 60000, 1),
			[]string{"icmp_carpet_flood 192.0.2.0"}},
		{"spoofed carpet over a /24 from 500 sources, 10k/s", spoofedCarpet(p24, 500, 254, 10000, 40000, 2),
			[]string{"icmp_carpet_flood 192.0.2.0"}},
		{"spoofed carpet over an IPv6 /64 from 300 sources", spoofedCarpet(p64, 300, 1000, 20000, 60000, 3),
			[]string{"icmp_carpet_flood 2001:db8:1::"}},
		{"spoofed carpet with one host flooded in it", synth.Merge(spoofedCarpet(p24, 495, 254, 20000, 60000, 4),
			carpet(netip.MustParsePrefix("192.0.2.200/32"), 1, 5000, 15000, addr("203.0.113.1"), true)),
			[]string{"icmp_carpet_flood 192.0.2.0", "icmp_flood 192.0.2.201"}},
		{"1,000-source flood with random data", randomFlood(victim, 1000, 30, 10000, false, false), []string{"icmp_flood 10.0.0.5"}},
		{"1,000-source flood with random data, each source a burst", randomFlood(victim, 1000, 30, 10000, true, false), []string{"icmp_flood 10.0.0.5"}},
		{"1,000-source flood with random data, answered", randomFlood(victim, 1000, 30, 10000, false, true), []string{"icmp_flood 10.0.0.5"}},
		{"IPv6 1,000-source flood with random data", randomFlood(addr("2001:db8::5"), 1000, 30, 10000, false, false), []string{"icmp_flood 2001:db8::5"}},
		// Benign twins of the classification: it takes nothing else.
		{"a sweep of another /24 during a carpet", synth.Merge(spoofedCarpet(p24, 300, 254, 20000, 60000, 5), probes(scanner, addr("10.0.1.0"), 8, 254, 100, 254)),
			[]string{"icmp_carpet_flood 192.0.2.0", "icmp_sweep 10.0.0.128"}},
		{"a tunnel during a flood of another host", synth.Merge(randomFlood(victim, 1000, 30, 10000, false, false),
			conversation(addr("192.168.1.10"), addr("203.0.113.50"), 40, 100*time.Millisecond, random(1, 40, 300), random(2, 40, 300))),
			[]string{"icmp_flood 10.0.0.5", "icmp_tunnel 192.168.1.10"}},
		// A tunnel fast enough to flood its server is both.
		{"a tunnel at 2,000 requests/s", conversation(addr("192.168.1.10"), addr("203.0.113.50"), 6000, 500*time.Microsecond, random(3, 40, 300), random(4, 40, 300)),
			[]string{"icmp_flood 203.0.113.50", "icmp_tunnel 192.168.1.10"}},
		{"a monitoring server pinging 300 hosts every 10 s, answered", func() []synth.Frame {
			mon := addr("10.0.0.10")
			var fs []synth.Frame
			for round := 0; round < 30; round++ {
				for i := 0; i < 300; i++ {
					at := ruleEpoch.Add(time.Duration(round)*10*time.Second + time.Duration(i)*3*time.Millisecond)
					h := nth(addr("10.2.0.0"), 1+i)
					fs = append(fs, echoData(mon, h, false, 9, uint16(round), linuxPing(56)(round)).At(at),
						echoData(h, mon, true, 9, uint16(round), linuxPing(56)(round)).At(at.Add(time.Millisecond)))
				}
			}
			return synth.Merge(fs)
		}(), []string{"icmp_sweep 10.0.0.10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 2, 4} {
				if got := replayWorkers(t, tc.frames, n); !equal(got, tc.want) {
					t.Errorf("--workers %d: %d attacks %v, want %v", n, len(got), summarize(got), tc.want)
				}
			}
		})
	}
}

// With AF_PACKET fanout several fronts each route a share of the flows,
// and each gauges its share of a flood at its share of the level: a
// spoofed carpet spread over two fronts is still one carpet, no sweeps.
func TestOneAttackSeveralFronts(t *testing.T) {
	frames := spoofedCarpet(netip.MustParsePrefix("192.0.2.0/24"), 300, 254, 8000, 40000, 11)
	var mu sync.Mutex
	var evs []*detector.Event
	set, err := shard.New(shard.Config{Workers: 2}, detector.SinkFunc(func(ev *detector.Event) { mu.Lock(); evs = append(evs, ev); mu.Unlock() }),
		func(_ int, sink detector.Sink) (*detector.Engine, error) {
			return detector.New(detector.DefaultConfig(), sink, defaultRules(t)...)
		})
	if err != nil {
		t.Fatal(err)
	}
	var fronts [2]*shard.Front
	for i := range fronts {
		if fronts[i], err = set.Front(); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range frames {
		// The kernel's flow hash: by source here (one flow per spoofed source).
		fronts[f.Src().As4()[3]&1].HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	set.Close(detector.EndInputEnd)
	if got := startsOf(evs); !equal(got, []string{"icmp_carpet_flood 192.0.2.0"}) {
		t.Errorf("%d attacks %v, want the carpet only", len(got), summarize(got))
	}
}

// summarize shortens a long list of attacks for a test failure.
func summarize(starts []string) []string {
	if len(starts) <= 6 {
		return starts
	}
	return append(starts[:6:6], "...")
}

// The flood classification costs no allocation per packet, in an engine
// (its own gauge) as on a dispatcher's marks.
func TestFloodGaugeDoesNotAllocate(t *testing.T) {
	frames := synth.Merge(spoofedCarpet(netip.MustParsePrefix("192.0.2.0/24"), 300, 254, 20000, 20000, 9),
		randomFlood(addr("10.0.0.5"), 100, 100, 10000, false, true))
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), defaultRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	i := 0
	allocs := testing.AllocsPerRun(50, func() {
		for k := 0; k < 100; k++ {
			f := frames[i%len(frames)]
			ts := f.Time.Add(time.Duration(i/len(frames)) * 5 * time.Second)
			if k%2 == 0 {
				e.HandleFrame(detector.LinkEthernet, f.Data, ts, len(f.Data))
			} else {
				e.HandleMarkedFrame(detector.LinkEthernet, f.Data, ts, len(f.Data), false, detector.MarkFlooded)
			}
			i++
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per 100 packets", allocs)
	}
}

var _ = rules.DefaultConfig
