package rules_test

import (
	"encoding/binary"
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
				e := tunnelBenchEngine(b, on)
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

// BenchmarkTunnelWorst replays the worst echo floods of issue 27 through
// one engine running the default rules, icmp_tunnel on and off, with a new
// spoofed source per packet (and, for echo-random-pairs, a new
// destination of 10.0.0.0/8 too) written over 4,096 crafted frames, so
// that no pair ever repeats, at 1 M packets/s of packet time. The
// difference of the two is icmp_tunnel's cost per packet; cachegrind's
// instruction counts of two -benchtime values make it deterministic:
//
//	go test -c -o t.test ./rules && valgrind --tool=cachegrind --cache-sim=no \
//	  ./t.test -test.run '^$' -test.bench 'TunnelWorst/echo-random-pairs/on' -test.benchtime 60000x
func BenchmarkTunnelWorst(b *testing.B) {
	for _, kind := range []string{synth.CraftEchoRandomPairs, synth.CraftEchoSameData, synth.CraftEchoZeroTail,
		synth.CraftEchoZero, synth.CraftEchoRandomData} {
		next, err := synth.Crafted{Kind: kind, Seed: 1}.Gen()
		if err != nil {
			b.Fatal(err)
		}
		frames := make([][]byte, 4096)
		for i := range frames {
			if frames[i], err = next(i); err != nil {
				b.Fatal(err)
			}
		}
		for _, on := range []bool{true, false} {
			name := kind + "/on"
			if !on {
				name = kind + "/off"
			}
			b.Run(name, func(b *testing.B) {
				e := tunnelBenchEngine(b, on)
				b.ReportAllocs()
				ts := ruleEpoch
				n := 0
				for b.Loop() {
					f := frames[n%len(frames)]
					if kind != synth.CraftEchoRandomData { // its 1,000 sources stay
						binary.BigEndian.PutUint32(f[26:30], uint32(n)*2654435761) // the IPv4 source
					}
					if kind == synth.CraftEchoRandomPairs {
						binary.BigEndian.PutUint32(f[30:34], 10<<24|uint32(n)*0x9e3779b1>>8) // the destination, in 10/8
					}
					ts = ts.Add(time.Microsecond)
					e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
					n++
				}
			})
		}
	}
}

// tunnelBenchEngine is an engine running the default rules, icmp_tunnel
// among them when on: the two halves of a tunnel benchmark's difference.
func tunnelBenchEngine(b *testing.B, on bool) *detector.Engine {
	b.Helper()
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
	return e
}
