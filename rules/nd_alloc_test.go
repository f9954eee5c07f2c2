package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// The link-layer rules under attack allocate nothing per packet: a rogue
// RA in the router's name with its MAC in the option, 32 rogue routers
// judged against the link's (new_prefix, preference), a parasite6 taking
// 32 addresses while their owners take them back, a solicitation flood
// for one address, and RAs and NAs padded past the option walk's bound
// with the attacker's MAC behind it (padded_options), with every attack
// already started.
func TestNDRulesDoNotAllocate(t *testing.T) {
	attacker := synth.MAC(66)
	var frames [][]byte
	frames = append(frames, raAs(routerLL, routerMAC, routerMAC, 1800, 0, link64).Frame(),
		raOpts(routerLL, routerMAC, synth.PrefixOpt(link64), padding(40), synth.LinkAddrOpt(1, attacker)).Frame())
	for i := 0; i < 32; i++ {
		frames = append(frames,
			raAs(routerLL, attacker, routerMAC, 0, 1).Frame(),
			raAs(nth(addr("fe80::bad:0"), i), attacker, attacker, 1800, 1, netip.MustParsePrefix("2001:db8:bad::/64")).Frame(),
			na(ndHost(i), attacker, allNodes, true, true).Frame(),
			na(ndHost(i), synth.MAC(uint32(100+i)), allNodes, true, true).Frame(),
			ns(nth(addr("fe80::8000"), i), synth.MAC(uint32(5000+i)), ndHost(5), allNodes).Frame(),
			ns(nth(addr("fe80::9000"), i), synth.MAC(uint32(6000+i)), ndHost(5), allNodes).Frame(),
			func() []byte {
				m := na(ndHost(i), synth.MAC(uint32(100+i)), allNodes, false, true)
				m.Rest = synth.NA(ndHost(i), false, false, true, padding(40), synth.LinkAddrOpt(2, attacker))
				return m.Frame()
			}())
	}
	events := 0
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) { events++ }),
		rules.NewRAFlood(rules.DefaultRAFloodConfig()), rules.NewRogueRA(rules.DefaultRogueRAConfig()),
		rules.NewNDFlood(rules.DefaultNDFloodConfig()), rules.NewNDSpoof(rules.DefaultNDSpoofConfig()))
	if err != nil {
		t.Fatal(err)
	}
	ts := ruleEpoch
	step := 200 * time.Microsecond // 5,000 packets/s: the solicitations are a flood
	i := 0
	feed := func() {
		for k := 0; k < 100; k++ {
			f := frames[i%len(frames)]
			e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
			ts = ts.Add(step)
			i++
		}
	}
	for k := 0; k < 100; k++ {
		feed()
	}
	started := events
	if started < 3 {
		t.Fatalf("%d events: want rogue_ra, nd_spoof and nd_flood started", started)
	}
	if a := testing.AllocsPerRun(50, feed); a != 0 {
		t.Errorf("%.1f allocations per 100 packets of link-layer attacks", a)
	}
	if events != started {
		t.Errorf("%d events while measuring: the measure must hold no event (they allocate)", events-started)
	}
}
