package rules_test

import (
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/rules"
)

// TestRedirectBindingsSurviveASpoofedFlood: icmp_redirect learns routers'
// link-layer addresses from their own packets; once its table is full, a
// binding is learned from its second packet only. Attack twin: the
// router is learned, then 20,000 port unreachables (TTL 64, the crafted
// unreach-tcp flood) from spoofed sources each teach a "binding" and, on
// the old code, evict the router's; a redirect in the router's name from
// another MAC then passed. Benign twins: a second router that speaks every
// 500 flood packets is learned during the flood (its forged redirect is
// caught), and a valid redirect from the first router stays silent.
func TestRedirectBindingsSurviveASpoofedFlood(t *testing.T) {
	router, router2, host := addr("10.0.0.1"), addr("10.0.0.254"), addr("10.0.0.5")
	routerMAC, router2MAC, attackerMAC := synth.MAC(1), synth.MAC(2), synth.MAC(66)
	cfg := rules.DefaultRedirectConfig()
	cfg.MaxRouters = 64
	next, err := synth.Crafted{Kind: synth.CraftUnreachTCP, Target: host, Seed: 5}.Gen()
	if err != nil {
		t.Fatal(err)
	}
	at := func(i int) time.Time { return ruleEpoch.Add(time.Second + time.Duration(i)*50*time.Microsecond) }
	base := []synth.Frame{synth.Msg{Src: router, Dst: host, Type: 0, SrcMAC: routerMAC, Rest: make([]byte, 60)}.At(ruleEpoch)}
	with2 := base // the same flood with the second router speaking in it
	const n = 20000
	for i := 0; i < n; i++ {
		f, err := next(i)
		if err != nil {
			t.Fatal(err)
		}
		base = append(base, synth.Frame{Time: at(i), Data: f})
		with2 = append(with2, synth.Frame{Time: at(i), Data: f})
		if i%500 == 250 {
			with2 = append(with2, synth.Msg{Src: router2, Dst: host, Type: 0, SrcMAC: router2MAC, Rest: make([]byte, 60)}.At(at(i)))
		}
	}
	tests := []struct {
		name     string
		second   bool // the flood with the second router
		redirect synth.Msg
		want     bool
	}{
		{"the router's address from another MAC", false, func() synth.Msg {
			m := redirect4(router, host, addr("10.0.0.2"), addr("192.0.2.80"))
			m.SrcMAC = attackerMAC
			return m
		}(), true},
		{"the second router's address from another MAC", true, func() synth.Msg {
			m := redirect4(router2, host, addr("10.0.0.2"), addr("192.0.2.80"))
			m.SrcMAC = attackerMAC
			return m
		}(), true},
		{"a valid redirect from the router", false, func() synth.Msg {
			m := redirect4(router, host, addr("10.0.0.2"), addr("192.0.2.80"))
			m.SrcMAC = routerMAC
			return m
		}(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames := base
			if tc.second {
				frames = with2
			}
			frames = append(append([]synth.Frame{}, frames...), tc.redirect.At(at(n)))
			r := rules.NewRedirect(cfg)
			ev := firstStart(replay(t, frames, r), "icmp_redirect")
			if got := ev != nil; got != tc.want {
				t.Fatalf("raised %v (%v), want %v", got, ev, tc.want)
			}
			if tc.want {
				if rs, _ := ev.Extra["reasons"].(map[string]any); rs["spoofed_router"] == nil {
					t.Fatalf("reasons %v, want spoofed_router", rs)
				}
			}
			for _, tb := range r.Tables() {
				if tb.Name == "icmp_redirect.routers" && tb.Evicted > 1 {
					t.Errorf("%d router bindings evicted by %d spoofed errors, want at most the one the second router takes", tb.Evicted, n)
				}
			}
		})
	}
}

// TestBlackNurseSprayAdmission: once blacknurse's host table is full, a
// host gets a counter at its second port unreachable. A spray of 20,000
// port unreachables, each to a new host, then evicts almost nothing (the
// old code: one eviction per packet past the cap), and a BlackNurse on one
// host inside the spray is still reported; the spray alone is not.
func TestBlackNurseSprayAdmission(t *testing.T) {
	victim := addr("10.0.0.5")
	cfg := rules.DefaultBlackNurseConfig()
	cfg.MaxTargets = 64
	const n = 20000
	var frames []synth.Frame
	for i := 0; i < n; i++ {
		at := ruleEpoch.Add(time.Duration(i) * 250 * time.Microsecond) // 4,000/s in all
		dst := nth(addr("10.128.0.0"), i)
		q := synth.Quote(dst, addr("198.51.100.9"), 17, 5000, 53, 60)
		frames = append(frames, synth.Msg{Src: addr("198.51.100.9"), Dst: dst, Type: 3, Code: 3, Rest: synth.Unreach(0, q)}.At(at))
	}
	attack := append([]synth.Frame{}, frames...)
	for i := 0; i < n/2; i++ { // 2,000/s to the victim for 5 s
		at := ruleEpoch.Add(time.Duration(i) * 500 * time.Microsecond)
		q := synth.Quote(victim, addr("198.51.100.9"), 17, 5000, 53, 60)
		attack = append(attack, synth.Msg{Src: addr("198.51.100.9"), Dst: victim, Type: 3, Code: 3, Rest: synth.Unreach(0, q)}.At(at))
	}
	for _, tc := range []struct {
		name   string
		frames []synth.Frame
		want   []string
	}{
		{"spray alone", frames, nil},
		{"BlackNurse inside the spray", synth.Merge(attack), []string{"blacknurse 10.0.0.5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rules.NewBlackNurse(cfg)
			if got := only(startsOf(replay(t, tc.frames, r)), "blacknurse"); !equal(got, tc.want) {
				t.Fatalf("starts %v, want %v", got, tc.want)
			}
			if ev := r.Tables()[0].Evicted; ev > 10 {
				t.Fatalf("%d hosts evicted by a spray of %d, want few", ev, n)
			}
		})
	}
}

// TestNDBindingsSurviveASpoofedFlood: once nd_spoof's binding table is
// full, a binding is learned from its second packet. Attack twin: the
// router's binding (from its RA), then 20,000 solicitations from spoofed
// sources, each with its own link-layer option (nd-options' kind), then an
// NA taking the router's address from another MAC: the old code had
// evicted the router's binding and the takeover passed as a first
// binding. Benign twin: the router's own NA later stays silent.
func TestNDBindingsSurviveASpoofedFlood(t *testing.T) {
	cfg := rules.DefaultNDSpoofConfig()
	cfg.MaxBindings = 64
	frames := []synth.Frame{ra(routerLL, routerMAC, 1800, link64).At(ruleEpoch)}
	const n = 20000
	for i := 0; i < n; i++ {
		src := nth(addr("2001:db8:1::8000"), i)
		frames = append(frames, ns(src, synth.MAC(uint32(5000+i)), nth(addr("2001:db8:1::"), 7), allNodes).
			At(ruleEpoch.Add(time.Second+time.Duration(i)*100*time.Microsecond)))
	}
	end := ruleEpoch.Add(5 * time.Second)
	for _, tc := range []struct {
		name string
		mac  []byte
		want []string
	}{
		{"the router's address taken by another MAC", synth.MAC(66), []string{"nd_spoof fe80::1"}},
		{"the router's own NA", routerMAC, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := append(append([]synth.Frame{}, frames...), na(routerLL, tc.mac, allNodes, false, true).At(end))
			r := rules.NewNDSpoof(cfg)
			if got := only(startsOf(replay(t, f, r)), "nd_spoof"); !equal(got, tc.want) {
				t.Fatalf("starts %v, want %v", got, tc.want)
			}
			if ev := r.Tables()[0].Evicted; ev > 10 {
				t.Fatalf("%d bindings evicted by %d spoofed solicitations, want few", ev, n)
			}
		})
	}
}
