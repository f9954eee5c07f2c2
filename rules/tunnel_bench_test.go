package rules_test

import (
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// BenchmarkTunnelFloods replays issue 27's worst echo floods through one
// engine running the default rules, icmp_tunnel on and off: the
// difference of the two is what icmp_tunnel costs per packet on each (as
// bench/rulecost counts it, without the files).
func BenchmarkTunnelFloods(b *testing.B) {
	same := random(21, 56, 56)(0)
	rnd := random(22, 1400, 1400)(0)
	floods := []struct {
		name string
		each func(i int, m *synth.Msg)
	}{
		{"same-56-random-bytes", func(i int, m *synth.Msg) {
			m.Src, m.Dst = synth.RandomAddr(uint64(i)+1, true), addr("10.0.0.5")
			m.Rest = append(m.Rest[:4:4], same...)
		}},
		{"zeros-1399-then-1", func(i int, m *synth.Msg) {
			m.Src, m.Dst = synth.RandomAddr(uint64(i)+1, true), addr("10.0.0.5")
			m.Rest = append(append(m.Rest[:4:4], make([]byte, 1399)...), 1)
		}},
		{"random-1400-new-pair", func(i int, m *synth.Msg) {
			m.Src, m.Dst = synth.RandomAddr(uint64(i)*2+1, true), synth.RandomAddr(uint64(i)*2+2, true)
			rnd[i%1400] ^= byte(i)
			m.Rest = append(m.Rest[:4:4], rnd...)
		}},
	}
	for _, fl := range floods {
		frames := seq(synth.Msg{Type: 8, Rest: make([]byte, 4)}, ruleEpoch, 1e6, 20000, fl.each)
		for _, on := range []bool{true, false} {
			name := fl.name + "/tunnel-on"
			if !on {
				name = fl.name + "/tunnel-off"
			}
			b.Run(name, func(b *testing.B) {
				rc := rules.DefaultConfig()
				if !on {
					if err := rc.SetEnabled("icmp_tunnel", false); err != nil {
						b.Fatal(err)
					}
				}
				rs, err := rules.Enabled(rc)
				if err != nil {
					b.Fatal(err)
				}
				e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), rs...)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					f := frames[i%len(frames)]
					e.HandleFrame(detector.LinkEthernet, f.Data, f.Time.Add(time.Duration(i/len(frames))*20*time.Millisecond), len(f.Data))
					i++
				}
			})
		}
	}
}
