package rules_test

import (
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
)

// portUnreach returns a port unreachable from src to dst quoting a UDP
// datagram dst sent to src (the form BlackNurse tools forge, and the form
// a host answers a closed port with).
func portUnreach(src, dst netip.Addr, sport uint16) synth.Msg {
	m := synth.Msg{Src: src, Dst: dst, Type: 3, Code: 3}
	if !src.Is4() {
		m.Type, m.Code = 1, 4
	}
	length := 28
	if !src.Is4() {
		length = 48
	}
	m.Rest = synth.Unreach(0, synth.Quote(dst, src, 17, sport, 53, length))
	return m
}

func TestBlackNurse(t *testing.T) {
	v4, a4 := addr("10.0.0.1"), addr("198.51.100.9")
	v6, a6 := addr("2001:db8::1"), addr("2001:db8:bad::9")
	tests := []struct {
		name   string
		frames []synth.Frame
		want   []string // blacknurse starts
	}{
		{"IPv4 BlackNurse at 40k pps", seq(portUnreach(a4, v4, 1000), ruleEpoch, 40000, 40000, nil), []string{"blacknurse 10.0.0.1"}},
		{"IPv6 port unreachables at 5k pps", seq(portUnreach(a6, v6, 1000), ruleEpoch, 5000, 10000, nil), []string{"blacknurse 2001:db8::1"}},
		{"just above the level, 1.2k pps", seq(portUnreach(a4, v4, 1000), ruleEpoch, 1200, 3000, nil), []string{"blacknurse 10.0.0.1"}},
		// A resolver's late answers: 400 a second, each server getting 4.
		{"DNS resolver late answers", seq(portUnreach(v4, a4, 1000), ruleEpoch, 400, 2000, func(i int, m *synth.Msg) {
			*m = portUnreach(v4, nth(addr("192.0.2.0"), i%100), 1000)
		}), nil},
		{"traceroute's final port unreachables", seq(portUnreach(a4, v4, 33434), ruleEpoch, 3, 9, nil), nil},
		{"host unreachable bursts of 30/s", seq(synth.Msg{Src: a4, Dst: v4, Type: 3, Code: 1,
			Rest: synth.Unreach(0, synth.Quote(v4, a4, 6, 40000, 80, 60))}, ruleEpoch, 30, 300, nil), nil},
		{"below the level, 800 pps", seq(portUnreach(a4, v4, 1000), ruleEpoch, 800, 4000, nil), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			if got := only(startsOf(evs), "blacknurse"); !equal(got, tc.want) {
				t.Errorf("blacknurse starts %v, want %v", got, tc.want)
			}
		})
	}
}

// At 1.2k pps BlackNurse is blacknurse's alone; at 40k pps icmp_flood's
// any-ICMP rate fires too, on the same target (the README tells SIEMs).
func TestBlackNurseAndFlood(t *testing.T) {
	v, a := addr("10.0.0.1"), addr("198.51.100.9")
	low := startsOf(replay(t, seq(portUnreach(a, v, 1), ruleEpoch, 1200, 3000, nil), defaultRules(t)...))
	if len(only(low, "icmp_flood")) != 0 {
		t.Errorf("1.2k pps: %v, want blacknurse alone", low)
	}
	high := startsOf(replay(t, seq(portUnreach(a, v, 1), ruleEpoch, 40000, 40000, nil), defaultRules(t)...))
	if !equal(only(high, "icmp_flood"), []string{"icmp_flood 10.0.0.1"}) || !equal(only(high, "blacknurse"), []string{"blacknurse 10.0.0.1"}) {
		t.Errorf("40k pps: %v, want blacknurse and icmp_flood on 10.0.0.1", high)
	}
}
