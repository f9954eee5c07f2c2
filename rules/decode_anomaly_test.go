package rules_test

import (
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// deepFrames rewraps each frame of fs: n GRE layers, n VLAN tags, or n
// MPLS labels.
func deepFrames(t testing.TB, fs []synth.Frame, kind string, n int) []synth.Frame {
	t.Helper()
	out := make([]synth.Frame, len(fs))
	for i, f := range fs {
		b := f.Data
		switch kind {
		case "gre":
			for j := 0; j < n; j++ {
				w, err := synth.Wrap(synth.WrapGRE, b)
				if err != nil {
					t.Fatal(err)
				}
				b = w
			}
		case "vlan":
			ids := make([]uint16, n)
			for j := range ids {
				ids[j] = uint16(10 + j)
			}
			w, err := synth.Encap(synth.Link{Type: synth.LinkEthernet, VLANs: ids}, b[14:])
			if err != nil {
				t.Fatal(err)
			}
			b = w
		case "mpls":
			w := append(append([]byte{}, b[:12]...), 0x88, 0x47)
			for j := 0; j < n; j++ {
				bos := byte(0)
				if j == n-1 {
					bos = 1
				}
				w = append(w, 0, byte(16+j)>>4, byte(16+j)<<4|bos, 64)
			}
			b = append(w, b[14:]...)
		}
		out[i] = synth.Frame{Time: f.Time, Data: b}
	}
	return out
}

// TestDecodeAnomaly: what the decoder gives up on is no silent evasion. A
// flood 5 tunnels deep (max_depth 4) or behind 9 VLAN tags (max_vlans 8)
// is a decode_anomaly towards the flooded host; under 20 MPLS labels it is
// decoded (any label depth) and is the icmp_flood it is. Each raised
// nothing before.
func TestDecodeAnomaly(t *testing.T) {
	fl := flood(t, synth.Flood{Target: addr("10.0.0.5"), Source: addr("198.51.100.7"), Start: ruleEpoch, Rate: 2000, Count: 3000})
	slow := flood(t, synth.Flood{Target: addr("10.0.0.5"), Source: addr("198.51.100.7"), Start: ruleEpoch, Rate: 1, Count: 30})
	tests := []struct {
		name   string
		frames []synth.Frame
		want   []string
		reason string
	}{
		{"a flood 5 GRE tunnels deep", deepFrames(t, fl, "gre", 5), []string{"decode_anomaly 10.0.0.5"}, "tunnel_depth"},
		{"a flood behind 9 VLAN tags", deepFrames(t, fl, "vlan", 9), []string{"decode_anomaly 10.0.0.5"}, "vlan_depth"},
		{"a flood under 20 MPLS labels", deepFrames(t, fl, "mpls", 20), []string{"icmp_flood 10.0.0.5"}, ""},
		// Benign twins: within the bounds the flood is itself; given-up
		// frames at a trickle raise nothing.
		{"a flood 4 GRE tunnels deep", deepFrames(t, fl, "gre", 4), []string{"icmp_flood 10.0.0.5"}, ""},
		{"a flood behind 8 VLAN tags", deepFrames(t, fl, "vlan", 8), []string{"icmp_flood 10.0.0.5"}, ""},
		{"a ping a second 5 tunnels deep", deepFrames(t, slow, "gre", 5), nil, ""},
		{"a ping a second behind 9 VLAN tags", deepFrames(t, slow, "vlan", 9), nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			if got := startsOf(evs); !equal(got, tc.want) {
				t.Errorf("starts %v, want %v", got, tc.want)
			}
			if tc.reason == "" {
				return
			}
			ev := firstStart(evs, "decode_anomaly")
			if ev == nil {
				return
			}
			reasons, _ := ev.Extra["reasons"].(map[string]any)
			if len(reasons) != 1 || reasons[tc.reason] == nil {
				t.Errorf("reasons %v, want %s", reasons, tc.reason)
			}
			if ev.Source != addr("198.51.100.7") && tc.reason == "tunnel_depth" {
				t.Errorf("source %v, want the inner packet's", ev.Source)
			}
		})
	}
}

// TestDecodeAnomalyBounded: given-up frames towards more destinations
// than the table holds evict the least recently seen, counted.
func TestDecodeAnomalyBounded(t *testing.T) {
	var fs []synth.Frame
	for i := 0; i < 5000; i++ {
		fs = append(fs, flood(t, synth.Flood{Target: nth(addr("10.1.0.0"), i), Source: addr("198.51.100.7"), Start: ruleEpoch.Add(secs(i) / 1000), Rate: 1, Count: 1})...)
	}
	var e *detector.Engine
	replayEngine(t, deepFrames(t, fs, "vlan", 9), &e, defaultRules(t)...)
	for _, tb := range e.Stats().Tables {
		if tb.Name == "decode_anomaly.targets" {
			if tb.Len > tb.Cap || tb.Evicted != uint64(5000-tb.Cap) {
				t.Fatalf("table %+v", tb)
			}
			return
		}
	}
	t.Fatal("no decode_anomaly.targets table")
}
