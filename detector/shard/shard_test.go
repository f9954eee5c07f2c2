package shard_test

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/shard"
	"github.com/icmpids/icmpids/rules"
)

var epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// allRules returns every rule with its defaults, as the sensor wires them.
func allRules(tb testing.TB) []detector.Rule {
	tb.Helper()
	rs, err := rules.Enabled(rules.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

// scenario: floods of two victims (one spoofed), a smurf attack (requests
// and reflected replies), a Ping of Death, a monitoring host sweeping 400
// hosts with replies (benign), and background pings.
func scenario(t testing.TB) []synth.Frame {
	must := func(f []synth.Frame, err error) []synth.Frame {
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	var lists [][]synth.Frame
	lists = append(lists,
		must(synth.Flood{Target: netip.MustParseAddr("10.0.0.5"), Spoofed: true, Seed: 3, Start: epoch.Add(time.Second), Rate: 20000, Count: 30000}.Frames()),
		must(synth.Flood{Target: netip.MustParseAddr("2001:db8::80"), Source: netip.MustParseAddr("2001:db8:bad::7"), Start: epoch.Add(2 * time.Second), Rate: 5000, Count: 10000}.Frames()),
		must(synth.Pings(netip.MustParseAddr("10.0.0.20"), netip.MustParseAddr("10.0.0.1"), epoch, 100*time.Millisecond, 60)),
	)
	var refl []netip.Addr
	for i := 0; i < 30; i++ {
		refl = append(refl, netip.AddrFrom4([4]byte{10, 9, 0, byte(10 + i)}))
	}
	lists = append(lists, must(synth.Smurf{Victim: netip.MustParseAddr("10.0.7.7"), Broadcast: netip.MustParseAddr("10.9.0.255"),
		Reflectors: refl, Requests: true, Replies: true, Start: epoch.Add(500 * time.Millisecond), Rate: 50, Count: 150, ID: 77}.Frames()))
	var targets []netip.Addr
	for i := 0; i < 400; i++ {
		targets = append(targets, netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)}))
	}
	lists = append(lists, must(synth.Sweep{Src: netip.MustParseAddr("10.0.0.99"), Targets: targets, Start: epoch.Add(100 * time.Millisecond),
		Interval: 2 * time.Millisecond, ID: 5, PerTargetID: false}.Frames()))
	d, pieces := synth.PingTrain(netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("10.0.0.6"), 42, 65600, 1480)
	lists = append(lists, must(d.Frames(pieces, epoch.Add(3*time.Second), 10*time.Microsecond)))
	return synth.Merge(lists...)
}

type collector struct {
	mu  sync.Mutex
	evs []string
}

func (c *collector) Emit(ev *detector.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, fmt.Sprintf("%s %s %s", ev.Rule.Name, ev.Phase, ev.Target))
	c.mu.Unlock()
}

// has tells whether the event "rule phase target" came.
func (c *collector) has(ev string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.evs, ev)
}

func (c *collector) sorted() []string {
	sort.Strings(c.evs)
	return c.evs
}

// TestShardsReportWhatOneEngineReports: the same capture through one engine
// and through 2 and 3 workers raises the same attacks (rule, phase,
// target), counts every frame once, and the monitoring host's own ping
// replies raise nothing (the shadow requests reach its shard).
func TestShardsReportWhatOneEngineReports(t *testing.T) {
	frames := scenario(t)
	var one collector
	e, err := detector.New(detector.DefaultConfig(), &one, allRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	e.Close(detector.EndInputEnd)
	want := one.sorted()
	for _, ev := range want {
		if ev == "smurf start 10.0.0.99" || ev == "icmp_flood start 10.0.0.99" {
			t.Fatalf("one engine: the sweeping host raised %q", ev)
		}
	}
	if len(want) < 6 {
		t.Fatalf("the scenario raised only %v", want)
	}
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprint(n, "workers"), func(t *testing.T) {
			var got collector
			s, err := shard.New(shard.Config{Workers: n}, &got, func(i int, sink detector.Sink) (*detector.Engine, error) {
				return detector.New(detector.DefaultConfig(), sink, allRules(t)...)
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range frames {
				s.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
			}
			mid := s.Stats()
			s.Close(detector.EndInputEnd)
			if fmt.Sprint(got.sorted()) != fmt.Sprint(want) {
				t.Errorf("events\n got %v\nwant %v", got.evs, want)
			}
			if st := s.Stats(); st.Frames != uint64(len(frames)) || mid.Frames != st.Frames {
				t.Errorf("frames counted: %d (mid %d), want %d", st.Frames, mid.Frames, len(frames))
			}
		})
	}
}

// TestDispatchDoesNotAllocate: routing and batching cost no allocation.
func TestDispatchDoesNotAllocate(t *testing.T) {
	frames := scenario(t)[:5000]
	s, err := shard.New(shard.Config{Workers: 2}, detector.SinkFunc(func(*detector.Event) {}), func(i int, sink detector.Sink) (*detector.Engine, error) {
		return detector.New(detector.DefaultConfig(), sink, allRules(t)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(detector.EndInputEnd)
	ts := epoch
	feed := func() {
		for _, f := range frames[:100] {
			ts = ts.Add(10 * time.Millisecond) // slow: no attack, no event
			s.HandleFrame(detector.LinkEthernet, f.Data, ts, len(f.Data))
		}
	}
	for i := 0; i < 50; i++ {
		feed()
	}
	if a := testing.AllocsPerRun(100, feed); a != 0 {
		t.Fatalf("%.1f allocations per 100 frames", a)
	}
}

func BenchmarkDispatch(b *testing.B) {
	frames := scenario(b)
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprint(n, "workers"), func(b *testing.B) {
			s, err := shard.New(shard.Config{Workers: n}, detector.SinkFunc(func(*detector.Event) {}), func(i int, sink detector.Sink) (*detector.Engine, error) {
				return detector.New(detector.DefaultConfig(), sink, allRules(b)...)
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			ts := epoch
			i := 0
			for b.Loop() {
				f := frames[i%len(frames)]
				ts = ts.Add(time.Microsecond)
				s.HandleFrame(detector.LinkEthernet, f.Data, ts, len(f.Data))
				i++
			}
			s.Sync()
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "pkts/s")
			s.Close(detector.EndInputEnd)
		})
	}
}

// TestStatsCapacityIsTheTargetOwners: the table capacities a Set reports are
// those of the engines that own targets — with one producer, all but the
// dispatcher's own: two workers have one engine's room, three have two.
func TestStatsCapacityIsTheTargetOwners(t *testing.T) {
	one, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), allRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	capOf := func(st detector.Stats, name string) int {
		for _, tb := range st.Tables {
			if tb.Name == name {
				return tb.Cap
			}
		}
		t.Fatalf("no table %s in %v", name, st.Tables)
		return 0
	}
	want := capOf(one.Stats(), "icmp_flood.targets")
	for _, n := range []int{2, 3} {
		s, err := shard.New(shard.Config{Workers: n}, detector.SinkFunc(func(*detector.Event) {}), func(i int, sink detector.Sink) (*detector.Engine, error) {
			return detector.New(detector.DefaultConfig(), sink, allRules(t)...)
		})
		if err != nil {
			t.Fatal(err)
		}
		st := s.Stats()
		s.Close(detector.EndInputEnd)
		if got := capOf(st, "icmp_flood.targets"); got != (n-1)*want {
			t.Errorf("%d workers: icmp_flood.targets capacity %d, want %d", n, got, (n-1)*want)
		}
		if got, one := st.Frag.Cap, one.Stats().Frag.Cap; got != (n-1)*one {
			t.Errorf("%d workers: fragment table capacity %d, want %d", n, got, (n-1)*one)
		}
	}
}
