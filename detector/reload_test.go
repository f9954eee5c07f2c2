package detector_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// TestSetRulesKeepsOpenAttacks: a reload in the middle of a flood swaps the
// rules for new instances (new thresholds) and the attack goes on: one
// start, one end. Disabling the rule ends its attack at once.
func TestSetRulesKeepsOpenAttacks(t *testing.T) {
	frames, err := synth.Flood{Target: netip.MustParseAddr("10.0.0.5"), Source: netip.MustParseAddr("198.51.100.7"),
		Start: epoch, Rate: 5000, Count: 20000}.Frames()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		newRules  func() []detector.Rule
		wantPhase []string
	}{
		{
			name: "same rule, new thresholds",
			newRules: func() []detector.Rule {
				cfg := rules.DefaultFloodConfig()
				cfg.EchoPPS = 3000
				return []detector.Rule{rules.NewFragTiny(rules.DefaultFragTinyConfig()), rules.NewFlood(cfg)}
			},
			wantPhase: []string{"start/", "end/input_end"},
		},
		{
			name:      "rule disabled",
			newRules:  func() []detector.Rule { return nil },
			wantPhase: []string{"start/", "end/rule_off"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) {
				got = append(got, ev.Phase.String()+"/"+ev.EndReason)
			}), rules.NewFlood(rules.DefaultFloodConfig()))
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range frames {
				if i == len(frames)/2 {
					e.SetRules(tc.newRules()...)
				}
				e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
			}
			e.Close(detector.EndInputEnd)
			if len(got) != len(tc.wantPhase) {
				t.Fatalf("events %v, want %v", got, tc.wantPhase)
			}
			for i := range got {
				if got[i] != tc.wantPhase[i] {
					t.Fatalf("events %v, want %v", got, tc.wantPhase)
				}
			}
		})
	}
}

// TestShutdownEndsNow: an attack open when a live sensor stops ends at the
// engine's clock, not hold_time after its last packet (which would stamp it
// in the future); at the end of a replay it ends when the hold time runs out.
func TestShutdownEndsNow(t *testing.T) {
	frames, err := synth.Flood{Target: netip.MustParseAddr("10.0.0.5"), Source: netip.MustParseAddr("198.51.100.7"),
		Start: epoch, Rate: 5000, Count: 5000}.Frames()
	if err != nil {
		t.Fatal(err)
	}
	last := frames[len(frames)-1].Time
	for _, tc := range []struct {
		reason string
		want   time.Time
	}{
		{detector.EndShutdown, last.Add(2 * time.Second)},
		{detector.EndInputEnd, last.Add(detector.DefaultConfig().HoldTime)},
	} {
		var end *detector.Event
		e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) {
			if ev.Phase == detector.PhaseEnd {
				end = ev
			}
		}), rules.NewFlood(rules.DefaultFloodConfig()))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
		}
		e.Advance(last.Add(2 * time.Second)) // live: idle ticks from the wall clock
		e.Close(tc.reason)
		if end == nil || !end.Time.Equal(tc.want) || end.EndReason != tc.reason {
			t.Errorf("%s: end event %+v, want at %v", tc.reason, end, tc.want)
		}
	}
}
