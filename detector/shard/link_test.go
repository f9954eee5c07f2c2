package shard_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/shard"
)

// linkWorkers are the worker counts every link-scope scenario is run with:
// the failing ones (6, 8, 16) among them.
var linkWorkers = []int{1, 2, 3, 4, 5, 6, 7, 8, 16}

// ordered lines of what a Set of n workers raises on frames.
func runWorkers(t *testing.T, frames []synth.Frame, n int) []string {
	t.Helper()
	var got ordered
	s, err := shard.New(shard.Config{Workers: n}, &got, func(i int, sink detector.Sink) (*detector.Engine, error) {
		return detector.New(detector.DefaultConfig(), sink, allRules(t)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		s.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	s.Close(detector.EndInputEnd)
	return got.lines()
}

// rogueUnicastRA: the link's router multicasts RAs to ff02::1 every 10 s
// from t=0; from t=200 s a rogue router sends RAs announcing its own
// prefix unicast to one host, every 5 s for a minute. The host's /64
// belongs to another engine than ff02::1's with most worker counts.
func rogueUnicastRA() []synth.Frame {
	routerMAC, rogueMAC := synth.MAC(1), synth.MAC(0xbad)
	real := synth.Every(synth.Msg{Src: netip.MustParseAddr("fe80::1"), Dst: netip.MustParseAddr("ff02::1"), Type: 134, SrcMAC: routerMAC,
		Rest: synth.RA(1800, 0, synth.LinkAddrOpt(1, routerMAC), synth.PrefixOpt(netip.MustParsePrefix("2001:db8:1::/64")))},
		epoch, 10*time.Second, 40, nil)
	rogue := synth.Every(synth.Msg{Src: netip.MustParseAddr("fe80::bad"), Dst: netip.MustParseAddr("2001:db8:1::77"), Type: 134, SrcMAC: rogueMAC,
		Rest: synth.RA(1800, 1, synth.LinkAddrOpt(1, rogueMAC), synth.PrefixOpt(netip.MustParsePrefix("2001:db8:bad::/64")))},
		epoch.Add(200*time.Second), 5*time.Second, 12, nil)
	return synth.Merge(real, rogue)
}

// ndFlipFlop: hosts answer solicitations for 2001:db8:1::5 at its MAC A;
// then an attacker's NA rebinds it to B, A answers again, and B again
// (flip, flip back, flip). Each NA is solicited, unicast to a host in
// another /64, so the NAs reach different engines.
func ndFlipFlop() []synth.Frame {
	victim := netip.MustParseAddr("2001:db8:1::5")
	a, b := synth.MAC(0xa), synth.MAC(0xb)
	macs := []struct {
		mac []byte
		at  time.Duration
	}{{a, 0}, {a, 10 * time.Second}, {b, 20 * time.Second}, {a, 30 * time.Second}, {b, 40 * time.Second}}
	var out []synth.Frame
	for i, m := range macs {
		dst := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(10 + i), 15: 9})
		out = append(out, synth.Msg{Src: victim, Dst: dst, Type: 136, SrcMAC: m.mac,
			Rest: synth.NA(victim, false, true, true, synth.LinkAddrOpt(2, m.mac))}.At(epoch.Add(m.at)))
	}
	return out
}

// redirectSpoofedRouter: the gateway 10.1.0.1 answers pings from a host
// of one /24 (its binding is learned from those replies); then a forged
// redirect in the gateway's name from another MAC reaches a host of
// another /24 on the same link.
func redirectSpoofedRouter() []synth.Frame {
	gw, gwMAC, attacker := netip.MustParseAddr("10.1.0.1"), synth.MAC(1), synth.MAC(0xbad)
	out := synth.Every(synth.Msg{Src: gw, Dst: netip.MustParseAddr("10.1.0.50"), Type: 0, SrcMAC: gwMAC, Rest: make([]byte, 60)},
		epoch, time.Second, 5, nil)
	host, newGW, dst := netip.MustParseAddr("10.2.0.9"), netip.MustParseAddr("10.1.0.66"), netip.MustParseAddr("192.0.2.80")
	g := newGW.As4()
	out = append(out, synth.Msg{Src: gw, Dst: host, Type: 5, Code: 1, SrcMAC: attacker,
		Rest: append(g[:], synth.Quote(host, dst, 6, 40000, 443, 60)...)}.At(epoch.Add(10*time.Second)))
	return out
}

// TestLinkStateDoesNotDependOnWorkers: what rogue_ra, nd_spoof and
// icmp_redirect learn of the link lives on one engine, so each scenario
// raises the same events, in the same order, with every worker count —
// and the attack one engine sees.
func TestLinkStateDoesNotDependOnWorkers(t *testing.T) {
	cases := []struct {
		name   string
		frames []synth.Frame
		want   string // an event one engine must raise: "rule phase target"
	}{
		{"unicast rogue RA after the learning minute", rogueUnicastRA(), "rogue_ra start 2001:db8:1::77"},
		{"nd_spoof flip, flip back, flip", ndFlipFlop(), "nd_spoof start 2001:db8:1::5"},
		{"redirect in the gateway's name from another MAC", redirectSpoofedRouter(), "icmp_redirect start 10.2.0.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			one := runWorkers(t, tc.frames, 1)
			found := false
			for _, l := range one {
				_, ev, _ := strings.Cut(l, " ")
				found = found || strings.HasPrefix(ev, tc.want+" ")
			}
			if !found {
				t.Fatalf("one engine raised %v, want %q", one, tc.want)
			}
			for _, n := range linkWorkers[1:] {
				if got := runWorkers(t, tc.frames, n); !slices.Equal(got, one) {
					t.Errorf("%d workers raised\n%s\none engine\n%s", n, strings.Join(got, "\n"), strings.Join(one, "\n"))
				}
			}
		})
	}
}

// TestLinkRoutingCountsOnce: with link copies, every frame is still
// counted once, and the engines agree with one engine on the per-type
// counters.
func TestLinkRoutingCountsOnce(t *testing.T) {
	frames := synth.Merge(rogueUnicastRA(), ndFlipFlop(), redirectSpoofedRouter())
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), allRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	want := e.Stats()
	for _, n := range []int{3, 8} {
		t.Run(fmt.Sprint(n, "workers"), func(t *testing.T) {
			s, err := shard.New(shard.Config{Workers: n}, detector.SinkFunc(func(*detector.Event) {}), func(i int, sink detector.Sink) (*detector.Engine, error) {
				return detector.New(detector.DefaultConfig(), sink, allRules(t)...)
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range frames {
				s.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
			}
			got := s.Stats()
			s.Close(detector.EndInputEnd)
			if got.Frames != want.Frames || got.ICMPv6Types != want.ICMPv6Types || got.ICMPv4Types != want.ICMPv4Types {
				t.Errorf("frames %d, want %d; or the per-type counts differ", got.Frames, want.Frames)
			}
		})
	}
}
