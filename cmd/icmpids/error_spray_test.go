package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
)

// A forged-error spray (fragmentation-needed, MTU 68, one forger, each
// error to a new receiver, 200/s for 60 s) is one icmp_error_abuse attack
// whose target is the forger, with one, two and four engines alike (the
// receivers are spread over the engines; the errors go to the forger's
// engine too) — where it was 11,998 attacks. Beside it a lone forged error
// to one host is that host's attack, and genuine PMTUD and traceroute
// errors stay silent.
func TestReplayErrorSprayWorkers(t *testing.T) {
	next, err := synth.Crafted{Kind: synth.CraftPTBSpray, Seed: 3}.Gen()
	if err != nil {
		t.Fatal(err)
	}
	var frames []synth.Frame
	for i := 0; i < 12000; i++ {
		d, err := next(i)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, synth.Frame{Time: epoch.Add(time.Duration(i) * 5 * time.Millisecond), Data: d})
	}
	a := netip.MustParseAddr
	quote := func(rcv netip.Addr, mtu uint32) []byte {
		return synth.Unreach(mtu, synth.Quote(rcv, a("198.51.100.80"), 6, 40000, 443, 1500))
	}
	lone := a("172.16.9.5")
	frames = append(frames, synth.Msg{Src: a("192.0.2.99"), Dst: lone, Type: 3, Code: 4, Rest: quote(lone, 68)}.At(epoch.Add(7*time.Second)))
	for i := 0; i < 40; i++ {
		rcv := netip.AddrFrom4([4]byte{172, 16, byte(i), 10})
		// Genuine PMTUD: one router, 40 hosts, MTU 1400 about 1500 bytes.
		frames = append(frames, synth.Msg{Src: a("172.16.0.1"), Dst: rcv, Type: 3, Code: 4, Rest: quote(rcv, 1400)}.At(epoch.Add(time.Duration(i)*time.Second)))
		// Traceroute: time exceeded from hop i to one host.
		frames = append(frames, synth.Msg{Src: netip.AddrFrom4([4]byte{100, 64, byte(i), 1}), Dst: a("172.16.50.5"), Type: 11,
			Rest: synth.Unreach(0, synth.Quote(a("172.16.50.5"), a("8.8.8.8"), 17, 40000, uint16(33434+i), 60))}.At(epoch.Add(time.Duration(i)*500*time.Millisecond)))
	}
	pcap := filepath.Join(t.TempDir(), "spray.pcap")
	if err := synth.WritePcapFile(pcap, synth.Merge(frames)); err != nil {
		t.Fatal(err)
	}
	var first string
	for _, w := range []string{"1", "2", "4"} {
		code, out, stderr := icmpids(t, "replay", "--format", "eve", "--workers", w, pcap)
		if code != 0 {
			t.Fatalf("--workers %s: exit %d: %s", w, code, stderr)
		}
		starts, ends := map[string]int{}, map[string]int{}
		var receivers float64
		for _, e := range checkCommunityIDs(t, "spray", out) {
			at := e.Alert.Context.Attack
			key := at["rule"].(string) + " " + at["target"].(string)
			switch at["phase"] {
			case "start":
				starts[key]++
			case "end":
				ends[key]++
				if at["target"] == "203.0.113.66" {
					receivers, _ = at["receivers"].(float64)
				}
			}
		}
		var got []string
		for k, n := range starts {
			if n != 1 || ends[k] != 1 {
				t.Errorf("--workers %s: %s: %d starts, %d ends, want 1 and 1", w, k, n, ends[k])
			}
			got = append(got, k)
		}
		sort.Strings(got)
		want := []string{"icmp_error_abuse 172.16.9.5", "icmp_error_abuse 203.0.113.66"}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("--workers %s: attacks %v, want %v", w, got, want)
		}
		if receivers < 11000 || receivers > 13000 {
			t.Errorf("--workers %s: the spray's end counts %v receivers, want about 12,000", w, receivers)
		}
		if w == "1" {
			first = out
		} else if out != first {
			t.Errorf("--workers %s printed other events than one worker", w)
		}
	}
}

// max_attacks is the sensor's, not each engine's: 6,000 forged errors, each
// from a new spoofed reporter to a new receiver within one second, open
// 4,096 attacks (the default max_attacks) with one worker and no more with
// four (each of the three target-owning engines gets a third; it was 4,096
// each: all 6,000). The tables' capacities the summary reports add up to
// the configuration's too.
func TestReplayCapsAreTheSensors(t *testing.T) {
	next, err := synth.Crafted{Kind: synth.CraftPTBSpray, Sources: 6000, Seed: 5}.Gen()
	if err != nil {
		t.Fatal(err)
	}
	var frames []synth.Frame
	for i := 0; i < 6000; i++ {
		d, err := next(i)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, synth.Frame{Time: epoch.Add(time.Duration(i) * time.Second / 6000), Data: d})
	}
	dir := t.TempDir()
	pcap := filepath.Join(dir, "forgers.pcap")
	if err := synth.WritePcapFile(pcap, frames); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"1", "4"} {
		sum := filepath.Join(dir, "sum"+w+".json")
		code, out, stderr := icmpids(t, "replay", "--format", "eve", "--workers", w, "--summary-json", sum, pcap)
		if code != 0 {
			t.Fatalf("--workers %s: exit %d: %s", w, code, stderr)
		}
		starts := 0
		for _, e := range parseEVE(t, out) {
			if e.Alert.Context.Attack.Phase == "start" {
				starts++
			}
		}
		if w == "1" && starts != 4096 || starts > 4096 || starts < 4000 {
			t.Errorf("--workers %s: %d attacks started, want 4,096 with one worker and at most that with more", w, starts)
		}
		b, err := os.ReadFile(sum)
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Capture struct {
				Tables []struct {
					Name string `json:"name"`
					Cap  int    `json:"cap"`
				} `json:"tables"`
			} `json:"capture"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, tb := range s.Capture.Tables {
			if tb.Name == "icmp_error_abuse.hosts" {
				found = true
				if tb.Cap < 16000 || tb.Cap > 16384 {
					t.Errorf("--workers %s: icmp_error_abuse.hosts holds %d in all, want the configured 16,384", w, tb.Cap)
				}
			}
		}
		if !found {
			t.Errorf("--workers %s: no icmp_error_abuse.hosts in the summary: %s", w, b)
		}
	}
}
