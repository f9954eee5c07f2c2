package rules_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/rules"
)

var (
	routerLL  = addr("fe80::1")
	routerMAC = synth.MAC(1)
	allNodes  = addr("ff02::1")
	link64    = netip.MustParsePrefix("2001:db8:1::/64")
)

// ra is a Router Advertisement from src (MAC mac) announcing prefix.
func ra(src netip.Addr, mac net.HardwareAddr, lifetime uint16, prefix netip.Prefix) synth.Msg {
	return synth.Msg{Src: src, Dst: allNodes, SrcMAC: mac, Type: 134, Rest: synth.RA(lifetime, 0, synth.PrefixOpt(prefix), synth.LinkAddrOpt(1, mac))}
}

// na is a Neighbor Advertisement of target at mac, sent to dst.
func na(target netip.Addr, mac net.HardwareAddr, dst netip.Addr, solicited, override bool) synth.Msg {
	return synth.Msg{Src: target, Dst: dst, SrcMAC: mac, Type: 136, Rest: synth.NA(target, false, solicited, override, synth.LinkAddrOpt(2, mac))}
}

// ns is a Neighbor Solicitation from src (MAC mac) for target, to dst.
func ns(src netip.Addr, mac net.HardwareAddr, target, dst netip.Addr) synth.Msg {
	m := synth.Msg{Src: src, Dst: dst, SrcMAC: mac, Type: 135}
	if src.IsUnspecified() {
		m.Rest = synth.NS(target)
	} else {
		m.Rest = synth.NS(target, synth.LinkAddrOpt(1, mac))
	}
	return m
}

// solicitedNode is the solicited-node group of a.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// periodicRAs is a router advertising every 200 s and answering two
// solicitations, over an hour.
func periodicRAs() []synth.Frame {
	f := synth.Every(ra(routerLL, routerMAC, 1800, link64), ruleEpoch, 200*time.Second, 18, nil)
	f = append(f, ra(routerLL, routerMAC, 1800, link64).At(ruleEpoch.Add(61*time.Second)), ra(routerLL, routerMAC, 1800, link64).At(ruleEpoch.Add(62*time.Second)))
	return synth.Merge(f)
}

func TestNDRules(t *testing.T) {
	host := func(i int) netip.Addr { return nth(addr("2001:db8:1::"), 0x100+i) }
	attacker := synth.MAC(66)
	tests := []struct {
		name   string
		frames []synth.Frame
		want   []string // starts of the ND rules
	}{
		// ra_flood: flood_router26, a new router and prefix each time.
		{"flood_router26", seq(ra(routerLL, routerMAC, 1800, link64), ruleEpoch, 1000, 5000, func(i int, m *synth.Msg) {
			mac := synth.MAC(uint32(1000 + i))
			p := netip.PrefixFrom(nth(addr("2001:db8:ff00::"), i), 64).Masked()
			*m = ra(nth(addr("fe80::1:0"), i), mac, 1800, netip.MustParsePrefix(p.String()))
			m.Rest = synth.RA(1800, 1, synth.PrefixOpt(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xf0, byte(i >> 8), byte(i)}), 64)), synth.LinkAddrOpt(1, mac))
		}), []string{"ra_flood ff02::1", "rogue_ra ff02::1"}},
		{"a router: periodic and solicited RAs", periodicRAs(), nil},
		// rogue_ra
		{"fake_router26 after the learning period", synth.Merge(periodicRAs(), []synth.Frame{ra(addr("fe80::bad"), attacker, 1800, netip.MustParsePrefix("2001:db8:bad::/64")).At(ruleEpoch.Add(5 * time.Minute))}), []string{"rogue_ra ff02::1"}},
		{"kill_router6: lifetime 0 in the router's name", synth.Merge(periodicRAs(), []synth.Frame{ra(routerLL, attacker, 0, link64).At(ruleEpoch.Add(5 * time.Minute))}), []string{"rogue_ra ff02::1"}},
		{"RA with hop limit 64", []synth.Frame{func() synth.Frame { m := ra(routerLL, routerMAC, 1800, link64); m.TTL = 64; return m.At(ruleEpoch) }()}, []string{"rogue_ra ff02::1"}},
		{"router failover: the standby's RAs appear when the master stops", synth.Merge(
			synth.Every(ra(routerLL, routerMAC, 1800, link64), ruleEpoch, 10*time.Second, 3, nil),
			synth.Every(ra(addr("fe80::2"), synth.MAC(2), 1800, link64), ruleEpoch.Add(5*time.Second), 10*time.Second, 3, nil),
			synth.Every(ra(addr("fe80::2"), synth.MAC(2), 1800, link64), ruleEpoch.Add(10*time.Minute), 200*time.Second, 5, nil)), nil},
		// nd_flood
		{"flood_solicitate6: random sources to the link", seq(ns(routerLL, routerMAC, host(0), allNodes), ruleEpoch, 2000, 6000, func(i int, m *synth.Msg) {
			*m = ns(nth(addr("2001:db8:1::8000"), i), synth.MAC(uint32(5000+i)), host(i), allNodes)
		}), []string{"nd_flood ff02::1"}},
		{"neighbor-cache exhaustion: the router resolves 1000 addresses a second", seq(ns(routerLL, routerMAC, host(0), allNodes), ruleEpoch, 1000, 4000, func(i int, m *synth.Msg) {
			*m = ns(routerLL, routerMAC, host(i), solicitedNode(host(i)))
		}), []string{"nd_flood fe80::1"}},
		{"flood_advertise6", seq(na(host(0), attacker, allNodes, false, true), ruleEpoch, 1000, 4000, func(i int, m *synth.Msg) {
			*m = na(host(i), synth.MAC(uint32(9000+i)), allNodes, false, true)
		}), []string{"nd_flood ff02::1"}},
		{"hosts resolving each other", seq(ns(host(0), synth.MAC(100), host(1), solicitedNode(host(1))), ruleEpoch, 20, 600, func(i int, m *synth.Msg) {
			a, b := i%30, (i+1)%30
			*m = ns(host(a), synth.MAC(uint32(100+a)), host(b), solicitedNode(host(b)))
		}), nil},
		{"a host coming up: DAD and unsolicited NA", []synth.Frame{
			ns(addr("::"), synth.MAC(7), host(7), solicitedNode(host(7))).At(ruleEpoch),
			na(host(7), synth.MAC(7), allNodes, false, true).At(ruleEpoch.Add(time.Second))}, nil},
		// nd_spoof
		{"parasite6: one MAC takes over known addresses", synth.Merge(
			seq(na(host(0), synth.MAC(100), allNodes, false, true), ruleEpoch, 10, 10, func(i int, m *synth.Msg) { *m = na(host(i), synth.MAC(uint32(100+i)), allNodes, false, true) }),
			seq(na(host(0), attacker, allNodes, true, true), ruleEpoch.Add(5*time.Second), 10, 10, func(i int, m *synth.Msg) { *m = na(host(i), attacker, allNodes, true, true) })),
			[]string{"nd_spoof 2001:db8:1::100"}}, // one attacker, one attack: on the first address it took
		{"one address fought over", seq(na(host(1), synth.MAC(101), allNodes, false, true), ruleEpoch, 1, 6, func(i int, m *synth.Msg) {
			mac := synth.MAC(101)
			if i%2 == 1 {
				mac = attacker
			}
			*m = na(host(1), mac, allNodes, false, true)
		}), []string{"nd_spoof 2001:db8:1::101"}},
		{"a host whose NIC changes once", []synth.Frame{
			na(host(1), synth.MAC(101), allNodes, false, true).At(ruleEpoch),
			na(host(1), synth.MAC(201), allNodes, false, true).At(ruleEpoch.Add(time.Hour))}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range startsOf(replay(t, tc.frames, defaultRules(t)...)) {
				for _, r := range []string{"ra_flood", "rogue_ra", "nd_flood", "nd_spoof", "icmp_flood"} {
					if len(only([]string{s}, r)) == 1 {
						got = append(got, s)
					}
				}
			}
			if !equal(got, tc.want) {
				t.Errorf("starts %v\nwant %v", got, tc.want)
			}
		})
	}
}

// Configured routers: an RA from another router is rogue at once, with no
// learning period.
func TestRogueRAConfigured(t *testing.T) {
	cfg := rules.DefaultRogueRAConfig()
	cfg.Routers = []string{"fe80::1", routerMAC.String()}
	evs := replay(t, []synth.Frame{
		ra(routerLL, routerMAC, 1800, link64).At(ruleEpoch),
		ra(addr("fe80::bad"), synth.MAC(66), 1800, link64).At(ruleEpoch.Add(time.Second)),
	}, rules.NewRogueRA(cfg))
	ev := firstStart(evs, "rogue_ra")
	if ev == nil || ev.Extra["router"] != addr("fe80::bad") {
		t.Fatalf("events %v", evs)
	}
	if rs, _ := ev.Extra["reasons"].(map[string]any); rs["unknown_router"] == nil {
		t.Errorf("reasons %v", rs)
	}
}

// flood_router26 with 10 M forged routers must not grow memory: the
// tables stay at their caps.
func TestNDTablesBounded(t *testing.T) {
	rf, rr := rules.NewRAFlood(rules.DefaultRAFloodConfig()), rules.NewRogueRA(rules.DefaultRogueRAConfig())
	nf, sp := rules.NewNDFlood(rules.DefaultNDFloodConfig()), rules.NewNDSpoof(rules.DefaultNDSpoofConfig())
	frames := seq(ra(routerLL, routerMAC, 1800, link64), ruleEpoch, 50000, 100000, func(i int, m *synth.Msg) {
		src := nth(addr("fe80::"), i)
		if i%2 == 1 {
			*m = na(nth(addr("2001:db8:1::"), i), synth.MAC(uint32(i)), allNodes, false, true)
			return
		}
		*m = ra(src, synth.MAC(uint32(i)), 1800, link64)
	})
	replay(t, frames, rf, rr, nf, sp)
	for _, st := range append(append(append(rf.Tables(), rr.Tables()...), nf.Tables()...), sp.Tables()...) {
		if st.Len > st.Cap {
			t.Errorf("%s: %d entries over cap %d", st.Name, st.Len, st.Cap)
		}
	}
	if st := rr.Tables()[0]; st.Evicted == 0 {
		t.Errorf("rogue_ra routers %+v: 50,000 forged routers should have evicted some", st)
	}
}
