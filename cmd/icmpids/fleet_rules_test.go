package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
)

// fleetRuleAttack is the part of a fleet alert TestFleetRules reads.
type fleetRuleAttack struct {
	Host  string `json:"host"`
	Alert struct {
		Context struct {
			Attack struct {
				ID              string   `json:"id"`
				Rule            string   `json:"rule"`
				Phase           string   `json:"phase"`
				Target          string   `json:"target"`
				Packets         uint64   `json:"packets"`
				SensorAttackIDs []string `json:"sensor_attack_ids"`
				Sensors         []struct {
					Name string `json:"name"`
				} `json:"sensors"`
			} `json:"attack"`
		} `json:"context"`
	} `json:"alert"`
}

// fleetRuleFrames writes what gateway gw sees of a blacknurse (port
// unreachables) or frag_flood (first fragments, never completed) attack
// on target: rates[s] messages a second in second s, from the gateway's
// own source.
func fleetRuleFrames(t *testing.T, dir, rule string, gw int, target netip.Addr, rates []int) string {
	t.Helper()
	var frames []synth.Frame
	n := 0
	for s, rate := range rates {
		for i := 0; i < rate; i++ {
			at := epoch.Add(time.Duration(s)*time.Second + time.Duration(i)*time.Second/time.Duration(rate))
			src := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + gw)})
			switch rule {
			case "blacknurse":
				m := synth.Msg{Src: src, Dst: target, Type: 3, Code: 3, Rest: synth.Unreach(0, synth.Quote(target, src, 17, 5353, 53, 60))}
				frames = append(frames, m.At(at))
			case "frag_flood":
				d := synth.Datagram{Src: src, Dst: target, ID: uint32(gw<<12 | n&0xfff), Proto: 17, Payload: make([]byte, 200)}
				fr, err := d.Frames([]synth.Piece{{Offset: 0, Len: 200, More: true}}, at, 0)
				if err != nil {
					t.Fatal(err)
				}
				frames = append(frames, fr...)
			}
			n++
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-gw%d.pcap", rule, gw))
	if err := synth.WritePcapFile(path, frames); err != nil {
		t.Fatal(err)
	}
	return path
}

// repeat is n seconds at rate.
func repeat(rate, n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = rate
	}
	return r
}

// TestFleetRules is TestFleetCarpet for blacknurse (1,000 port
// unreachables/s to start) and frag_flood (100 incomplete trains/s): the
// attack spread over four gateways, each under the start level, raises no
// sensor alert and one fleet start and end with the 4 sensors; the
// control's four shares, summing under the level, raise nothing; an
// attack one gateway sees whole and reports itself is not raised again;
// and a fleet attack under way that one gateway then grows into its own
// attack is not doubled: it ends, naming the gateway's attack in
// sensor_attack_ids.
func TestFleetRules(t *testing.T) {
	for _, rc := range []struct {
		rule   string
		target netip.Addr
		// per gateway: the attack's share, the control's, a rate one
		// gateway alerts on (with three shares, under icmp_flood's
		// any-ICMP level of 2,000/s: the fleet raises blacknurse alone).
		share, low, big int
	}{
		{"blacknurse", netip.MustParseAddr("10.40.0.9"), 300, 200, 1050},
		{"frag_flood", netip.MustParseAddr("10.40.0.7"), 30, 20, 150},
	} {
		for _, tc := range []struct {
			name  string
			rates func() [][]int // per gateway
			// sensor: the gateway that alerts itself (-1: none).
			sensor int
			fleet  bool
		}{
			{"spread", func() [][]int {
				return [][]int{repeat(rc.share, 5), repeat(rc.share, 5), repeat(rc.share, 5), repeat(rc.share, 5)}
			}, -1, true},
			{"control", func() [][]int {
				return [][]int{repeat(rc.low, 5), repeat(rc.low, 5), repeat(rc.low, 5), repeat(rc.low, 5)}
			}, -1, false},
			{"one_sensor_reports_it", func() [][]int { return [][]int{repeat(rc.big, 5)} }, 0, false},
			{"grows_into_a_sensors_own", func() [][]int {
				return [][]int{append(repeat(rc.share, 4), repeat(rc.big, 4)...), repeat(rc.share, 8), repeat(rc.share, 8), repeat(rc.share, 8)}
			}, 0, true},
		} {
			t.Run(rc.rule+"/"+tc.name, func(t *testing.T) {
				c := startKafka(t)
				addr := c.ListenAddrs()[0]
				dir := t.TempDir()
				var sensorIDs []string
				total := 0
				for gw, rates := range tc.rates() {
					for _, r := range rates {
						total += r
					}
					p := fleetRuleFrames(t, dir, rc.rule, gw, rc.target, rates)
					t.Setenv("ICMPIDS_SENSOR_NAME", fmt.Sprintf("gw%d", gw))
					code, out, stderr := icmpids(t, "replay", "--format", "eve", "--kafka", addr, p)
					if code != 0 || (gw == tc.sensor) != (strings.TrimSpace(out) != "") {
						t.Fatalf("sensor gw%d: exit %d, alerts:\n%s\n%s", gw, code, out, stderr)
					}
					for _, e := range parseJSONLines[fleetRuleAttack](t, out) {
						if a := e.Alert.Context.Attack; a.Rule != rc.rule || a.Target != rc.target.String() {
							t.Errorf("sensor gw%d raised %+v", gw, a)
						} else if a.Phase == "start" {
							sensorIDs = append(sensorIDs, a.ID)
						}
					}
				}
				t.Setenv("ICMPIDS_SENSOR_NAME", "fleet1")
				code, out, stderr := icmpids(t, "correlate", "--kafka", addr, "--format", "eve", "--until-idle", "2s")
				if code != 0 {
					t.Fatalf("correlate: exit %d: %s", code, stderr)
				}
				evs, ok := fleetAlerts[fleetRuleAttack](t, out, tc.fleet)
				if !ok {
					return
				}
				validateEVELines(t, out)
				starts, ends := 0, 0
				for _, e := range evs {
					a := e.Alert.Context.Attack
					if a.Rule != rc.rule || a.Target != rc.target.String() || e.Host != "fleet1" || a.ID != evs[0].Alert.Context.Attack.ID {
						t.Errorf("fleet event %+v", e)
					}
					switch a.Phase {
					case "start":
						starts++
					case "end":
						ends++
					}
				}
				if starts != 1 || ends != 1 || evs[0].Alert.Context.Attack.Phase != "start" || evs[len(evs)-1].Alert.Context.Attack.Phase != "end" {
					t.Fatalf("%d starts, %d ends, want one start … one end:\n%s\n%s", starts, ends, out, stderr)
				}
				end := evs[len(evs)-1].Alert.Context.Attack
				if len(end.Sensors) != 4 {
					t.Errorf("sensors %+v, want gw0…gw3", end.Sensors)
				}
				if tc.sensor < 0 {
					if len(end.SensorAttackIDs) != 0 {
						t.Errorf("sensor_attack_ids %v, no sensor alerted", end.SensorAttackIDs)
					}
					if end.Packets > uint64(total) || float64(end.Packets) < 0.8*float64(total) {
						t.Errorf("fleet attack counted %d packets, the gateways saw %d", end.Packets, total)
					}
					return
				}
				if len(sensorIDs) != 1 || len(end.SensorAttackIDs) != 1 || end.SensorAttackIDs[0] != sensorIDs[0] {
					t.Errorf("the fleet's end names sensor attacks %v, gw%d raised %v", end.SensorAttackIDs, tc.sensor, sensorIDs)
				}
			})
		}
	}
}
