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

// TestAttackTableFullOfActiveAttacks: with max_attacks active attacks
// open, further targets are dropped and counted (never an active attack
// evicted), and once one ends there is room again.
func TestAttackTableFullOfActiveAttacks(t *testing.T) {
	cfg := detector.DefaultConfig()
	cfg.MaxAttacks = 4
	var starts int
	e, err := detector.New(cfg, detector.SinkFunc(func(ev *detector.Event) {
		if ev.Phase == detector.PhaseStart {
			starts++
		}
	}), rules.NewFlood(rules.DefaultFloodConfig()))
	if err != nil {
		t.Fatal(err)
	}
	p := detector.Packet{Src: netip.MustParseAddr("198.51.100.7"), Proto: detector.ProtoICMPv4, HasICMP: true, ICMPType: 8, WireLen: 98}
	flood := func(from time.Time, targets int) {
		for i := 0; i < 3000; i++ { // 3,000 packets per target at 10,000 pps each
			for j := 0; j < targets; j++ {
				p.Time = from.Add(time.Duration(i) * 100 * time.Microsecond)
				p.Dst = netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + j)})
				e.HandlePacket(&p)
			}
		}
	}
	flood(epoch, 6)
	st := e.Stats()
	if starts != 4 || st.ActiveAttacks != 4 || st.AttacksDropped == 0 {
		t.Fatalf("starts %d, active %d, dropped %d: want 4, 4 and some", starts, st.ActiveAttacks, st.AttacksDropped)
	}
	// Quiet for longer than the hold time: the four end, room is back.
	flood(epoch.Add(30*time.Second), 1)
	if starts != 5 {
		t.Fatalf("after the first attacks ended: %d starts, want 5", starts)
	}
}
