package rules_test

import (
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
)

// TestNDFloodTarget: solicitations from everyone to the link are reported
// on the one address they all solicit (the host whose cache fills), and on
// ff02::1 when they solicit many.
func TestNDFloodTarget(t *testing.T) {
	host := func(i int) netip.Addr { return nth(addr("2001:db8:1::"), 0x100+i) }
	tests := []struct {
		name    string
		frames  []synth.Frame
		want    []string
		targets uint64 // nd_targets of the start
	}{
		{"flood_solicitate6 against one host: ff02::1, new link-local each, one target",
			seq(ns(routerLL, routerMAC, host(5), allNodes), ruleEpoch, 2000, 6000, func(i int, m *synth.Msg) {
				*m = ns(nth(addr("fe80::8000"), i), synth.MAC(uint32(5000+i)), host(5), allNodes)
			}), []string{"nd_flood 2001:db8:1::105"}, 1},
		{"the same to the host's solicited-node group",
			seq(ns(routerLL, routerMAC, host(5), allNodes), ruleEpoch, 2000, 6000, func(i int, m *synth.Msg) {
				*m = ns(nth(addr("fe80::8000"), i), synth.MAC(uint32(5000+i)), host(5), solicitedNode(host(5)))
			}), []string{"nd_flood 2001:db8:1::105"}, 1},
		{"flood_solicitate6 over many targets: the link",
			seq(ns(routerLL, routerMAC, host(0), allNodes), ruleEpoch, 2000, 6000, func(i int, m *synth.Msg) {
				*m = ns(nth(addr("fe80::8000"), i), synth.MAC(uint32(5000+i)), host(i%300), allNodes)
			}), []string{"nd_flood ff02::1"}, 0},
		{"hosts resolving one busy server: 50 hosts, 2 a second each",
			seq(ns(routerLL, routerMAC, host(5), allNodes), ruleEpoch, 100, 3000, func(i int, m *synth.Msg) {
				*m = ns(nth(addr("2001:db8:1::8000"), i%50), synth.MAC(uint32(5000+i%50)), host(5), solicitedNode(host(5)))
			}), nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			got := only(startsOf(evs), "nd_flood")
			if !equal(got, tc.want) {
				t.Fatalf("starts %v, want %v", got, tc.want)
			}
			if tc.targets > 0 {
				if ev := firstStart(evs, "nd_flood"); ev.Extra["nd_targets"] != tc.targets {
					t.Errorf("nd_targets %v, want %d", ev.Extra["nd_targets"], tc.targets)
				}
			}
		})
	}
}
