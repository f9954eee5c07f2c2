package rules

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
)

// TestCarpetUnionCountKept: the count of hosts' bits a prefix keeps as
// bits are set is the union bitmap's, after every packet — within an
// epoch, across one, and across a gap of several windows.
func TestCarpetUnionCountKept(t *testing.T) {
	cfg := DefaultCarpetConfig()
	cfg.EchoPPS, cfg.AnyPPS = 1e12, 1e12 // never judged over: no hit to report
	r := NewCarpet(cfg)
	r.admit.level = 0 // every prefix gets a window at once
	rng := rand.New(rand.NewPCG(7, 8))
	net := netip.MustParseAddr("10.1.2.0")
	ns := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := 0; i < 20000; i++ {
		switch {
		case i%5000 == 4999:
			ns += int64(3 * cfg.Window) // a gap of several windows
		default:
			ns += int64(rng.IntN(400)) * int64(time.Microsecond)
		}
		p := &detector.Packet{Time: time.Unix(0, ns), TimeNs: ns, Src: netip.MustParseAddr("192.0.2.1"),
			Dst: netip.AddrFrom4([4]byte{10, 1, 2, byte(rng.IntN(256))}), HasICMP: true, Proto: detector.ProtoICMPv4, ICMPType: 8, WireLen: 98}
		r.Observe(p, detector.Reporter{})
		e, ok := r.prefixes.Lookup(net)
		if !ok {
			t.Fatal("the prefix has no window")
		}
		if u := e.union(); e.multi && e.unionSet != u.set() {
			t.Fatalf("packet %d: %d bits kept, the union has %d", i, e.unionSet, u.set())
		}
	}
}
