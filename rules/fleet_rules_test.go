package rules_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/fleet"
	"github.com/icmpids/icmpids/rules"
)

// fleetCase is one rate rule the fleet judges: gen makes what gateway gw
// sees of an attack on target at rate a second for n seconds.
type fleetCase struct {
	rule   string
	target netip.Addr
	judge  func() detector.Rule
	gen    func(t *testing.T, gw, rate, n int) []synth.Frame
	// attack and control are each gateway's rate: the attack's four sum
	// over the rule's start level, the control's stay under it; both
	// are under it at any one gateway.
	attack, control int
	// quiet is a rate under the rule's stop level (no pending attack).
	quiet int
	// counted is how much of the attack's packets the fleet's attack must
	// count: the window before the first hit is counted where the rule's
	// measure carries it (blacknurse), not where it does not (frag_flood,
	// as on a sensor).
	counted float64
}

func fleetCases() []fleetCase {
	return []fleetCase{{
		rule: "blacknurse", target: addr("10.40.0.9"),
		judge: func() detector.Rule { return rules.NewBlackNurse(rules.DefaultBlackNurseConfig()) },
		gen: func(t *testing.T, gw, rate, n int) []synth.Frame {
			return seq(portUnreach(nth(addr("198.51.100.0"), gw), addr("10.40.0.9"), 1000), ruleEpoch, float64(rate), n*rate, nil)
		},
		attack: 300, control: 200, quiet: 400, counted: 0.99, // 1,000/s to start, 500/s to last
	}, {
		rule: "frag_flood", target: addr("10.40.0.7"),
		judge: func() detector.Rule { return rules.NewFragFlood(rules.DefaultFragFloodConfig()) },
		gen: func(t *testing.T, gw, rate, n int) []synth.Frame {
			var frames []synth.Frame
			for i := 0; i < n*rate; i++ {
				// First fragments only, a new id each: never completed.
				d := synth.Datagram{Src: nth(addr("203.0.113.0"), gw), Dst: addr("10.40.0.7"), ID: uint32(gw<<20 | i), Proto: 17, Payload: make([]byte, 200)}
				fr, err := d.Frames([]synth.Piece{{Offset: 0, Len: 200, More: true}}, ruleEpoch.Add(time.Duration(i)*time.Second/time.Duration(rate)), 0)
				if err != nil {
					t.Fatal(err)
				}
				frames = append(frames, fr...)
			}
			return frames
		},
		attack: 30, control: 20, quiet: 40, counted: 0.8, // 100 incomplete trains/s to start, 50/s to last
	}}
}

// fleetSensors runs four sensors (every rule, fleet reporting on) over
// their share of tc's attack at rate a gateway, and returns their
// alerts and their observations of tc.rule.
func fleetSensors(t *testing.T, tc fleetCase, rate int) (alerts []string, obs map[string][]detector.Observation) {
	t.Helper()
	obs = map[string][]detector.Observation{}
	for gw := range 4 {
		name := fmt.Sprintf("gw%d", gw)
		var evs []*detector.Event
		e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, ev) }), defaultRules(t)...)
		if err != nil {
			t.Fatal(err)
		}
		e.SetFleet(time.Second, 0.125, func(o *detector.Observation) {
			if o.Rule == tc.rule {
				c := *o
				c.TopHosts = nil
				obs[name] = append(obs[name], c)
			}
		})
		for _, f := range tc.gen(t, gw, rate, 5) {
			e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
		}
		e.Close(detector.EndInputEnd)
		for _, ev := range evs {
			alerts = append(alerts, name+": "+alertLineOf(ev))
		}
	}
	return alerts, obs
}

func alertLineOf(ev *detector.Event) string {
	return fmt.Sprintf("%s %s %s", ev.Rule.Name, ev.Phase, ev.Target)
}

// TestFleetRules: for blacknurse and frag_flood, four gateways each under
// the start level but over the report floor publish every interval what
// they saw (FleetReport); none alerts; the correlator's sums, judged by
// the rule (JudgeFleet), raise one start and one end with the attack's
// packets. The control, four shares summing under the start level, is
// published and raises nothing.
func TestFleetRules(t *testing.T) {
	for _, tc := range fleetCases() {
		for _, run := range []struct {
			name  string
			rate  int
			fleet bool
		}{{"attack", tc.attack, true}, {"control", tc.control, false}} {
			t.Run(tc.rule+"/"+run.name, func(t *testing.T) {
				alerts, obs := fleetSensors(t, tc, run.rate)
				if len(alerts) != 0 {
					t.Fatalf("sensors alerted: %q", alerts)
				}
				var total uint64
				for gw := range 4 {
					os := obs[fmt.Sprintf("gw%d", gw)]
					if len(os) < 5 {
						t.Fatalf("gw%d published %d observations of %s, want one a second", gw, len(os), tc.rule)
					}
					for _, o := range os {
						if o.Key != tc.target || o.Bits != 32 || o.Slots != 10 || !o.AttackStarted.IsZero() {
							t.Errorf("gw%d observation %+v", gw, o)
						}
						for _, s := range o.PortUnreach[:o.Slots] {
							total += uint64(s.Packets)
						}
						for _, s := range o.TrainsOpened[:o.Slots] {
							total += uint64(s.Packets)
						}
					}
				}
				if want := uint64(4 * 5 * run.rate); total != want {
					t.Errorf("the observations hold %d of the %d packets sent", total, want)
				}
				var evs []*detector.Event
				e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, ev) }), tc.judge())
				if err != nil {
					t.Fatal(err)
				}
				c := fleet.New(e, 2*time.Second, 10*time.Second)
				for gw := range 4 {
					name := fmt.Sprintf("gw%d", gw)
					for i := range obs[name] {
						c.Add(name, "", &obs[name][i])
					}
				}
				c.Flush(true)
				e.Close(detector.EndInputEnd)
				var got []string
				for _, ev := range evs {
					got = append(got, alertLineOf(ev))
				}
				if !run.fleet {
					if len(got) != 0 {
						t.Fatalf("the fleet raised %q", got)
					}
					return
				}
				if want := []string{tc.rule + " start " + tc.target.String(), tc.rule + " end " + tc.target.String()}; !equal(got, want) {
					t.Fatalf("fleet alerts %q, want %q", got, want)
				}
				if p := evs[1].Packets; float64(p) < tc.counted*float64(total) || p > total {
					t.Errorf("the fleet attack counted %d packets of %d", p, total)
				}
				// One source a gateway: the registers' union counts 4.
				if ev := evs[1]; ev.Sources != 4 || !ev.SourcesEstimated {
					t.Errorf("the fleet attack has %d sources (estimated %v), want 4", ev.Sources, ev.SourcesEstimated)
				}
				if st := evs[0].Time.Sub(ruleEpoch); st < 800*time.Millisecond || st > 1200*time.Millisecond {
					t.Errorf("the fleet attack started %v in, want about 1 s (a full window at the summed rate)", st)
				}
			})
		}
	}
}

// TestFleetRulesNoAllocs: with fleet reporting on and every rule on,
// blacknurse's and frag_flood's packets (icmp_flood's too: port
// unreachables are ICMP), the source register updates, and the reports
// at the intervals among them cost no allocation (10 s of traffic under
// the stop levels: 10 reports).
func TestFleetRulesNoAllocs(t *testing.T) {
	for _, tc := range fleetCases() {
		t.Run(tc.rule, func(t *testing.T) {
			e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), defaultRules(t)...)
			if err != nil {
				t.Fatal(err)
			}
			reports, sources := 0, uint64(0)
			e.SetFleet(time.Second, 0.125, func(o *detector.Observation) {
				if o.Rule == tc.rule {
					reports++
					sources = max(sources, o.Sources.Estimate())
				}
			})
			frames := tc.gen(t, 0, tc.quiet, 20)
			half := len(frames) / 2
			chunk := 0
			// One run after the warm-up: the figure is every allocation of
			// the second half, not a mean rounded down.
			allocs := testing.AllocsPerRun(1, func() {
				for _, f := range frames[chunk*half : (chunk+1)*half] {
					e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
				}
				chunk++
			})
			if allocs != 0 {
				t.Errorf("%.0f allocations over %d packets and their reports with fleet reporting on", allocs, half)
			}
			if reports < 15 || sources != 1 {
				t.Errorf("%d observations published over 20 s, want one a second; sources %d, want 1", reports, sources)
			}
		})
	}
}

// BenchmarkFleetRegisters: what the fleet's per-key source (and carpet
// host) registers cost per packet, with every rule on: fleet reporting
// off (the rules hash nothing more) against on (one register update per
// counted packet, the reports at each interval included), for the spoofed
// attacks whose keys update them: a carpet, a BlackNurse and a fragment
// flood, each a new source per packet.
func BenchmarkFleetRegisters(b *testing.B) {
	spoof := func(i int) netip.Addr { return synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15|1, true) }
	const n = 1 << 15
	inputs := []struct {
		name   string
		frames func() []synth.Frame
	}{
		{"carpet", func() []synth.Frame {
			return carpet(netip.MustParsePrefix("192.0.2.0/24"), 254, 40000, n, addr("198.51.100.7"), true)
		}},
		{"blacknurse", func() []synth.Frame {
			return seq(portUnreach(addr("198.51.100.9"), addr("10.40.0.9"), 1000), ruleEpoch, 40000, n, func(i int, m *synth.Msg) {
				*m = portUnreach(spoof(i), addr("10.40.0.9"), 1000)
			})
		}},
		{"frag_flood", func() []synth.Frame {
			var frags []synth.Frame
			for i := range n {
				d := synth.Datagram{Src: spoof(i), Dst: addr("10.40.0.7"), ID: uint32(i), Proto: 17, Payload: make([]byte, 200)}
				fr, err := d.Frames([]synth.Piece{{Offset: 0, Len: 200, More: true}}, ruleEpoch.Add(time.Duration(i)*time.Second/40000), 0)
				if err != nil {
					b.Fatal(err)
				}
				frags = append(frags, fr...)
			}
			return frags
		}},
	}
	for _, in := range inputs {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/fleet=%v", in.name, on), func(b *testing.B) {
				frames := in.frames()
				e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), defaultRules(b)...)
				if err != nil {
					b.Fatal(err)
				}
				if on {
					e.SetFleet(time.Second, 0.125, func(*detector.Observation) {})
				}
				// The loop replays the input shifted by its length each
				// round, so packet time only moves on.
				span := frames[len(frames)-1].Time.Sub(frames[0].Time) + time.Second
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					f := frames[i%len(frames)]
					at := f.Time.Add(time.Duration(i/len(frames)) * span)
					e.HandleFrame(detector.LinkEthernet, f.Data, at, len(f.Data))
					i++
				}
			})
		}
	}
}
