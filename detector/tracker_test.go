package detector_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// Two floods hit by turns, packet after packet (an IPv4 and an IPv6
// victim: the tracker keeps the attack hit last and the one before), and
// a third victim flooded alone between them: each attack's totals are its
// own packets, every one of them.
func TestTrackerAttacksHitByTurns(t *testing.T) {
	v4, v6, v3 := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("2001:db8::5"), netip.MustParseAddr("10.0.0.9")
	var evs []*detector.Event
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, ev) }), allRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	sent := map[netip.Addr]uint64{}
	ts := epoch
	send := func(dst netip.Addr, i int) {
		src := synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15+7, dst.Is4())
		f, err := synth.EchoFrame(synth.Echo{Src: src, Dst: dst, Seq: uint16(i)})
		if err != nil {
			t.Fatal(err)
		}
		ts = ts.Add(100 * time.Microsecond)
		e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
		sent[dst]++
	}
	for i := 0; i < 30000; i++ {
		dst := v4
		switch {
		case i >= 10000 && i < 12000 && i%2 == 0:
			dst = v3
		case i%2 == 1:
			dst = v6
		}
		send(dst, i)
	}
	e.Close(detector.EndInputEnd)
	ends := map[netip.Addr]uint64{}
	for _, ev := range evs {
		if ev.Rule.Name == "icmp_flood" && ev.Phase == detector.PhaseEnd {
			ends[ev.Target] += ev.Packets
		}
	}
	for _, dst := range []netip.Addr{v4, v6, v3} {
		if ends[dst] != sent[dst] {
			t.Errorf("%v: the icmp_flood attack counted %d packets, %d were sent", dst, ends[dst], sent[dst])
		}
	}
}
