package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/rules"
)

// probes returns count probes of ICMP type typ from src at rate to the
// hosts of base (i-th probe to host 1 + i%hosts).
func probes(src, base netip.Addr, typ uint8, hosts int, rate float64, count int) []synth.Frame {
	m := synth.Msg{Src: src, Type: typ, Rest: make([]byte, 12)}
	return seq(m, ruleEpoch, rate, count, func(i int, m *synth.Msg) { m.Dst = nth(base, 1+i%hosts) })
}

func TestSweep(t *testing.T) {
	scanner, s6 := addr("10.0.0.128"), addr("2001:db8::128")
	net4, net6 := addr("10.0.1.0"), addr("2001:db8:1::")
	tests := []struct {
		name   string
		frames []synth.Frame
		want   []string
	}{
		{"nmap -sn -PE over a /24", probes(scanner, net4, 8, 254, 100, 254), []string{"icmp_sweep 10.0.0.128"}},
		{"nmap -PP (timestamp)", probes(scanner, net4, 13, 254, 100, 254), []string{"icmp_sweep 10.0.0.128"}},
		{"nmap -PM (address mask)", probes(scanner, net4, 17, 254, 100, 254), []string{"icmp_sweep 10.0.0.128"}},
		{"IPv6 echo sweep", probes(s6, net6, 128, 500, 200, 500), []string{"icmp_sweep 2001:db8::128"}},
		{"slow sweep, 5/s", probes(scanner, net4, 8, 254, 5, 254), []string{"icmp_sweep 10.0.0.128"}},
		{"a /16 sweep at 3,000/s", probes(scanner, addr("10.1.0.0"), 8, 65000, 3000, 30000), []string{"icmp_sweep 10.0.0.128"}},
		{"a 1M-destination sweep at 20,000/s", func() []synth.Frame {
			m := synth.Msg{Src: scanner, Type: 8, Rest: make([]byte, 12)}
			return seq(m, ruleEpoch, 20000, 200000, func(i int, m *synth.Msg) {
				m.Dst = netip.AddrFrom4([4]byte{10, byte(16 + i>>16), byte(i >> 8), byte(i)})
			})
		}(), []string{"icmp_sweep 10.0.0.128"}},
		{"ping 1/s to a handful of hosts", probes(scanner, net4, 8, 5, 1, 300), nil},
		{"20 hosts probed", probes(scanner, net4, 8, 20, 10, 200), nil},
		{"a flood of one host", probes(scanner, net4, 8, 1, 5000, 10000), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			starts := startsOf(replay(t, tc.frames, defaultRules(t)...))
			if got := only(starts, "icmp_sweep"); !equal(got, tc.want) {
				t.Errorf("sweep starts %v, want %v", got, tc.want)
			}
			// A sweep's probes of x.y.z.255 are no Smurf in the scanner's
			// name (smurf's benign twin).
			if got := only(starts, "smurf"); len(got) != 0 {
				t.Errorf("a sweep raised %v", got)
			}
		})
	}
}

// A monitoring server pinging the same 300 hosts every minute raises one
// alert when first seen, then none: its hosts are known. With
// ignore_sources it raises none at all.
func TestSweepMonitoringServer(t *testing.T) {
	mon := addr("10.0.0.10")
	var frames []synth.Frame
	for round := 0; round < 20; round++ {
		m := synth.Msg{Src: mon, Type: 8, Rest: make([]byte, 56)}
		frames = append(frames, synth.Every(m, ruleEpoch.Add(time.Duration(round)*time.Minute), 3*time.Millisecond, 300, func(i int, m *synth.Msg) {
			m.Dst = nth(addr("10.2.0.0"), 1+i)
		})...)
	}
	got := startsOf(replay(t, frames, defaultRules(t)...))
	if !equal(only(got, "icmp_sweep"), []string{"icmp_sweep 10.0.0.10"}) {
		t.Errorf("starts %v, want one icmp_sweep for the first round", got)
	}
	cfg := rules.DefaultSweepConfig()
	cfg.IgnoreSources = []string{"10.0.0.0/28"}
	if evs := replay(t, frames, rules.NewSweep(cfg)); len(evs) != 0 {
		t.Errorf("an ignored source raised %d events", len(evs))
	}
}

// The alert says what was probed and how much answered.
func TestSweepAlertContext(t *testing.T) {
	scanner := addr("10.0.0.128")
	frames := probes(scanner, addr("10.0.1.0"), 8, 100, 100, 100)
	for i := 0; i < 10; i++ { // ten hosts answer
		frames = append(frames, synth.Msg{Src: nth(addr("10.0.1.0"), 1+i), Dst: scanner, Type: 0, Rest: make([]byte, 12)}.At(ruleEpoch.Add(time.Second)))
	}
	frames = synth.Merge(frames)
	evs := replay(t, frames, defaultRules(t)...)
	var end map[string]any
	for _, ev := range evs {
		if ev.Rule.Name == "icmp_sweep" && ev.Phase.String() == "end" {
			end = ev.Extra
		}
	}
	if end == nil {
		t.Fatal("no end")
	}
	if end["hosts_probed"].(uint64) < 90 || end["answered"].(uint64) != 10 || end["prefixes"].(uint64) != 1 {
		t.Errorf("context %v", end)
	}
}

// A spoofed flood of 200k sources leaves the source table empty: no
// source reaches the admission level.
func TestSweepTableBounded(t *testing.T) {
	cfg := rules.DefaultSweepConfig()
	r := rules.NewSweep(cfg)
	m := synth.Msg{Dst: addr("10.0.0.1"), Type: 8, Rest: make([]byte, 8)}
	replay(t, seq(m, ruleEpoch, 100000, 200000, func(i int, m *synth.Msg) { m.Src = synth.RandomAddr(uint64(i)+3, true) }), r)
	if st := r.Tables()[0]; st.Len > 64 {
		t.Errorf("table %+v: spoofed sources got state", st)
	}
}
