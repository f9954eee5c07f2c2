package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector/icmpmsg"
)

// padding is n unknown 8-byte ND options (type 254, experimental).
func padding(n int) []byte {
	b := make([]byte, 8*n)
	for i := 0; i < n; i++ {
		b[8*i], b[8*i+1] = 254, 1
	}
	return b
}

// TestNDOptionsPastTheBound: the ND rules read at most MaxNDOptions options
// of a message (one bounded walk per packet, shared); what an attacker hides
// past the bound must not make an RA pass. Attack twins: an unknown router
// after the learning period, router lifetime 0, its prefix behind 40
// padding options (the old unbounded walk found the prefix; a bounded walk
// that ignores the cut would not), or behind 179 (the worst-input suite's
// padding, the most a 1,500-byte frame holds), and a new router heard
// while the link's routers are being learned, its prefix behind 179
// options (new_prefix: nothing the link's router announces; learned as
// one of the link's, it would stay silent from then on). Checked by
// mutation: with announcing read from the prefixes alone (not
// ND.Truncated) the three fail. Benign twins: the link's router padding
// its RA the same way after its source link-layer option, and an unknown router's RA that announces nothing
// within the bound.
func TestNDOptionsPastTheBound(t *testing.T) {
	bad := addr("fe80::bad")
	attacker := synth.MAC(66)
	paddedAt := func(src netip.Addr, n int, lifetime uint16, at time.Duration) synth.Frame {
		m := ra(src, routerMAC, lifetime, link64)
		if src != routerLL {
			m.SrcMAC = attacker
		}
		m.Rest = synth.RA(lifetime, 0, padding(n), synth.PrefixOpt(netip.MustParsePrefix("2001:db8:bad::/64")))
		if src == routerLL { // its SLLA option first (one past the bound is padded_options: TestRogueRATwins)
			m.Rest = synth.RA(lifetime, 0, synth.LinkAddrOpt(1, routerMAC), padding(n), synth.PrefixOpt(netip.MustParsePrefix("2001:db8:bad::/64")))
		}
		if n == 0 {
			m.Rest = synth.RA(lifetime, 0)
		}
		return m.At(ruleEpoch.Add(at))
	}
	padded := func(src netip.Addr, n int, lifetime uint16) synth.Frame {
		return paddedAt(src, n, lifetime, 5*time.Minute)
	}
	tests := []struct {
		name  string
		frame synth.Frame
		want  []string
	}{
		{"unknown router, prefix behind 40 options", padded(bad, 40, 0), []string{"rogue_ra ff02::1"}},
		{"unknown router, prefix behind 20 options (read)", padded(bad, 20, 0), []string{"rogue_ra ff02::1"}},
		{"unknown router, prefix behind 179 options", padded(bad, 179, 0), []string{"rogue_ra ff02::1"}},
		{"new router while learning, prefix behind 179 options", paddedAt(bad, 179, 1800, 30*time.Second), []string{"rogue_ra ff02::1"}},
		{"unknown router announcing nothing", padded(bad, 0, 0), nil},
		{"the link's router, padded", padded(routerLL, 40, 1800), nil},
	}
	if icmpmsg.MaxNDOptions >= 40 {
		t.Fatalf("MaxNDOptions %d: the attack twin no longer crosses the bound", icmpmsg.MaxNDOptions)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := only(startsOf(replay(t, synth.Merge(periodicRAs(), []synth.Frame{tc.frame}), defaultRules(t)...)), "rogue_ra")
			if !equal(got, tc.want) {
				t.Errorf("starts %v, want %v", got, tc.want)
			}
		})
	}
}
