package rules_test

import (
	"net"
	"net/netip"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
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

// raOpts is a Router Advertisement from src (Ethernet source ether),
// router lifetime 1800, carrying opts as given.
func raOpts(src netip.Addr, ether net.HardwareAddr, opts ...[]byte) synth.Msg {
	return synth.Msg{Src: src, Dst: allNodes, SrcMAC: ether, Type: 134, Rest: synth.RA(1800, 0, opts...)}
}

// manyPrefixes is n /64s of 2001:db8:100::/40.
func manyPrefixes(n int) []netip.Prefix {
	var ps []netip.Prefix
	for i := 0; i < n; i++ {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 1, 0, byte(i)}), 64))
	}
	return ps
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
	rogue := addr("fe80::bad")
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
		// Item 3: learning is not trust.
		{"fake_router26 -A 2001:db8:bad::/64 -p high 0.1 s after the real router's RA",
			synth.Merge(periodicRAs(), synth.Every(raAs(rogue, attacker, attacker, 1800, 1, badPfx), at(100*time.Millisecond), 5*time.Second, 12, nil)),
			[]string{"new_prefix", "preference"}, []string{"fe80::bad"}},
		{"a rogue prefix at medium preference 30 s after the real router",
			synth.Merge(periodicRAs(), synth.Every(raAs(rogue, attacker, attacker, 1800, 0, badPfx), at(30*time.Second), 5*time.Second, 12, nil)),
			[]string{"new_prefix"}, []string{"fe80::bad"}},
		{"the router's own prefix from a rogue at high preference (a man in the middle)",
			synth.Merge(periodicRAs(), synth.Every(raAs(rogue, attacker, attacker, 1800, 1, link64), at(20*time.Second), 5*time.Second, 12, nil)),
			[]string{"preference"}, []string{"fe80::bad"}},
		{"a rogue already running when the sensor starts; the router heard 3 s later",
			synth.Merge(synth.Every(raAs(rogue, attacker, attacker, 1800, 1, badPfx), ruleEpoch, 5*time.Second, 60, nil),
				synth.Every(ra(routerLL, routerMAC, 1800, link64), at(3*time.Second), 200*time.Second, 10, nil)),
			[]string{"new_prefix", "preference"}, []string{"fe80::bad"}},
		{"a rogue already running; the router's first RA after the learning minute",
			synth.Merge(synth.Every(raAs(rogue, attacker, attacker, 1800, 1, badPfx), ruleEpoch, 5*time.Second, 60, nil),
				synth.Every(ra(routerLL, routerMAC, 1800, link64), at(150*time.Second), 200*time.Second, 10, nil)),
			[]string{"new_prefix", "preference"}, []string{"fe80::bad"}},
		{"kill_router6 already running: lifetime 0 in the router's name before the router is heard",
			synth.Merge(synth.Every(raAs(routerLL, attacker, attacker, 0, 0), ruleEpoch, 3*time.Second, 30, nil),
				synth.Every(ra(routerLL, routerMAC, 1800, link64), at(time.Second), 200*time.Second, 10, nil)),
			[]string{"spoofed_router"}, []string{"fe80::1"}},
		// The bound: hosts read every option and use the first SLLA; the
		// sensor reads MaxNDOptions (32). The router's addresses, padding
		// to option 41, then the attacker's MAC in an SLLA option: hosts
		// send the router's traffic to the attacker.
		{"the router's addresses, its RA padded with 40 options, an SLLA option naming another MAC after them",
			synth.Merge(periodicRAs(), []synth.Frame{raOpts(routerLL, routerMAC, synth.PrefixOpt(link64), padding(40), synth.LinkAddrOpt(1, attacker)).At(at(5 * time.Minute))}),
			[]string{"padded_options"}, []string{"fe80::1"}},
		// Learning is not trust of what the sensor did not read: a rogue
		// heard first, padded past the walk's bound with its prefix
		// behind the padding and no SLLA option read, must not become the
		// link's router (before: learned, so the real router's RAs were
		// the new_prefix alerts, and the rogue silent).
		{"a rogue's padded RAs from the sensor's start, its prefix behind 40 options; the router heard 3 s later",
			synth.Merge(synth.Every(raOpts(rogue, attacker, padding(40), synth.PrefixOpt(badPfx)), ruleEpoch, 5*time.Second, 30, nil),
				synth.Every(ra(routerLL, routerMAC, 1800, link64), at(3*time.Second), 200*time.Second, 10, nil)),
			[]string{"new_prefix"}, []string{"fe80::bad"}},
		// The walk keeps MaxNDPrefixes (16) prefixes: a rogue padding
		// its RA with the link's own prefix hides a new one behind them
		// (before: learned while learning, silent from then on).
		{"a rogue while learning: the router's prefix 16 times, then its own",
			synth.Merge(periodicRAs(), synth.Every(raAs(rogue, attacker, attacker, 1800, 0, append(slices.Repeat([]netip.Prefix{link64}, 16), badPfx)...), at(30*time.Second), 5*time.Second, 12, nil)),
			[]string{"new_prefix"}, []string{"fe80::bad"}},
		{"radvd alone: periodic and solicited RAs", periodicRAs(), nil, nil},
		{"the router's first RA padded with 40 options after its SLLA option, then its periodic RAs",
			synth.Merge([]synth.Frame{raOpts(routerLL, routerMAC, synth.LinkAddrOpt(1, routerMAC), synth.PrefixOpt(link64), padding(40)).At(ruleEpoch)},
				synth.Every(ra(routerLL, routerMAC, 1800, link64), at(time.Second), 200*time.Second, 18, nil)), nil, nil},
		{"a router announcing 17 prefixes", synth.Every(raAs(routerLL, routerMAC, routerMAC, 1800, 0, manyPrefixes(17)...), ruleEpoch, 200*time.Second, 18, nil), nil, nil},
		{"the router's RA padded with 40 options after its SLLA option",
			synth.Merge(periodicRAs(), []synth.Frame{raOpts(routerLL, routerMAC, synth.LinkAddrOpt(1, routerMAC), synth.PrefixOpt(link64), padding(40), synth.LinkAddrOpt(1, attacker)).At(at(5 * time.Minute))}),
			nil, nil},
		{"two routers advertising the same prefix (a VRRP pair)", synth.Merge(
			synth.Every(ra(routerLL, routerMAC, 1800, link64), ruleEpoch, 200*time.Second, 18, nil),
			synth.Every(ra(addr("fe80::2"), synth.MAC(2), 1800, link64), at(time.Second), 200*time.Second, 18, nil)), nil, nil},
		{"a backup router with the same prefix at low preference", synth.Merge(
			synth.Every(ra(routerLL, routerMAC, 1800, link64), ruleEpoch, 200*time.Second, 18, nil),
			synth.Every(raAs(addr("fe80::2"), synth.MAC(2), synth.MAC(2), 1800, 3, link64), at(10*time.Second), 200*time.Second, 18, nil)), nil, nil},
		{"a router's periodic RAs with changing lifetimes (down to 0 and back)",
			synth.Every(ra(routerLL, routerMAC, 1800, link64), ruleEpoch, 200*time.Second, 18, func(i int, m *synth.Msg) {
				*m = raAs(routerLL, routerMAC, routerMAC, uint16([]int{1800, 1500, 900, 0, 0, 1800}[i%6]), 0, link64)
			}), nil, nil},
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

// The link's routers outlive a flood of forged routers: flood_router26's
// 5,000 routers (five times the routers table) do not evict the real
// router, whose RAs after the flood raise nothing (they were evicted and
// reported as unknown_router before).
func TestRogueRARoutersSurviveAFlood(t *testing.T) {
	flood := seq(ra(routerLL, routerMAC, 1800, link64), ruleEpoch.Add(2*time.Minute), 1000, 5000, func(i int, m *synth.Msg) {
		mac := synth.MAC(uint32(1000 + i))
		*m = ra(nth(addr("fe80::1:0"), i), mac, 1800, netip.PrefixFrom(nth(addr("2001:db8:ff00::"), i<<4), 64).Masked())
	})
	evs := replay(t, synth.Merge(periodicRAs(), flood), defaultRules(t)...)
	n := 0
	for _, ev := range evs {
		if ev.Rule.Name == "rogue_ra" && ev.Phase == detector.PhaseStart {
			n++
			if ev.Time.After(ruleEpoch.Add(3 * time.Minute)) {
				t.Errorf("rogue_ra start at %v, router %v: the real router was forgotten in the flood", ev.Time.Sub(ruleEpoch), ev.Extra["router"])
			}
		}
	}
	if n != 1 {
		t.Errorf("%d rogue_ra starts, want the flood's", n)
	}
}

// TestRogueRAAdmission: once rogue_ra's routers table is full, an
// untrusted router gets an entry at its second RA only (the doorkeeper in
// front of the table), so a flood of forged routers neither pays an
// insertion and an eviction per RA nor evicts the routers it holds — and
// it must not open a way past the rule. Attack twin: after learning, the
// table filled with routers that announce nothing, a rogue sends one RA
// from each of 60 new addresses (one RA per forged router, never a
// second): every one of them is judged and counted (unknown_router,
// new_prefix), as it was before admission. Benign twins: a real router
// first heard while the table is full during learning is still learned
// (its RAs after learning raise nothing), and the junk alone raises
// nothing.
func TestRogueRAAdmission(t *testing.T) {
	cfg := rules.DefaultRogueRAConfig()
	cfg.MaxRouters = 8
	junk := seq(synth.Msg{Src: addr("fe80::2:0"), Dst: allNodes, Type: 134, Rest: synth.RA(0, 0)}, ruleEpoch.Add(5*time.Second), 10, 40,
		func(i int, m *synth.Msg) {
			m.Src, m.SrcMAC = nth(addr("fe80::2:0"), i), synth.MAC(uint32(2000+i))
		})
	rogue := seq(ra(addr("fe80::3:0"), synth.MAC(3000), 1800, netip.MustParsePrefix("2001:db8:bad::/64")), ruleEpoch.Add(100*time.Second), 0.5, 60,
		func(i int, m *synth.Msg) {
			mac := synth.MAC(uint32(3000 + i))
			*m = ra(nth(addr("fe80::3:0"), i), mac, 1800, netip.MustParsePrefix("2001:db8:bad::/64"))
		})
	// The real router speaks first at 20 s, the table already full of junk.
	late := synth.Every(ra(routerLL, routerMAC, 1800, link64), ruleEpoch.Add(20*time.Second), 200*time.Second, 18, nil)
	tests := []struct {
		name    string
		frames  []synth.Frame
		packets uint64 // rogue_ra's packets on ff02::1 (0: no attack)
		evicted uint64 // from the routers table (before admission: 92, 32, 33, 92)
	}{
		{"one RA per forged router, table full", synth.Merge(periodicRAs(), junk, rogue), 60, 0},
		{"the junk alone", synth.Merge(periodicRAs(), junk), 0, 0},
		{"a router first heard with the table full, while learning", synth.Merge(junk, late), 0, 1},
		{"the same router, then the one-RA rogues", synth.Merge(junk, late, rogue), 60, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rules.NewRogueRA(cfg)
			evs := replay(t, tc.frames, r)
			var packets uint64
			reasons := map[string]bool{}
			for _, ev := range evs {
				if ev.Rule.Name != "rogue_ra" {
					continue
				}
				if ev.Target != allNodes {
					t.Errorf("rogue_ra on %v, want ff02::1 only", ev.Target)
				}
				packets = max(packets, ev.Packets)
				if rs, ok := ev.Extra["reasons"].(map[string]any); ok {
					for k := range rs {
						reasons[k] = true
					}
				}
			}
			if packets != tc.packets {
				t.Fatalf("rogue_ra counted %d packets, want %d (reasons %v)", packets, tc.packets, reasons)
			}
			if tc.packets > 0 && (!reasons["unknown_router"] || !reasons["new_prefix"]) {
				t.Errorf("reasons %v, want unknown_router and new_prefix", reasons)
			}
			if tb := r.Tables()[0]; tb.Len > cfg.MaxRouters || tb.Evicted != tc.evicted {
				t.Errorf("routers table: %d entries (cap %d), %d evicted, want %d", tb.Len, cfg.MaxRouters, tb.Evicted, tc.evicted)
			}
		})
	}
}
