package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/rules"
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

// TestNDFloodAdmission: once nd_flood's keys table is full, a host's or a
// source's counter is made at its second message, so solicitations from
// spoofed sources, one each, evict nothing (on the old code every one
// inserted a counter and evicted another). Attack twin: with the table full
// of such sources, a scanner soliciting 400 targets at 200/s from one
// source is still reported on that source. Benign twin: the spoofed
// sources alone, below the link's level, raise nothing.
func TestNDFloodAdmission(t *testing.T) {
	host := func(i int) netip.Addr { return nth(addr("2001:db8:1::"), 0x100+i) }
	scanner := addr("2001:db8:1::66")
	junk := seq(ns(routerLL, routerMAC, host(0), allNodes), ruleEpoch, 50, 400, func(i int, m *synth.Msg) {
		*m = ns(nth(addr("2001:db8:2::"), i), synth.MAC(uint32(5000+i)), host(i%7), solicitedNode(host(i%7)))
	})
	scan := seq(ns(scanner, synth.MAC(66), host(0), allNodes), ruleEpoch.Add(4*time.Second), 200, 400, func(i int, m *synth.Msg) {
		*m = ns(scanner, synth.MAC(66), host(i), solicitedNode(host(i)))
	})
	cfg := rules.DefaultNDFloodConfig()
	cfg.MaxKeys = 8
	for _, tc := range []struct {
		name    string
		frames  []synth.Frame
		want    []string
		evicted uint64 // (without admission: 394 and 393)
	}{
		{"a scanner among spoofed sources, table full", synth.Merge(junk, scan), []string{"nd_flood " + scanner.String()}, 1},
		{"the spoofed sources alone", junk, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rules.NewNDFlood(cfg)
			got := only(startsOf(replay(t, tc.frames, r)), "nd_flood")
			if !equal(got, tc.want) {
				t.Fatalf("starts %v, want %v", got, tc.want)
			}
			if tb := r.Tables()[0]; tb.Evicted != tc.evicted || tb.Len > cfg.MaxKeys {
				t.Errorf("keys table: %d entries (cap %d), %d evicted, want %d", tb.Len, cfg.MaxKeys, tb.Evicted, tc.evicted)
			}
		})
	}
}
