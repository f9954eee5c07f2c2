package detector_test

import (
	"net/netip"
	"testing"

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
