package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// fragmented cuts each frame of fs (Ethernet, IPv4 or IPv6) into
// fragments of at most size data bytes, every fragment of one frame at
// the frame's time, ids counting from id.
func fragmented(t testing.TB, fs []synth.Frame, size int, id uint32) []synth.Frame {
	t.Helper()
	var out []synth.Frame
	for i, f := range fs {
		parts, err := synth.FragmentFrame(f.Data, size, id+uint32(i))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			out = append(out, synth.Frame{Time: f.Time, Data: p})
		}
	}
	return out
}

// withDestOpts puts a destination-options header of n bytes between the
// IPv6 header and the upper layer of the Ethernet frame f, as THC's -D
// does.
func withDestOpts(t testing.TB, f synth.Frame, n int) synth.Frame {
	t.Helper()
	ip := f.Data[14:]
	src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
	b := synth.IPv6(src, dst, []synth.IPv6Ext{synth.DestOptsN(n)}, ip[6], ip[40:])
	b[7] = ip[7]
	return synth.Frame{Time: f.Time, Data: append(append([]byte{}, f.Data[:14]...), b...)}
}

// wrapped wraps each frame of fs as kind (synth.Wrap).
func wrapped(t testing.TB, kind string, fs []synth.Frame) []synth.Frame {
	t.Helper()
	out, err := synth.WrapFrames(kind, fs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFragmentedRA: a Router Advertisement in fragments is judged as the
// RA it reassembles to (RFC 7113's RA-Guard evasion, THC fake_router6
// -F/-D), and a fragmented ND message is itself a reason (RFC 6980).
// Before reassembly the first two raised nothing and the third only
// frag_tiny.
func TestFragmentedRA(t *testing.T) {
	rogue := ra(addr("fe80::bad"), synth.MAC(66), 1800, netip.MustParsePrefix("2001:db8:bad::/64"))
	at := ruleEpoch.Add(5 * time.Minute)
	tests := []struct {
		name   string
		frames []synth.Frame
		want   []string
		reason string // a reason the rogue_ra start must carry
	}{
		{"rogue RA in two fragments, the ICMPv6 header in the first",
			synth.Merge(periodicRAs(), fragmented(t, []synth.Frame{rogue.At(at)}, 32, 7)),
			[]string{"rogue_ra ff02::1"}, "unknown_router"},
		{"the real router's RA in two fragments",
			synth.Merge(periodicRAs(), fragmented(t, []synth.Frame{ra(routerLL, routerMAC, 1800, link64).At(at)}, 32, 8)),
			[]string{"rogue_ra ff02::1"}, "fragmented"},
		{"rogue RA behind a 200-byte destination-options header, the ICMPv6 header in the second fragment",
			synth.Merge(periodicRAs(), fragmented(t, []synth.Frame{withDestOpts(t, rogue.At(at), 200)}, 192, 9)),
			[]string{"frag_tiny ff02::1", "rogue_ra ff02::1"}, "unknown_router"},
		{"kill_router6 in fragments: lifetime 0 in the router's name from another MAC",
			synth.Merge(periodicRAs(), fragmented(t, []synth.Frame{ra(routerLL, synth.MAC(66), 0, link64).At(at)}, 32, 10)),
			[]string{"rogue_ra ff02::1"}, "fragmented"},
		{"rogue RA whose second fragment claims hop limit 64 and comes first", synth.Merge(periodicRAs(), func() []synth.Frame {
			fs := fragmented(t, []synth.Frame{rogue.At(at)}, 32, 11)
			fs[1].Data[14+7] = 64
			return []synth.Frame{fs[1], fs[0]}
		}()), []string{"rogue_ra ff02::1"}, "unknown_router"},
		// Benign twins: the same RAs whole, and fragmented traffic that
		// is not ND, with hop limit 255 or not.
		{"the router's RAs whole", periodicRAs(), nil, ""},
		{"fragmented pings, IPv4 and IPv6", synth.Merge(
			fragmented(t, flood(t, synth.Flood{Target: addr("10.0.0.5"), Source: addr("10.0.0.7"), Start: ruleEpoch, Rate: 1, Count: 10, PayloadLen: 3000}), 1480, 100),
			fragmented(t, flood(t, synth.Flood{Target: addr("2001:db8:1::5"), Source: addr("2001:db8:1::7"), Start: ruleEpoch, Rate: 1, Count: 10, PayloadLen: 3000}), 1232, 200)), nil, ""},
		{"fragmented link-local pings with hop limit 255", fragmented(t, func() []synth.Frame {
			var fs []synth.Frame
			for i := 0; i < 10; i++ {
				m := synth.Msg{Src: addr("fe80::7"), Dst: addr("fe80::5"), Type: 128, TTL: 255, Rest: make([]byte, 3000)}
				fs = append(fs, m.At(ruleEpoch.Add(secs(i))))
			}
			return fs
		}(), 1232, 300), nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			if got := startsOf(evs); !equal(got, tc.want) {
				t.Errorf("starts %v\nwant %v", got, tc.want)
			}
			if tc.reason == "" {
				return
			}
			ev := firstStart(evs, "rogue_ra")
			if ev == nil {
				return
			}
			reasons, _ := ev.Extra["reasons"].(map[string]any)
			if reasons["fragmented"] == nil || reasons[tc.reason] == nil {
				t.Errorf("reasons %v, want fragmented and %s", reasons, tc.reason)
			}
		})
	}
}

// TestFragmentedCarrierFlood: an echo flood inside GRE or IP-in-IP whose
// outer packets are each two fragments (a 1,400-byte ping flood through a
// tunnel on a 1,500-byte path) is the flood it carries. It raised nothing
// before carriers were reassembled.
func TestFragmentedCarrierFlood(t *testing.T) {
	victim := addr("10.77.0.5")
	bare := flood(t, synth.Flood{Target: victim, Source: addr("198.51.100.7"), Start: ruleEpoch, Rate: 2000, Count: 3000, PayloadLen: 1400})
	bare6 := flood(t, synth.Flood{Target: addr("2001:db8:77::5"), Source: addr("2001:db8:51::7"), Start: ruleEpoch, Rate: 2000, Count: 3000, PayloadLen: 1400})
	for _, tc := range []struct {
		kind   string
		frames []synth.Frame
		want   string
	}{
		{synth.WrapGRE, bare, "icmp_flood 10.77.0.5"},
		{synth.WrapIPinIP, bare, "icmp_flood 10.77.0.5"},
		{synth.WrapIPinIP, bare6, "icmp_flood 2001:db8:77::5"},
		{synth.WrapIPinIPv6, bare, "icmp_flood 10.77.0.5"},
		{synth.WrapGREKeySeq, bare6, "icmp_flood 2001:db8:77::5"},
	} {
		t.Run(tc.kind+"/"+tc.want, func(t *testing.T) {
			frames := fragmented(t, wrapped(t, tc.kind, tc.frames), 1400, 1)
			var e *detector.Engine
			evs := replayEngine(t, frames, &e, defaultRules(t)...)
			if got := startsOf(evs); !equal(got, []string{tc.want}) {
				t.Errorf("starts %v, want [%s]", got, tc.want)
			}
			if ev := firstStart(evs, "icmp_flood"); ev != nil && ev.Tunnel.Depth != 1 {
				t.Errorf("tunnel %+v, want the carrier's", ev.Tunnel)
			}
			st := e.Stats().Reassembly
			if st.Completed != 3000 || st.Len != 0 {
				t.Errorf("reassembly %+v, want 3000 completed, none held", st)
			}
		})
	}
}

// TestFragmentedCarrierBenign: ordinary traffic through a tunnel whose
// carriers are fragmented raises nothing: a ping a second, path-MTU
// discovery (the tunnel ingress's fragmentation-needed errors to the
// sender) and a traceroute's probes and time-exceeded answers.
func TestFragmentedCarrierBenign(t *testing.T) {
	host, sender := addr("10.77.0.5"), addr("198.51.100.7")
	pings := flood(t, synth.Flood{Target: host, Source: sender, Start: ruleEpoch, Rate: 1, Count: 30, PayloadLen: 1400})
	var pmtud, trace []synth.Frame
	for i := 0; i < 5; i++ {
		m := synth.Msg{Src: addr("192.0.2.100"), Dst: sender, Type: 3, Code: 4,
			Rest: synth.Unreach(1476, synth.Quote(sender, host, 6, 40000, 443, 1500))}
		pmtud = append(pmtud, m.At(ruleEpoch.Add(secs(i))))
	}
	for ttl := 1; ttl <= 12; ttl++ {
		probe := synth.Msg{Src: sender, Dst: host, Type: 8, TTL: uint8(ttl), Rest: make([]byte, 1450)}
		trace = append(trace, probe.At(ruleEpoch.Add(time.Duration(ttl)*100*time.Millisecond)))
		te := synth.Msg{Src: nth(addr("10.77.1.0"), ttl), Dst: sender, Type: 11, Rest: synth.Unreach(0, synth.Quote(sender, host, 1, 0, 0, 1478))}
		trace = append(trace, te.At(ruleEpoch.Add(time.Duration(ttl)*100*time.Millisecond+time.Millisecond)))
	}
	for name, frames := range map[string][]synth.Frame{"pings": pings, "pmtud": pmtud, "traceroute": trace} {
		for _, kind := range []string{synth.WrapGRE, synth.WrapIPinIP} {
			t.Run(name+"/"+kind, func(t *testing.T) {
				if got := startsOf(replay(t, fragmented(t, wrapped(t, kind, frames), 1400, 1), defaultRules(t)...)); len(got) != 0 {
					t.Errorf("starts %v, want none", got)
				}
			})
		}
	}
}

// replayEngine is replay that also hands back the engine, for its stats.
func replayEngine(t testing.TB, frames []synth.Frame, e **detector.Engine, rs ...detector.Rule) []*detector.Event {
	t.Helper()
	var evs []*detector.Event
	eng, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, ev) }), rs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		eng.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	eng.Close(detector.EndInputEnd)
	*e = eng
	return evs
}
