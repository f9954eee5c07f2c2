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
