package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// knownHosts is n hosts of link64 announcing themselves (an unsolicited
// NA each from its own MAC 100+i), one a second from start.
func knownHosts(n int, start time.Time) []synth.Frame {
	return seq(na(ndHost(0), synth.MAC(100), allNodes, false, true), start, 1, n, func(i int, m *synth.Msg) {
		*m = na(ndHost(i), synth.MAC(uint32(100+i)), allNodes, false, true)
	})
}

// knownOne is one host (MAC 100) announcing n addresses, one a second.
func knownOne(n int, start time.Time) []synth.Frame {
	return seq(na(ndHost(0), synth.MAC(100), allNodes, false, true), start, 1, n, func(i int, m *synth.Msg) {
		*m = na(ndHost(i), synth.MAC(100), allNodes, false, true)
	})
}

// ndHost is the i-th host of link64.
func ndHost(i int) netip.Addr { return nth(addr("2001:db8:1::"), 0x100+i) }

// TestNDSpoofTwins holds nd_spoof's attack and benign twins: each attack
// is one attack on its target, with its trigger and, for many addresses,
// their count; each benign twin stays silent.
func TestNDSpoofTwins(t *testing.T) {
	attacker := synth.MAC(66)
	at := func(d time.Duration) time.Time { return ruleEpoch.Add(d) }
	// The owners answer again 2 s after each forged NA: a flip war.
	owners := func(n int, start time.Time) []synth.Frame {
		return seq(na(ndHost(0), synth.MAC(100), allNodes, true, true), start.Add(2*time.Second), 1, n, func(i int, m *synth.Msg) {
			*m = na(ndHost(i), synth.MAC(uint32(100+i)), allNodes, true, true)
		})
	}
	parasite := func(n int, start time.Time) []synth.Frame {
		return seq(na(ndHost(0), attacker, allNodes, true, true), start, 1, n, func(i int, m *synth.Msg) {
			*m = na(ndHost(i), attacker, allNodes, true, true)
		})
	}
	fresh := func(n int, start time.Time) []synth.Frame {
		return seq(na(ndHost(0), attacker, allNodes, true, true), start, 1, n, func(i int, m *synth.Msg) {
			*m = na(ndHost(i), synth.MAC(uint32(7000+i)), allNodes, true, true)
		})
	}
	// paddedNA is the owner's NA for ndHost(0) from its own MAC (100)
	// carrying opts: what hosts read of its options, the sensor reads of
	// the first MaxNDOptions alone.
	paddedNA := func(opts ...[]byte) synth.Msg {
		m := na(ndHost(0), synth.MAC(100), allNodes, false, true)
		m.Rest = synth.NA(ndHost(0), false, false, true, opts...)
		return m
	}
	// paddedFor is the owner's NA for each of n known addresses (MAC
	// 100+i), from the frame source srcMAC(i), padded with 40 options,
	// the attacker's MAC in a TLLA option after them (tlla: the owner's
	// TLLA option first, a benign twin), every 10 ms from start, rounds
	// times over.
	paddedFor := func(n, rounds int, start time.Time, srcMAC func(i int) uint32, tlla bool) []synth.Frame {
		return seq(na(ndHost(0), synth.MAC(100), allNodes, false, true), start, 100, n*rounds, func(k int, m *synth.Msg) {
			i := k % n
			*m = na(ndHost(i), synth.MAC(srcMAC(i)), allNodes, false, true)
			if tlla {
				m.Rest = synth.NA(ndHost(i), false, false, true, synth.LinkAddrOpt(2, synth.MAC(uint32(100+i))), padding(40), synth.LinkAddrOpt(2, attacker))
			} else {
				m.Rest = synth.NA(ndHost(i), false, false, true, padding(40), synth.LinkAddrOpt(2, attacker))
			}
		})
	}
	owner := func(i int) uint32 { return uint32(100 + i) }
	tests := []struct {
		name      string
		frames    []synth.Frame
		want      []string // nd_spoof starts
		trigger   string
		addresses uint64 // the attack's addresses (0: not checked)
		packets   uint64 // at least this many packets in the attack's end (0: not checked)
	}{
		{"50 known addresses rebound each to its own fresh MAC",
			synth.Merge(knownHosts(50, ruleEpoch), fresh(50, at(time.Minute))),
			[]string{"nd_spoof 2001:db8:1::100"}, "fresh_macs", 50, 0},
		{"50 fresh MACs, the owners taking their addresses back",
			synth.Merge(knownHosts(50, ruleEpoch), fresh(50, at(time.Minute)), owners(50, at(time.Minute))),
			[]string{"nd_spoof 2001:db8:1::100"}, "fresh_macs", 50, 0},
		{"the default router's address taken over once and held (an NA every 5 s for 5 minutes)",
			synth.Merge(periodicRAs(), synth.Every(na(routerLL, attacker, allNodes, false, true), at(2*time.Minute), 5*time.Second, 60, nil)),
			[]string{"nd_spoof fe80::1"}, "router", 0, 60},
		{"parasite6 over 50 addresses from one MAC",
			synth.Merge(knownHosts(50, ruleEpoch), parasite(50, at(time.Minute))),
			[]string{"nd_spoof 2001:db8:1::100"}, "takeover", 50, 0},
		{"parasite6 over 50 addresses, the owners answering too",
			synth.Merge(knownHosts(50, ruleEpoch), parasite(50, at(time.Minute)), owners(50, at(time.Minute)), parasite(50, at(2*time.Minute))),
			[]string{"nd_spoof 2001:db8:1::100"}, "takeover", 50, 0},
		// What the live parasite6 does: each solicitation answered by the
		// owner, then three times by parasite6 (router flag set), over six
		// addresses of one host, twice (the sensor knew them before).
		{"parasite6's pattern: the owner answers, then parasite6 thrice, twice over one host's six addresses",
			func() []synth.Frame {
				fs := knownOne(6, ruleEpoch)
				ts := at(time.Minute)
				for round := 0; round < 2; round++ {
					for i := 0; i < 6; i++ {
						fs = append(fs, na(ndHost(i), synth.MAC(100), ndHost(99), true, true).At(ts))
						for k := 0; k < 3; k++ {
							m := na(ndHost(i), attacker, ndHost(99), k == 0, true)
							m.Rest = synth.NA(ndHost(i), true, k == 0, true, synth.LinkAddrOpt(2, attacker)) // with the router flag, as parasite6 sends
							fs = append(fs, m.At(ts.Add(time.Duration(k+1)*time.Millisecond)))
						}
						ts = ts.Add(5 * time.Millisecond)
					}
					ts = ts.Add(600 * time.Millisecond)
				}
				return fs
			}(),
			[]string{"nd_spoof 2001:db8:1::100"}, "takeover", 6, 0},
		// The bound: the attacker's MAC in a target link-layer option past
		// the 32 options read, from the owner's frame source (hosts take
		// it; the sensor read no option naming a MAC): 3,000 such NAs at
		// 1,000/s are one attack.
		{"the owner's NA padded with 40 options, the attacker's MAC in its TLLA option after them (3,000 at 1,000/s)",
			synth.Merge(knownHosts(1, ruleEpoch), seq(paddedNA(padding(40), synth.LinkAddrOpt(2, attacker)), at(time.Minute), 1000, 3000, nil)),
			[]string{"nd_spoof 2001:db8:1::100"}, "padded_options", 0, 3000},
		// Padded NAs for many known addresses are one attack, on the
		// first, whatever frame source each comes from (before: one
		// attack per address).
		{"padded NAs for 50 known addresses from their owners' frame sources, 3 rounds",
			synth.Merge(knownHosts(50, ruleEpoch), paddedFor(50, 3, at(time.Minute), owner, false)),
			[]string{"nd_spoof 2001:db8:1::100"}, "padded_options", 50, 150},
		{"padded NAs for 50 known addresses, each from a fresh frame source",
			synth.Merge(knownHosts(50, ruleEpoch), paddedFor(50, 1, at(time.Minute), func(i int) uint32 { return uint32(9000 + i) }, false)),
			[]string{"nd_spoof 2001:db8:1::100"}, "padded_options", 50, 50},
		// Benign twins.
		{"50 owners' NAs padded with 40 options after their TLLA options, 3 rounds",
			synth.Merge(knownHosts(50, ruleEpoch), paddedFor(50, 3, at(time.Minute), owner, true)), nil, "", 0, 0},
		{"the owner's NA padded with 40 options after its TLLA option (3,000 at 1,000/s)",
			synth.Merge(knownHosts(1, ruleEpoch), seq(paddedNA(synth.LinkAddrOpt(2, synth.MAC(100)), padding(40), synth.LinkAddrOpt(2, attacker)), at(time.Minute), 1000, 3000, nil)),
			nil, "", 0, 0},
		{"the router's own RAs and NAs", synth.Merge(periodicRAs(),
			synth.Every(na(routerLL, routerMAC, allNodes, true, true), at(time.Minute), 30*time.Second, 60, func(_ int, m *synth.Msg) {
				m.Rest = synth.NA(routerLL, true, true, true, synth.LinkAddrOpt(2, routerMAC))
			})), nil, "", 0, 0},
		{"three hosts' NICs change within ten minutes", synth.Merge(knownHosts(50, ruleEpoch),
			[]synth.Frame{
				na(ndHost(3), synth.MAC(203), allNodes, false, true).At(at(2 * time.Minute)),
				na(ndHost(4), synth.MAC(204), allNodes, false, true).At(at(5 * time.Minute)),
				na(ndHost(5), synth.MAC(205), allNodes, false, true).At(at(9 * time.Minute)),
			}), nil, "", 0, 0},
		{"a host with two addresses changes its NIC", []synth.Frame{
			na(ndHost(1), synth.MAC(101), allNodes, false, true).At(ruleEpoch),
			na(ndHost(2), synth.MAC(101), allNodes, false, true).At(ruleEpoch),
			na(ndHost(1), synth.MAC(201), allNodes, false, true).At(at(time.Hour)),
			na(ndHost(2), synth.MAC(201), allNodes, false, true).At(at(time.Hour))}, nil, "", 0, 0},
		{"fifty hosts come up, none rebound", knownHosts(50, ruleEpoch), nil, "", 0, 0},
		{"a host with four addresses moves to a new NIC (or its addresses fail over to a standby)", synth.Merge(
			seq(na(ndHost(0), synth.MAC(101), allNodes, false, true), ruleEpoch, 1, 4, func(i int, m *synth.Msg) {
				*m = na(ndHost(i), synth.MAC(101), allNodes, false, true)
			}),
			seq(na(ndHost(0), synth.MAC(201), allNodes, false, true), at(time.Minute), 1, 4, func(i int, m *synth.Msg) {
				*m = na(ndHost(i), synth.MAC(201), allNodes, false, true)
			})), nil, "", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			got := only(startsOf(evs), "nd_spoof")
			if !equal(got, tc.want) {
				t.Fatalf("starts %v, want %v", got, tc.want)
			}
			if tc.want == nil {
				return
			}
			var end *detector.Event
			for _, e := range evs {
				if e.Rule.Name == "nd_spoof" && e.Phase == detector.PhaseEnd {
					end = e
				}
			}
			if end == nil {
				t.Fatal("no end")
			}
			if end.Extra["trigger"] != tc.trigger {
				t.Errorf("trigger %v, want %s (context %v)", end.Extra["trigger"], tc.trigger, end.Extra)
			}
			if tc.trigger == "padded_options" && (end.Extra["new_mac"] != "unverified" || end.Extra["old_mac"] != synth.MAC(100).String()) {
				t.Errorf("a binding the sensor could not read: context %v, want new_mac unverified, old_mac the owner's", end.Extra)
			}
			if tc.addresses > 0 {
				if end.Extra["addresses"] != tc.addresses {
					t.Errorf("end addresses %v, want %d", end.Extra["addresses"], tc.addresses)
				}
				if l, _ := end.Extra["taken_over"].([]string); len(l) != min(16, int(tc.addresses)) || l[0] != ndHost(0).String() {
					t.Errorf("taken_over %v: want the first 16, the target first", l)
				}
			}
			if tc.packets > 0 && end.Packets < tc.packets {
				t.Errorf("the attack ended with %d packets: a held takeover is one attack for as long as it is held (%d NAs)", end.Packets, tc.packets)
			}
		})
	}
}

// The takeover table holds at most its cap of attackers however many
// MACs take over two addresses each, and counts what it evicts.
func TestNDSpoofAttackersBounded(t *testing.T) {
	sp := rules.NewNDSpoof(rules.DefaultNDSpoofConfig())
	var frames []synth.Frame
	frames = append(frames, knownHosts(2000, ruleEpoch)...)
	for i := 0; i < 1000; i++ {
		mac := synth.MAC(uint32(20000 + i))
		frames = append(frames,
			na(ndHost(2*i), mac, allNodes, true, true).At(at2(ruleEpoch, 2000+i)),
			na(ndHost(2*i+1), mac, allNodes, true, true).At(at2(ruleEpoch, 2000+i)))
	}
	replay(t, frames, sp)
	st := sp.Tables()[1]
	if st.Name != "nd_spoof.attackers" || st.Len > st.Cap || st.Evicted == 0 {
		t.Errorf("%+v: 1000 MACs taking two addresses each should fill the capped table and evict", st)
	}
}

// at2 is n seconds after start.
func at2(start time.Time, n int) time.Time { return start.Add(secs(n)) }
