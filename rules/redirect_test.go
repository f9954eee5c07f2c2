package rules_test

import (
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/rules"
)

// redirect4 is an ICMP redirect from router to host: use gateway for
// traffic to dst.
func redirect4(router, host, gateway, dst netip.Addr) synth.Msg {
	g := gateway.As4()
	return synth.Msg{Src: router, Dst: host, Type: 5, Code: 1,
		Rest: append(g[:], synth.Quote(host, dst, 6, 40000, 443, 60)...)}
}

func TestRedirect(t *testing.T) {
	router, host, gw, dst := addr("10.0.0.1"), addr("10.0.0.5"), addr("10.0.0.2"), addr("192.0.2.80")
	r6, h6 := addr("fe80::1"), addr("fe80::5")
	routerMAC, attackerMAC := synth.MAC(1), synth.MAC(66)
	// The router's own packets teach its link-layer address.
	routerReply := synth.Msg{Src: router, Dst: host, Type: 0, SrcMAC: routerMAC, Rest: make([]byte, 60)}
	ra := synth.Msg{Src: r6, Dst: addr("ff02::1"), Type: 134, SrcMAC: routerMAC, Rest: synth.RA(1800, 0, synth.LinkAddrOpt(1, routerMAC))}
	with := func(m synth.Msg, f func(*synth.Msg)) synth.Msg { f(&m); return m }
	frames := func(ms ...synth.Msg) []synth.Frame {
		var out []synth.Frame
		for i, m := range ms {
			out = append(out, m.At(ruleEpoch.Add(secs(i))))
		}
		return out
	}
	home := rules.DefaultRedirectConfig()
	home.HomeNetworks = []string{"10.0.0.0/24"}
	trusted := rules.DefaultRedirectConfig()
	trusted.TrustedRouters = []string{"10.0.0.1"}
	tests := []struct {
		name   string
		cfg    rules.RedirectConfig
		frames []synth.Frame
		reason string // "" = silent
	}{
		{"gateway 0.0.0.0", rules.DefaultRedirectConfig(), frames(redirect4(router, host, addr("0.0.0.0"), dst)), "bad_gateway"},
		{"multicast gateway", rules.DefaultRedirectConfig(), frames(redirect4(router, host, addr("224.0.0.5"), dst)), "bad_gateway"},
		{"a lone valid redirect from the router", rules.DefaultRedirectConfig(), frames(routerReply, with(redirect4(router, host, gw, dst), func(m *synth.Msg) { m.SrcMAC = routerMAC })), ""},
		{"the router's address from another MAC", rules.DefaultRedirectConfig(), frames(routerReply, with(redirect4(router, host, gw, dst), func(m *synth.Msg) { m.SrcMAC = attackerMAC })), "spoofed_router"},
		{"off-link sender (home_networks)", home, frames(redirect4(addr("203.0.113.9"), host, gw, dst)), "offlink_source"},
		{"gateway off the receiver's link (home_networks)", home, frames(redirect4(router, host, addr("10.9.9.9"), dst)), "bad_gateway"},
		{"valid on-link redirect (home_networks)", home, frames(redirect4(router, host, gw, dst)), ""},
		{"untrusted sender", trusted, frames(redirect4(addr("10.0.0.66"), host, gw, dst)), "spoofed_router"},
		{"trusted sender", trusted, frames(redirect4(router, host, gw, dst)), ""},
		{"storm of valid-looking redirects", rules.DefaultRedirectConfig(), seq(redirect4(router, host, gw, dst), ruleEpoch, 50, 100, nil), "rate"},
		{"a few redirects a second", rules.DefaultRedirectConfig(), seq(redirect4(router, host, gw, dst), ruleEpoch, 2, 20, nil), ""},
		{"IPv6: hop limit 64", rules.DefaultRedirectConfig(), frames(synth.Msg{Src: r6, Dst: h6, Type: 137, TTL: 64, Rest: synth.Redirect6(addr("fe80::2"), addr("2001:db8::80"))}), "hop_limit"},
		{"IPv6: global source", rules.DefaultRedirectConfig(), frames(synth.Msg{Src: addr("2001:db8::1"), Dst: h6, Type: 137, Rest: synth.Redirect6(addr("fe80::2"), addr("2001:db8::80"))}), "offlink_source"},
		{"IPv6: global target for another destination", rules.DefaultRedirectConfig(), frames(synth.Msg{Src: r6, Dst: h6, Type: 137, Rest: synth.Redirect6(addr("2001:db8::2"), addr("2001:db8::80"))}), "bad_gateway"},
		{"IPv6: the router's address from another MAC", rules.DefaultRedirectConfig(), frames(ra, synth.Msg{Src: r6, Dst: h6, Type: 137, SrcMAC: attackerMAC, Rest: synth.Redirect6(addr("fe80::2"), addr("2001:db8::80"))}), "spoofed_router"},
		{"IPv6: valid redirect from the router", rules.DefaultRedirectConfig(), frames(ra, synth.Msg{Src: r6, Dst: h6, Type: 137, SrcMAC: routerMAC, Rest: synth.Redirect6(addr("fe80::2"), addr("2001:db8::80"))}), ""},
		{"IPv6: on-link destination (target = destination)", rules.DefaultRedirectConfig(), frames(synth.Msg{Src: r6, Dst: h6, Type: 137, Rest: synth.Redirect6(addr("2001:db8::80"), addr("2001:db8::80"))}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, rules.NewRedirect(tc.cfg))
			ev := firstStart(evs, "icmp_redirect")
			if tc.reason == "" {
				if ev != nil {
					t.Fatalf("raised %v", ev.Extra)
				}
				return
			}
			if ev == nil {
				t.Fatalf("silent, want %s", tc.reason)
			}
			if rs, _ := ev.Extra["reasons"].(map[string]any); rs[tc.reason] == nil {
				t.Errorf("reasons %v, want %s", rs, tc.reason)
			}
			if ev.Target != tc.frames[len(tc.frames)-1].Target() {
				t.Errorf("target %v", ev.Target)
			}
		})
	}
}
