package rules_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// encapScenarios are attacks to send bare and inside every encapsulation.
func encapScenarios(t *testing.T) map[string][]synth.Frame {
	t.Helper()
	must := func(fs []synth.Frame, err error) []synth.Frame {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	d, pieces := synth.PingTrain(addr("198.51.100.66"), addr("10.0.0.9"), 4242, 66000, 1480)
	return map[string][]synth.Frame{
		"flood4": must(synth.Flood{Target: addr("10.0.0.5"), Spoofed: true, Seed: 3, Start: ruleEpoch, Rate: 5000, Count: 10000}.Frames()),
		"flood6": must(synth.Flood{Target: addr("2001:db8::5"), Source: addr("2001:db8:bad::7"), Start: ruleEpoch, Rate: 5000, Count: 10000}.Frames()),
		"pod4":   must(d.Frames(pieces, ruleEpoch, time.Millisecond)),
		"smurf4": must(synth.Smurf{Victim: addr("10.0.7.7"), Reflectors: synth.Hosts(netip.MustParsePrefix("10.9.0.0/24"), 100), Replies: true,
			Start: ruleEpoch, Rate: 40, Count: 200}.Frames()),
	}
}

// eventKeys summarizes events as "rule phase target packets".
func eventKeys(evs []*detector.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%s %s %s %d", ev.Rule.Name, ev.Phase, ev.Target, ev.Packets))
	}
	slices.Sort(out)
	return out
}

// TestEncapsulatedAttacksMatchBare: every attack raises the same alerts,
// with the same targets and counts, inside every encapsulation as bare;
// the alerts say where it came from (tunnel, VLANs).
func TestEncapsulatedAttacksMatchBare(t *testing.T) {
	for name, bare := range encapScenarios(t) {
		want := eventKeys(replay(t, bare, defaultRules(t)...))
		if len(want) == 0 {
			t.Fatalf("%s: the bare attack raised nothing", name)
		}
		for _, kind := range synth.Wraps {
			if kind == synth.WrapTeredo && name != "flood6" {
				continue // Teredo carries IPv6 only
			}
			t.Run(name+"/"+kind, func(t *testing.T) {
				wrapped, err := synth.WrapFrames(kind, bare)
				if err != nil {
					t.Fatal(err)
				}
				evs := replay(t, wrapped, defaultRules(t)...)
				if got := eventKeys(evs); !slices.Equal(got, want) {
					t.Fatalf("events\n got %v\nwant %v", got, want)
				}
				ev := evs[0]
				switch kind {
				case synth.WrapVLAN3, synth.WrapQinQ8:
					if len(ev.VLANs) == 0 || ev.VLANs[0] != 100 {
						t.Errorf("vlan %v", ev.VLANs)
					}
				case synth.WrapMPLS, synth.WrapMPLSPW, synth.WrapPPPoE:
					if ev.Tunnel.Depth != 0 {
						t.Errorf("tunnel %+v for a link-layer encapsulation", ev.Tunnel)
					}
				default:
					if ev.Tunnel.Depth == 0 || ev.Tunnel.Src != synth.TunnelSrc(kind) {
						t.Errorf("tunnel %+v, want the carrier from %v", ev.Tunnel, synth.TunnelSrc(kind))
					}
				}
			})
		}
	}
}

// TestEncapsulationGarbage: bad encapsulations are counted by reason and
// raise nothing but, when they come at a rate towards one destination,
// decode_anomaly (a flood behind a malformed VXLAN header, a tunnel bomb).
func TestEncapsulationGarbage(t *testing.T) {
	fl, err := synth.Flood{Target: addr("10.0.0.5"), Source: addr("198.51.100.7"), Start: ruleEpoch, Rate: 5000, Count: 5000}.Frames()
	if err != nil {
		t.Fatal(err)
	}
	corrupt := func(kind string, f func(b []byte) []byte) []synth.Frame {
		out, err := synth.WrapFrames(kind, fl)
		if err != nil {
			t.Fatal(err)
		}
		for i := range out {
			out[i].Data = f(out[i].Data)
		}
		return out
	}
	nest := func(n int) func([]byte) []byte { // n IP-in-IP headers
		return func(b []byte) []byte {
			for i := 0; i < n; i++ {
				w, _ := synth.Wrap(synth.WrapIPinIP, b)
				b = w
			}
			return b
		}
	}
	tests := []struct {
		name   string
		frames []synth.Frame
		reason detector.Reason
		want   []string // starts
	}{
		{"GRE version 1 (PPTP)", corrupt(synth.WrapGRE, func(b []byte) []byte { b[14+20+1] |= 1; return b }), detector.ReasonTunnelUnsupported, nil},
		{"VXLAN with the I flag off", corrupt(synth.WrapVXLAN, func(b []byte) []byte { b[14+20+8] = 0; return b }), detector.ReasonTunnelMalformed, []string{"decode_anomaly 192.0.2.200"}},
		{"MPLS without a bottom of stack", func() []synth.Frame {
			return corrupt(synth.WrapMPLS, func(b []byte) []byte {
				out := append([]byte{}, b[:14]...)
				for i := 0; i < 20; i++ {
					out = append(out, 0, 1, 0, 0x40)
				}
				return out
			})
		}(), detector.ReasonTunnelMalformed, nil},
		{"100 nested IP-in-IP headers", corrupt(synth.WrapIPinIP, nest(99)), detector.ReasonTunnelDepth, []string{"decode_anomaly 192.0.2.200"}},
		{"truncated GRE", corrupt(synth.WrapGRE, func(b []byte) []byte { b[14+3] = 22; return b[:14+22] }), detector.ReasonTruncated, nil},
		{"truncated ERSPAN III", corrupt(synth.WrapERSPAN3, func(b []byte) []byte { return b[:14+20+4+6] }), detector.ReasonTruncated, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var evs []*detector.Event
			e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, ev) }), defaultRules(t)...)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.frames {
				e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
			}
			e.Close(detector.EndInputEnd)
			if got := startsOf(evs); !equal(got, tc.want) {
				t.Errorf("garbage raised %v, want %v", got, tc.want)
			}
			if st := e.Stats(); st.Decode[tc.reason] != uint64(len(tc.frames)) {
				t.Errorf("reason %v counted %d times, want %d (stats %v)", tc.reason, st.Decode[tc.reason], len(tc.frames), st.Decode)
			}
		})
	}
}
