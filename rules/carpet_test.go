package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// carpet returns count echo requests at rate over hosts hosts of prefix
// (round robin), from src, or from a new spoofed source each when spoofed.
func carpet(prefix netip.Prefix, hosts int, rate float64, count int, src netip.Addr, spoofed bool) []synth.Frame {
	m := synth.Msg{Src: src, Type: 8, Rest: make([]byte, 60)}
	if !src.Is4() {
		m.Type = 128
	}
	return seq(m, ruleEpoch, rate, count, func(i int, m *synth.Msg) {
		m.Dst = nth(prefix.Addr(), 1+i%hosts)
		if spoofed {
			m.Src = synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15+1, src.Is4())
		}
	})
}

func TestCarpetFlood(t *testing.T) {
	s4, s6 := addr("198.51.100.7"), addr("2001:db8:bad::7")
	p24, p22 := netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.8.0.0/22")
	p64 := netip.MustParsePrefix("2001:db8:1::/64")
	mon := func() []synth.Frame { // a monitoring server pinging 300 hosts of two /24s every second
		m := synth.Msg{Src: s4, Type: 8, Rest: make([]byte, 60)}
		return seq(m, ruleEpoch, 300, 3000, func(i int, m *synth.Msg) {
			m.Dst = nth(netip.MustParseAddr("10.1.0.0"), 1+i%300)
		})
	}
	tests := []struct {
		name   string
		frames []synth.Frame
		want   []string // icmp_carpet_flood starts
		flood  []string // icmp_flood starts
	}{
		{"40k pps over a /24", carpet(p24, 254, 40000, 80000, s4, false), []string{"icmp_carpet_flood 192.0.2.0"}, nil},
		{"40k pps over a /24, spoofed", carpet(p24, 254, 40000, 80000, s4, true), []string{"icmp_carpet_flood 192.0.2.0"}, nil},
		{"just above the default, 6k pps", carpet(p24, 200, 6000, 12000, s4, false), []string{"icmp_carpet_flood 192.0.2.0"}, nil},
		// 1M pps over a /24 is also ~3,900 pps per host: every host is
		// flooded too (checked below by count).
		{"1M pps over a /24", carpet(p24, 254, 1e6, 600000, s4, true), []string{"icmp_carpet_flood 192.0.2.0"}, []string{"254 hosts"}},
		{"20k pps over a /22, counted per /24", carpet(p22, 1000, 20000, 40000, s4, false),
			[]string{"icmp_carpet_flood 10.8.0.0", "icmp_carpet_flood 10.8.1.0", "icmp_carpet_flood 10.8.2.0"}, nil},
		{"20k pps over an IPv6 /64", carpet(p64, 500, 20000, 40000, s6, true), []string{"icmp_carpet_flood 2001:db8:1::"}, nil},
		{"a flood of one host is icmp_flood's", carpet(p24, 1, 20000, 40000, s4, true), nil, []string{"icmp_flood 192.0.2.1"}},
		{"a flood of four hosts is icmp_flood's", carpet(p24, 4, 20000, 40000, s4, false), nil,
			[]string{"icmp_flood 192.0.2.1", "icmp_flood 192.0.2.2", "icmp_flood 192.0.2.3", "icmp_flood 192.0.2.4"}},
		{"monitoring server, 300 hosts of two /24s a second", mon(), nil, nil},
		{"below the level, 3k pps", carpet(p24, 254, 3000, 9000, s4, false), nil, nil},
		{"carpet with one host flooded in it", synth.Merge(carpet(p24, 254, 40000, 80000, s4, true),
			carpet(netip.MustParsePrefix("192.0.2.200/32"), 1, 5000, 10000, addr("203.0.113.1"), false)),
			[]string{"icmp_carpet_flood 192.0.2.0"}, []string{"icmp_flood 192.0.2.201"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			starts := startsOf(evs)
			if got := only(starts, "icmp_carpet_flood"); !equal(got, tc.want) {
				t.Errorf("carpet starts %v, want %v", got, tc.want)
			}
			if got := only(starts, "icmp_flood"); len(tc.flood) == 1 && tc.flood[0] == "254 hosts" {
				if len(got) != 254 {
					t.Errorf("%d hosts flooded, want 254", len(got))
				}
			} else if !equal(got, tc.flood) {
				t.Errorf("flood starts %v, want %v", got, tc.flood)
			}
		})
	}
}

// The alert names the prefix, the hosts hit and the top targets, within 2
// s of packet time; an end carries the totals.
func TestCarpetAlertContext(t *testing.T) {
	evs := replay(t, carpet(netip.MustParsePrefix("192.0.2.0/24"), 254, 40000, 80000, addr("198.51.100.7"), false), defaultRules(t)...)
	ev := firstStart(evs, "icmp_carpet_flood")
	if ev == nil {
		t.Fatal("no carpet alert")
	}
	if d := ev.Time.Sub(ruleEpoch); d > 2*time.Second {
		t.Errorf("reported after %v of packet time, want within 2s", d)
	}
	if ev.Extra["prefix"] != "192.0.2.0/24" {
		t.Errorf("prefix %v", ev.Extra["prefix"])
	}
	if h, _ := ev.Extra["hosts"].(uint64); h < 200 || h > 300 {
		t.Errorf("hosts %v, want about 254", ev.Extra["hosts"])
	}
	if tops, _ := ev.Extra["top_targets"].([]any); len(tops) == 0 {
		t.Errorf("no top_targets: %v", ev.Extra)
	}
	var end *detector.Event
	for _, e := range evs {
		if e.Phase == detector.PhaseEnd && e.Rule.Name == "icmp_carpet_flood" {
			end = e
		}
	}
	if end == nil || end.Packets < 70000 || end.Extra["prefix"] != "192.0.2.0/24" {
		t.Fatalf("end %+v", end)
	}
}

// home_networks aggregates each listed prefix with its own length, and
// only those.
func TestCarpetHomeNetworks(t *testing.T) {
	cfg := rules.DefaultCarpetConfig()
	cfg.HomeNetworks = []string{"10.8.0.0/22"}
	frames := synth.Merge(carpet(netip.MustParsePrefix("10.8.0.0/22"), 1000, 20000, 40000, addr("198.51.100.7"), false),
		carpet(netip.MustParsePrefix("192.0.2.0/24"), 254, 40000, 80000, addr("198.51.100.8"), false))
	got := only(startsOf(replay(t, frames, rules.NewCarpet(cfg))), "icmp_carpet_flood")
	if !equal(got, []string{"icmp_carpet_flood 10.8.0.0"}) {
		t.Errorf("starts %v, want the /22 alone", got)
	}
}

// A spoofed-destination flood over the whole address space must not grow
// the prefix table: the admission filter keeps it empty.
func TestCarpetTableBounded(t *testing.T) {
	cfg := rules.DefaultCarpetConfig()
	cfg.MaxPrefixes = 64
	r := rules.NewCarpet(cfg)
	m := synth.Msg{Src: addr("198.51.100.7"), Type: 8, Rest: make([]byte, 8)}
	frames := seq(m, ruleEpoch, 200000, 200000, func(i int, m *synth.Msg) {
		m.Dst = synth.RandomAddr(uint64(i)+7, true)
	})
	replay(t, frames, r)
	st := r.Tables()[0]
	if st.Len > st.Cap {
		t.Fatalf("table %+v over its cap", st)
	}
	if st.Len > 8 {
		t.Errorf("%d prefixes admitted from a spoofed-destination flood", st.Len)
	}
}

func TestCarpetConfigValidate(t *testing.T) {
	cfg := rules.DefaultCarpetConfig()
	cfg.IPv4Prefix, cfg.HomeNetworks, cfg.MinHosts = 40, []string{"nonsense"}, 1
	err := cfg.Validate()
	for _, key := range []string{"rules.icmp_carpet_flood.ipv4_prefix", "rules.icmp_carpet_flood.home_networks[0]", "rules.icmp_carpet_flood.min_hosts"} {
		if err == nil || !contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

// A carpet under way costs no allocation per packet.
func TestCarpetDoesNotAllocate(t *testing.T) {
	frames := carpet(netip.MustParsePrefix("192.0.2.0/24"), 254, 40000, 60000, addr("198.51.100.7"), true)
	var n int
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) { n++ }), rules.NewCarpet(rules.DefaultCarpetConfig()))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames[:40000] {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	if n != 1 {
		t.Fatalf("%d events, want the carpet's start", n)
	}
	i := 40000
	allocs := testing.AllocsPerRun(100, func() {
		for k := 0; k < 100; k++ {
			f := frames[i%len(frames)]
			e.HandleFrame(detector.LinkEthernet, f.Data, f.Time.Add(time.Duration(i/len(frames))*2*time.Second), len(f.Data))
			i++
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per 100 packets of a carpet", allocs)
	}
}
