package rules_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// withOverrides decodes a rules: block given as viper holds it (nested
// maps), validates it and builds its enabled rules.
func withOverrides(t *testing.T, raw map[string]any) []detector.Rule {
	t.Helper()
	c, err := rules.DecodeConfig(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rs, err := rules.Enabled(c)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func echoFlood(t *testing.T, target netip.Addr, rate float64, count int) []synth.Frame {
	t.Helper()
	return flood(t, synth.Flood{Target: target, Source: attacker4, Start: epoch, Rate: rate, Count: count})
}

func floodOverrides(base float64, overrides ...map[string]any) map[string]any {
	list := make([]any, len(overrides))
	for i, o := range overrides {
		list[i] = o
	}
	return map[string]any{"icmp_flood": map[string]any{"echo_pps": base, "any_pps": 2 * base, "overrides": list}}
}

// TestFloodOverrides: per-network thresholds. The attack twins raise an
// alert only because of the override (a lower threshold for one network;
// a rule off outside its overrides but on in one); the benign twins stay
// silent only because of it (a higher threshold, an allowlist, the most
// specific network winning over a wider one).
func TestFloodOverrides(t *testing.T) {
	in24, out24, resolver := addr("10.0.0.5"), addr("10.0.1.5"), addr("10.0.0.53")
	low := map[string]any{"networks": []any{"10.0.0.0/24"}, "echo_pps": 200, "any_pps": 400}
	for _, tc := range []struct {
		name   string
		raw    map[string]any
		frames []synth.Frame
		want   []string
	}{
		{"no override: 500 pps is below 1000", floodOverrides(1000), echoFlood(t, in24, 500, 3000), nil},
		{"a lower threshold for the /24 fires at 500 pps", floodOverrides(1000, low), echoFlood(t, in24, 500, 3000), []string{"icmp_flood " + in24.String()}},
		{"outside the /24 the rule's own threshold holds", floodOverrides(1000, low), echoFlood(t, out24, 500, 3000), nil},
		{"a higher threshold for the /24 keeps 5000 pps silent",
			floodOverrides(1000, map[string]any{"networks": []any{"10.0.0.0/24"}, "echo_pps": 50000, "any_pps": 100000}),
			echoFlood(t, in24, 5000, 15000), nil},
		{"enabled: false is an allowlist", floodOverrides(1000, map[string]any{"networks": []any{"10.0.0.53"}, "enabled": false}),
			echoFlood(t, resolver, 5000, 15000), nil},
		{"the most specific network wins: the /32 allowlist inside the low /24",
			floodOverrides(1000, low, map[string]any{"networks": []any{"10.0.0.53/32"}, "enabled": false}),
			echoFlood(t, resolver, 500, 3000), nil},
		{"... and the rest of the /24 keeps its low threshold",
			floodOverrides(1000, low, map[string]any{"networks": []any{"10.0.0.53/32"}, "enabled": false}),
			echoFlood(t, in24, 500, 3000), []string{"icmp_flood " + in24.String()}},
		{"off outside its overrides, on in one",
			map[string]any{"icmp_flood": map[string]any{"enabled": false, "overrides": []any{map[string]any{"networks": "10.0.0.0/24", "enabled": true}}}},
			synth.Merge(echoFlood(t, in24, 5000, 15000), echoFlood(t, out24, 5000, 15000)), []string{"icmp_flood " + in24.String()}},
		{"IPv6 networks", floodOverrides(1000, map[string]any{"networks": []any{"2001:db8:1::/48"}, "echo_pps": 200, "any_pps": 400}),
			flood(t, synth.Flood{Target: victim6, Source: attacker6, Start: epoch, Rate: 500, Count: 3000}), []string{"icmp_flood " + victim6.String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := only(startsOf(replay(t, tc.frames, withOverrides(t, tc.raw)...)), "icmp_flood")
			if !equal(got, tc.want) {
				t.Errorf("starts %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSweepOverride: a rule whose target is the packet's source (the
// scanner) is overridden by the scanner's network: an allowlisted
// scanner raises nothing, another one still does.
func TestSweepOverride(t *testing.T) {
	raw := map[string]any{"icmp_sweep": map[string]any{"overrides": []any{map[string]any{"networks": []any{"10.0.0.128/25"}, "enabled": false}}}}
	rs := withOverrides(t, raw)
	scanned := addr("10.0.1.0")
	if got := only(startsOf(replay(t, probes(addr("10.0.0.200"), scanned, 8, 254, 100, 254), rs...)), "icmp_sweep"); len(got) != 0 {
		t.Errorf("an allowlisted scanner raised %v", got)
	}
	rs = withOverrides(t, raw)
	if got := only(startsOf(replay(t, probes(addr("10.0.0.10"), scanned, 8, 254, 100, 254), rs...)), "icmp_sweep"); !equal(got, []string{"icmp_sweep 10.0.0.10"}) {
		t.Errorf("a scanner outside the override: %v", got)
	}
}

// TestSweepOverrideBySource: a lower sweep threshold for the scanners'
// network fires although the hosts it probes are in no override: the
// packets reach the override's settings by their source.
func TestSweepOverrideBySource(t *testing.T) {
	raw := map[string]any{"icmp_sweep": map[string]any{"min_hosts": 500,
		"overrides": []any{map[string]any{"networks": []any{"10.0.0.128/25"}, "min_hosts": 32}}}}
	frames := synth.Merge(probes(addr("10.0.0.200"), addr("10.0.1.0"), 8, 200, 100, 200),
		probes(addr("10.0.0.10"), addr("10.0.2.0"), 8, 200, 100, 200))
	got := only(startsOf(replay(t, frames, withOverrides(t, raw)...)), "icmp_sweep")
	if !equal(got, []string{"icmp_sweep 10.0.0.200"}) {
		t.Errorf("starts %v, want the scanner in the override's network only", got)
	}
}

// TestOverridesDecode: an override is checked like every key; errors name
// rules.<rule>.overrides[i].<key>.
func TestOverridesDecode(t *testing.T) {
	ov := func(items ...any) map[string]any {
		return map[string]any{"icmp_flood": map[string]any{"overrides": items}}
	}
	for _, tc := range []struct {
		name string
		raw  map[string]any
		want string
	}{
		{"unknown key", ov(map[string]any{"networks": []any{"10.0.0.0/8"}, "echo_ppz": 3}), "rules.icmp_flood.overrides[0].echo_ppz: unknown key"},
		{"bad network", ov(map[string]any{"networks": []any{"10.0.0.0/33"}, "echo_pps": 3}), "rules.icmp_flood.overrides[0].networks: [0]"},
		{"no networks", ov(map[string]any{"echo_pps": 3}), "rules.icmp_flood.overrides[0].networks: missing"},
		{"no key", ov(map[string]any{"networks": []any{"10.0.0.0/8"}}), "rules.icmp_flood.overrides[0]: sets no key"},
		{"bad value", ov(map[string]any{"networks": []any{"10.0.0.0/8"}, "echo_pps": 5}, map[string]any{"networks": []any{"10.1.0.0/16"}, "echo_pps": -1}), "rules.icmp_flood.overrides[1].echo_pps"},
		{"wrong type", ov(map[string]any{"networks": []any{"10.0.0.0/8"}, "echo_pps": "lots"}), "rules.icmp_flood.overrides[0]"},
		{"a network twice", ov(map[string]any{"networks": []any{"10.0.0.0/8"}, "echo_pps": 5}, map[string]any{"networks": []any{"10.0.0.0/8"}, "echo_pps": 7}), "rules.icmp_flood.overrides[1].networks: 10.0.0.0/8 is in overrides[0] already"},
		{"not a list", map[string]any{"icmp_flood": map[string]any{"overrides": "10.0.0.0/8"}}, "rules.icmp_flood.overrides: want a list"},
		{"not a map", ov("10.0.0.0/8"), "rules.icmp_flood.overrides[0]: want {networks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := rules.DecodeConfig(tc.raw, nil)
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOverridesShown: Specs carries the overrides (what `icmpids rules`
// and `check` print) and the rule's own settings apart.
func TestOverridesShown(t *testing.T) {
	c, err := rules.DecodeConfig(floodOverrides(1000, map[string]any{"networks": []any{"10.0.0.0/24", "2001:db8::/32"}, "echo_pps": 5000}), nil)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := rules.Specs(c)
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	if s.Rule.Info().Name != "icmp_flood" || len(s.Overrides) != 1 || s.Settings.(*rules.FloodConfig).EchoPPS != 1000 {
		t.Fatalf("spec %+v", s)
	}
	o := s.Overrides[0]
	if len(o.Networks) != 2 || o.Networks[1].String() != "2001:db8::/32" || strings.Join(o.Keys, ",") != "echo_pps" ||
		o.Settings.(*rules.FloodConfig).EchoPPS != 5000 || o.Settings.(*rules.FloodConfig).AnyPPS != 2000 {
		t.Errorf("override %+v: want the rule's settings with echo_pps 5000 on top", o)
	}
}

// TestOverridesNoAllocs: a rule with overrides allocates nothing per
// packet (two prefix lookups and the instances' own work), over a mix of
// targets inside and outside the overrides.
func TestOverridesNoAllocs(t *testing.T) {
	var nets []any
	for i := 0; i < 500; i++ {
		nets = append(nets, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32).String())
	}
	rs := withOverrides(t, floodOverrides(1000,
		map[string]any{"networks": []any{"10.0.0.0/24"}, "echo_pps": 5000},
		map[string]any{"networks": nets, "enabled": false}))
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), rs...)
	if err != nil {
		t.Fatal(err)
	}
	var frames []synth.Frame
	for _, dst := range []netip.Addr{addr("10.0.0.5"), addr("10.1.0.7"), addr("10.2.0.1")} {
		frames = append(frames, echoFlood(t, dst, 100, 10)...)
	}
	for _, f := range frames { // warm up
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		f := frames[i%len(frames)]
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time.Add(time.Duration(i)*time.Millisecond+time.Second), len(f.Data))
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet", allocs)
	}
}

// TestIgnoreSources: no rule sees a packet from an ignore_sources network
// (engine.IgnoreSources): a monitoring server's ping storm is silent; the
// same storm from elsewhere is a flood.
func TestIgnoreSources(t *testing.T) {
	frames := echoFlood(t, victim4, 5000, 15000) // from attacker4
	run := func(ignore ...string) []string {
		cfg := detector.DefaultConfig()
		for _, s := range ignore {
			cfg.IgnoreSources = append(cfg.IgnoreSources, netip.MustParsePrefix(s))
		}
		var evs []*detector.Event
		e, err := detector.New(cfg, detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, ev) }), defaultRules(t)...)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
		}
		e.Close(detector.EndInputEnd)
		if st := e.Stats(); st.ICMP != uint64(len(frames)) {
			t.Errorf("ignored packets are still counted: icmp %d, want %d", st.ICMP, len(frames))
		}
		return startsOf(evs)
	}
	if got := run(); !equal(got, []string{"icmp_flood " + victim4.String()}) {
		t.Errorf("no ignore_sources: %v", got)
	}
	if got := run("198.51.100.0/24"); len(got) != 0 {
		t.Errorf("an ignored source raised %v", got)
	}
	if got := run("198.51.101.0/24"); len(got) != 1 {
		t.Errorf("another network ignored: %v", got)
	}
}
