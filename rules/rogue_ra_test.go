package rules_test

import (
	"net"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
)

// raAs is a Router Advertisement in src's name sent from the Ethernet
// address ether, with a source link-layer option naming slla (none when
// nil), router lifetime, preference (0 medium, 1 high, 3 low) and a
// prefix-information option per prefix.
func raAs(src netip.Addr, ether, slla net.HardwareAddr, lifetime uint16, pref uint8, prefixes ...netip.Prefix) synth.Msg {
	var opts [][]byte
	for _, p := range prefixes {
		opts = append(opts, synth.PrefixOpt(p))
	}
	if slla != nil {
		opts = append(opts, synth.LinkAddrOpt(1, slla))
	}
	return synth.Msg{Src: src, Dst: allNodes, SrcMAC: ether, Type: 134, Rest: synth.RA(lifetime, pref, opts...)}
}

// rogueOf replays frames through every default rule and returns the
// rogue_ra starts, the reasons its events counted (all of them, summed
// over targets) and the routers its events named.
func rogueOf(t *testing.T, frames []synth.Frame) (starts []string, reasons map[string]bool, routers []string) {
	t.Helper()
	evs := replay(t, frames, defaultRules(t)...)
	starts = only(startsOf(evs), "rogue_ra")
	reasons = map[string]bool{}
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.Rule.Name != "rogue_ra" {
			continue
		}
		if rs, ok := ev.Extra["reasons"].(map[string]any); ok {
			for r := range rs {
				reasons[r] = true
			}
		}
		if a, ok := ev.Extra["router"].(netip.Addr); ok && !seen[a.String()] {
			seen[a.String()] = true
			routers = append(routers, a.String())
		}
	}
	sort.Strings(routers)
	return starts, reasons, routers
}

// TestRogueRATwins holds the attack and benign twins of rogue_ra: each
// attack must start rogue_ra on ff02::1 with its reasons (and, where
// given, name only the rogue router); each benign twin stays silent.
func TestRogueRATwins(t *testing.T) {
	attacker := synth.MAC(66)
	_ = addr("fe80::bad")
	badPfx := netip.MustParsePrefix("2001:db8:bad::/64")
	at := func(d time.Duration) time.Time { return ruleEpoch.Add(d) }
	tests := []struct {
		name    string
		frames  []synth.Frame
		reasons []string // reasons that must be counted; nil: nothing may start
		routers []string // the routers rogue_ra's events may name (nil: any)
	}{
		// Item 2: the option is the attacker's word, the frame's source
		// the switch's.
		{"kill_router6 with the router's MAC in its SLLA option: 12 RAs of lifetime 0",
			synth.Merge(periodicRAs(), synth.Every(raAs(routerLL, attacker, routerMAC, 0, 0), at(5*time.Minute), time.Second, 12, nil)),
			[]string{"slla_mismatch"}, []string{"fe80::1"}},
		{"a rogue prefix in the router's name with the router's MAC in its SLLA option",
			synth.Merge(periodicRAs(), []synth.Frame{raAs(routerLL, attacker, routerMAC, 1800, 0, badPfx).At(at(5 * time.Minute))}),
			[]string{"slla_mismatch"}, []string{"fe80::1"}},
		{"an RA in an EUI-64 router's name naming that MAC in its option",
			synth.Merge(synth.Every(raAs(addr("fe80::42:ff:fe00:1"), routerMAC, routerMAC, 1800, 0, link64), ruleEpoch, 200*time.Second, 10, nil),
				[]synth.Frame{raAs(addr("fe80::42:ff:fe00:1"), attacker, routerMAC, 0, 0).At(at(5 * time.Minute))}),
			[]string{"slla_mismatch", "spoofed_router"}, nil},
		{"radvd alone: periodic and solicited RAs", periodicRAs(), nil, nil},
		{"a router that sends no SLLA option",
			synth.Every(raAs(routerLL, routerMAC, nil, 1800, 0, link64), ruleEpoch, 200*time.Second, 18, nil), nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			starts, reasons, routers := rogueOf(t, tc.frames)
			if tc.reasons == nil {
				if len(starts) > 0 {
					t.Errorf("benign twin raised %v (reasons %v)", starts, reasons)
				}
				return
			}
			if !equal(starts, []string{"rogue_ra ff02::1"}) {
				t.Errorf("starts %v, want rogue_ra ff02::1", starts)
			}
			for _, r := range tc.reasons {
				if !reasons[r] {
					t.Errorf("reasons %v lack %s", reasons, r)
				}
			}
			if tc.routers != nil && !equal(routers, tc.routers) {
				t.Errorf("events name routers %v, want %v", routers, tc.routers)
			}
		})
	}
}
