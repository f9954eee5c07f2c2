package rules_test

import (
	"math"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// epoch is the fixed packet-time origin of the scenario tests.
var epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// replay feeds frames through an engine running rs and returns the events.
func replay(t testing.TB, frames []synth.Frame, rs ...detector.Rule) []*detector.Event {
	t.Helper()
	var evs []*detector.Event
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, ev) }), rs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	e.Close(detector.EndInputEnd)
	return evs
}

func mustFrames(t testing.TB, fs []synth.Frame, err error) []synth.Frame {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func flood(t testing.TB, f synth.Flood) []synth.Frame {
	fs, err := f.Frames()
	return mustFrames(t, fs, err)
}

// typeFlood builds count ICMP messages of one type/code to dst at rate.
func typeFlood(t testing.TB, src, dst netip.Addr, typ, code uint8, rate float64, count int) []synth.Frame {
	t.Helper()
	var out []synth.Frame
	step := time.Duration(float64(time.Second) / rate)
	for i := 0; i < count; i++ {
		data, err := synth.EchoFrame(synth.Echo{Src: src, Dst: dst, Type: typ, Code: code, Seq: uint16(i)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, synth.Frame{Time: epoch.Add(time.Duration(i) * step), Data: data})
	}
	return out
}

var (
	victim4   = netip.MustParseAddr("10.0.0.5")
	attacker4 = netip.MustParseAddr("198.51.100.7")
	victim6   = netip.MustParseAddr("2001:db8:1::1")
	attacker6 = netip.MustParseAddr("2001:db8:1::2")
)

func TestFloodScenarios(t *testing.T) {
	type want struct {
		starts, ends int
		target       netip.Addr
		maxLatency   time.Duration // start at most this long after the flood began
		minSources   uint64
		maxSources   uint64
		estimated    bool
		icmpType     int // expected top ICMP type, -1: don't care
	}
	cases := []struct {
		name   string
		frames func(t *testing.T) []synth.Frame
		want   want
	}{
		{
			name: "ipv4 single source 5000pps 3s",
			frames: func(t *testing.T) []synth.Frame {
				return flood(t, synth.Flood{Target: victim4, Source: attacker4, Start: epoch, Rate: 5000, Count: 15000})
			},
			want: want{starts: 1, ends: 1, target: victim4, maxLatency: 2 * time.Second, minSources: 1, maxSources: 1, icmpType: 8},
		},
		{
			name: "ipv4 spoofed sources 5000pps 3s",
			frames: func(t *testing.T) []synth.Frame {
				return flood(t, synth.Flood{Target: victim4, Spoofed: true, Seed: 7, Start: epoch, Rate: 5000, Count: 15000})
			},
			// about 14,800 sources hit the tracker after the rate crossed the
			// stop level; the HyperLogLog estimate is within a few percent.
			want: want{starts: 1, ends: 1, target: victim4, maxLatency: 2 * time.Second, minSources: 13000, maxSources: 16500, estimated: true, icmpType: 8},
		},
		{
			name: "ipv6 single source 5000pps 3s",
			frames: func(t *testing.T) []synth.Frame {
				return flood(t, synth.Flood{Target: victim6, Source: attacker6, Start: epoch, Rate: 5000, Count: 15000})
			},
			want: want{starts: 1, ends: 1, target: victim6, maxLatency: 2 * time.Second, minSources: 1, maxSources: 1, icmpType: 128},
		},
		{
			name: "ipv6 spoofed sources 20000pps",
			frames: func(t *testing.T) []synth.Frame {
				return flood(t, synth.Flood{Target: victim6, Spoofed: true, Seed: 9, Start: epoch, Rate: 20000, Count: 20000})
			},
			want: want{starts: 1, ends: 1, target: victim6, maxLatency: 200 * time.Millisecond, minSources: 18000, maxSources: 21500, estimated: true, icmpType: 128},
		},
		{
			name: "ipv4 destination unreachable flood (any-ICMP rate)",
			frames: func(t *testing.T) []synth.Frame {
				return typeFlood(t, attacker4, victim4, layers.ICMPv4TypeDestinationUnreachable, 3, 3000, 9000)
			},
			want: want{starts: 1, ends: 1, target: victim4, maxLatency: 2 * time.Second, minSources: 1, maxSources: 1, icmpType: 3},
		},
		{
			name: "ipv6 MLD report flood (any-ICMP rate)",
			frames: func(t *testing.T) []synth.Frame {
				return typeFlood(t, attacker6, victim6, 131, 0, 3000, 9000)
			},
			want: want{starts: 1, ends: 1, target: victim6, maxLatency: 2 * time.Second, minSources: 1, maxSources: 1, icmpType: 131},
		},
		{
			name: "echo requests at 800pps stay below the 1000pps level",
			frames: func(t *testing.T) []synth.Frame {
				return flood(t, synth.Flood{Target: victim4, Source: attacker4, Start: epoch, Rate: 800, Count: 8000})
			},
			want: want{},
		},
		{
			name: "ping at 1/s for 2 minutes",
			frames: func(t *testing.T) []synth.Frame {
				fs, err := synth.Pings(attacker4, victim4, epoch, time.Second, 120)
				return mustFrames(t, fs, err)
			},
			want: want{},
		},
		{
			name: "ping -f style burst, 100pps for 10s, with replies",
			frames: func(t *testing.T) []synth.Frame {
				fs, err := synth.Pings(attacker6, victim6, epoch, 10*time.Millisecond, 1000)
				return mustFrames(t, fs, err)
			},
			want: want{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frames := tc.frames(t)
			evs := replay(t, frames, rules.NewFlood(rules.DefaultFloodConfig()))
			var starts, ends int
			for _, ev := range evs {
				if ev.Rule.Name != "icmp_flood" {
					t.Errorf("unexpected rule %q", ev.Rule.Name)
				}
				if ev.Target != tc.want.target {
					t.Errorf("%s event target = %v, want %v", ev.Phase, ev.Target, tc.want.target)
				}
				switch ev.Phase {
				case detector.PhaseStart:
					starts++
					if lat := ev.Time.Sub(frames[0].Time); lat > tc.want.maxLatency {
						t.Errorf("start came %v after the flood began, want <= %v", lat, tc.want.maxLatency)
					}
				case detector.PhaseEnd:
					ends++
					if ev.EndReason != detector.EndQuiet && ev.EndReason != detector.EndInputEnd {
						t.Errorf("end reason %q", ev.EndReason)
					}
					last := frames[len(frames)-1].Time
					if want := last.Add(detector.DefaultConfig().HoldTime); !ev.Time.Equal(want) {
						t.Errorf("end time = %v, want last packet + hold = %v", ev.Time, want)
					}
					if ev.Sources < tc.want.minSources || ev.Sources > tc.want.maxSources {
						t.Errorf("sources = %d, want [%d, %d]", ev.Sources, tc.want.minSources, tc.want.maxSources)
					}
					if ev.SourcesEstimated != tc.want.estimated {
						t.Errorf("sources estimated = %v, want %v", ev.SourcesEstimated, tc.want.estimated)
					}
					if len(ev.ICMPTypes) == 0 || int(ev.ICMPTypes[0].Type) != tc.want.icmpType {
						t.Errorf("icmp types = %v, want top type %d", ev.ICMPTypes, tc.want.icmpType)
					}
					if ev.Packets == 0 || ev.Packets > uint64(len(frames)) || ev.PeakPPS < 1000 {
						t.Errorf("totals: packets=%d (of %d frames) peak_pps=%.0f", ev.Packets, len(frames), ev.PeakPPS)
					}
				}
			}
			if starts != tc.want.starts || ends != tc.want.ends {
				t.Fatalf("got %d start and %d end events, want %d and %d: %+v", starts, ends, tc.want.starts, tc.want.ends, evs)
			}
		})
	}
}

// TestFloodEndsAfterHoldAndRestarts checks the lifecycle in packet time: a
// flood, a silence longer than the hold time, and a second flood are two
// attacks, each with its own start and end.
func TestFloodEndsAfterHoldAndRestarts(t *testing.T) {
	first := flood(t, synth.Flood{Target: victim4, Source: attacker4, Start: epoch, Rate: 5000, Count: 5000})
	second := flood(t, synth.Flood{Target: victim4, Source: attacker4, Start: epoch.Add(30 * time.Second), Rate: 5000, Count: 5000})
	evs := replay(t, synth.Merge(first, second), rules.NewFlood(rules.DefaultFloodConfig()))
	var phases []string
	for _, ev := range evs {
		phases = append(phases, ev.Phase.String()+"/"+ev.EndReason)
	}
	want := []string{"start/", "end/quiet", "start/", "end/input_end"}
	if len(phases) != len(want) {
		t.Fatalf("phases = %v, want %v", phases, want)
	}
	for i := range want {
		if phases[i] != want[i] {
			t.Fatalf("phases = %v, want %v", phases, want)
		}
	}
}

// TestFloodUpdatesAreRateLimited: a 35 s flood gives updates every 10 s of
// packet time, not one per packet.
func TestFloodUpdatesAreRateLimited(t *testing.T) {
	frames := flood(t, synth.Flood{Target: victim4, Source: attacker4, Start: epoch, Rate: 2000, Count: 70000})
	evs := replay(t, frames, rules.NewFlood(rules.DefaultFloodConfig()))
	var updates int
	for _, ev := range evs {
		if ev.Phase == detector.PhaseUpdate {
			updates++
		}
	}
	if updates != 3 {
		t.Fatalf("updates = %d over a 35 s flood with a 10 s update interval, want 3", updates)
	}
}

// TestFloodLatency measures how soon a 10,000 pps flood is reported, in
// packet time, over floods starting at different offsets within a bucket,
// and requires the median under 0.2 s.
func TestFloodLatency(t *testing.T) {
	var lat []time.Duration
	for i := 0; i < 11; i++ {
		start := epoch.Add(time.Duration(i) * 9 * time.Millisecond)
		frames := flood(t, synth.Flood{Target: victim4, Spoofed: true, Seed: uint64(i + 1), Start: start, Rate: 10000, Count: 5000})
		evs := replay(t, frames, rules.NewFlood(rules.DefaultFloodConfig()))
		if len(evs) == 0 || evs[0].Phase != detector.PhaseStart {
			t.Fatalf("offset %d: no start event", i)
		}
		lat = append(lat, evs[0].Time.Sub(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	median := lat[len(lat)/2]
	t.Logf("detection latency at 10,000 pps: median %v, min %v, max %v", median, lat[0], lat[len(lat)-1])
	if median > 200*time.Millisecond {
		t.Fatalf("median latency %v, want <= 200ms", median)
	}
}

// TestFloodTargetTableIsBounded floods 100,000 distinct targets, each
// sending at the admission filter's level (start levels of 16/s: admitted at
// the second packet), through a table capped at 1,000 and checks the cap
// holds and evictions are counted.
func TestFloodTargetTableIsBounded(t *testing.T) {
	cfg := rules.DefaultFloodConfig()
	cfg.MaxTargets = 1000
	cfg.EchoPPS, cfg.AnyPPS = 16, 16
	f := rules.NewFlood(cfg)
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), f)
	if err != nil {
		t.Fatal(err)
	}
	p := detector.Packet{Src: attacker4, Proto: detector.ProtoICMPv4, HasICMP: true, ICMPType: 8, WireLen: 98}
	for i := 0; i < 200000; i++ {
		p.Time = epoch.Add(time.Duration(i) * time.Microsecond)
		p.Dst = synth.RandomAddr(uint64(i/2)*2654435761+1, true)
		e.HandlePacket(&p)
	}
	tables := f.Tables()
	if tables[0].Len > 1000 {
		t.Fatalf("table holds %d targets, cap 1000", tables[0].Len)
	}
	if tables[0].Evicted < 98000 {
		t.Fatalf("evicted = %d, want about 99,000", tables[0].Evicted)
	}
}

// TestFloodAdmitsOnlyBusyTargets sends one echo request to each of 100,000
// targets and a 500 pps stream to one more: the admission filter keeps the
// quiet targets out of the exact table (no entries, no evictions), admits
// the busy one, and reports nothing.
func TestFloodAdmitsOnlyBusyTargets(t *testing.T) {
	f := rules.NewFlood(rules.DefaultFloodConfig())
	var events int
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) { events++ }), f)
	if err != nil {
		t.Fatal(err)
	}
	p := detector.Packet{Src: attacker4, Proto: detector.ProtoICMPv4, HasICMP: true, ICMPType: 8, WireLen: 98}
	for i := 0; i < 100000; i++ {
		p.Time = epoch.Add(time.Duration(i) * 20 * time.Microsecond) // 2 s
		p.Dst = synth.RandomAddr(uint64(i)*2654435761+1, true)
		if i%100 == 0 {
			p.Dst = victim4
		}
		e.HandlePacket(&p)
	}
	tables := f.Tables()
	if tables[0].Len != 1 || tables[0].Evicted != 0 {
		t.Fatalf("table holds %d targets, evicted %d; want only the busy one, none evicted", tables[0].Len, tables[0].Evicted)
	}
	if events != 0 {
		t.Fatalf("%d events, want none", events)
	}
}

// TestFloodAdmissionSeedsTheWindow: a steady flood just above the start
// level is reported after a window, as it would be without the filter: the
// packets counted before admission are not lost from the rate.
func TestFloodAdmissionSeedsTheWindow(t *testing.T) {
	frames := flood(t, synth.Flood{Target: victim4, Source: attacker4, Start: epoch, Rate: 1100, Count: 3000})
	evs := replay(t, frames, rules.NewFlood(rules.DefaultFloodConfig()))
	if len(evs) == 0 || evs[0].Phase != detector.PhaseStart {
		t.Fatal("no start event")
	}
	// 1,000 packets at 1,100/s: 0.91 s; one bucket of slack.
	if lat := evs[0].Time.Sub(epoch); lat > time.Second {
		t.Fatalf("start came %v after the flood began, want <= 1s", lat)
	}
}

func TestFloodConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*rules.FloodConfig)
		wantErr string
	}{
		{"defaults", func(*rules.FloodConfig) {}, ""},
		{"zero window", func(c *rules.FloodConfig) { c.Window = 0 }, "rules.icmp_flood.window"},
		{"negative echo pps", func(c *rules.FloodConfig) { c.EchoPPS = -1 }, "rules.icmp_flood.echo_pps"},
		{"NaN any bps", func(c *rules.FloodConfig) { c.AnyBPS = math.NaN() }, "rules.icmp_flood.any_bps"},
		{"stop ratio above 1", func(c *rules.FloodConfig) { c.StopRatio = 1.5 }, "rules.icmp_flood.stop_ratio"},
		{"no targets", func(c *rules.FloodConfig) { c.MaxTargets = 0 }, "rules.icmp_flood.max_targets"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rules.DefaultFloodConfig()
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestFloodIgnoresSolicitedReplies: a host running a fast `ping -f` gets
// its answers at the same rate; that is a flood of the pinged host, not of
// the pinger. With smurf wired in (as the sensor does), only the pinged
// host is reported.
func TestFloodIgnoresSolicitedReplies(t *testing.T) {
	frames, err := synth.Pings(attacker4, victim4, epoch, 50*time.Microsecond, 40000) // 20,000 pps, 2 s
	if err != nil {
		t.Fatal(err)
	}
	smurf, err := rules.NewSmurf(rules.DefaultSmurfConfig())
	if err != nil {
		t.Fatal(err)
	}
	evs := replay(t, frames, rules.NewFlood(rules.DefaultFloodConfig()), smurf)
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Rule.Name+" "+ev.Phase.String()+" "+ev.Target.String())
	}
	want := []string{"icmp_flood start " + victim4.String(), "icmp_flood end " + victim4.String()}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events %v, want %v", got, want)
	}
	// Without smurf's view of outstanding requests the replies count.
	evs = replay(t, frames, rules.NewFlood(rules.DefaultFloodConfig()))
	if len(evs) != 4 {
		t.Fatalf("without the claimer: %d events, want the pinger flagged too (4)", len(evs))
	}
}

// BenchmarkFlood runs icmp_flood alone through the engine over decoded
// packets: echo requests to 160,000 destinations at 100,000 pps of packet
// time (each well under a packet per second, the shape of a gateway's
// traffic: the admission filter's case), and a flood to one victim from a
// new spoofed source per packet at 1 M pps.
//
//	go test -run '^$' -bench Flood -benchmem ./rules/
func BenchmarkFlood(b *testing.B) {
	targets := make([]netip.Addr, 160000)
	for i := range targets {
		targets[i] = synth.RandomAddr(uint64(i)*2654435761+1, true)
	}
	for _, bc := range []struct {
		name string
		step time.Duration
		next func(p *detector.Packet, n int)
	}{
		{"many-targets", 10 * time.Microsecond, func(p *detector.Packet, n int) { p.Dst = targets[n%len(targets)] }},
		{"spoofed-flood", time.Microsecond, func(p *detector.Packet, n int) { p.Src = synth.RandomAddr(uint64(n)+1, true) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}),
				rules.NewFlood(rules.DefaultFloodConfig()))
			if err != nil {
				b.Fatal(err)
			}
			p := detector.Packet{Src: attacker4, Dst: victim4, Proto: detector.ProtoICMPv4, HasICMP: true, ICMPType: 8, WireLen: 98}
			ts := epoch
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				bc.next(&p, n)
				ts = ts.Add(bc.step)
				p.Time = ts
				e.HandlePacket(&p)
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
