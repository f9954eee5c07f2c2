package main

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/output"
)

// eveIDs is what TestCommunityIDOfEveryEvent reads of an alert: the
// fields community_id is computed from, and the attack context.
type eveIDs struct {
	SrcIP       string  `json:"src_ip"`
	DestIP      string  `json:"dest_ip"`
	Proto       string  `json:"proto"`
	ICMPType    *uint16 `json:"icmp_type"`
	ICMPCode    *uint16 `json:"icmp_code"`
	CommunityID string  `json:"community_id"`
	Alert       struct {
		Context struct {
			Attack map[string]any `json:"attack"`
		} `json:"context"`
	} `json:"alert"`
}

// checkCommunityIDs recomputes every alert's community_id from its own
// src_ip, dest_ip, proto, icmp_type and icmp_code, as a SIEM would, and
// returns the alerts.
func checkCommunityIDs(t *testing.T, name, eve string) []eveIDs {
	t.Helper()
	var evs []eveIDs
	sc := bufio.NewScanner(strings.NewReader(eve))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e eveIDs
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: not JSON: %v: %s", name, err, sc.Text())
		}
		evs = append(evs, e)
		a := e.Alert.Context.Attack
		what := func() string {
			return name + ": " + a["rule"].(string) + " " + a["phase"].(string) + " " + a["target"].(string)
		}
		if (e.Proto == "ICMP" || e.Proto == "IPv6-ICMP") && e.ICMPType == nil && a["rule"] == "ping_of_death" && a["first_fragment_seen"] == true {
			t.Errorf("%s: no icmp_type although the train's first fragment was seen: %s", what(), sc.Text())
		}
		if e.ICMPType == nil {
			if e.CommunityID != "" {
				t.Errorf("%s: community_id without icmp_type: %s", what(), sc.Text())
			}
			continue
		}
		if e.CommunityID == "" {
			t.Errorf("%s: icmp_type without community_id: %s", what(), sc.Text())
			continue
		}
		proto := uint8(1)
		if e.Proto == "IPv6-ICMP" {
			proto = 58
		}
		src, err1 := netip.ParseAddr(e.SrcIP)
		dst, err2 := netip.ParseAddr(e.DestIP)
		if err1 != nil || err2 != nil {
			t.Errorf("%s: bad addresses: %s", what(), sc.Text())
			continue
		}
		if want := output.CommunityID(src, dst, proto, *e.ICMPType, *e.ICMPCode); e.CommunityID != want {
			t.Errorf("%s: community_id %s, recomputed from the event's own fields %s: %s", what(), e.CommunityID, want, sc.Text())
		}
	}
	return evs
}

// TestCommunityIDOfEveryEvent: every alert of the corpus replay and of
// crafted captures carries the Community ID of its own src_ip, dest_ip,
// proto, icmp_type and icmp_code — on an end whose src_ip is the attack's
// first source and not its last packet's, and on a Ping of Death's start,
// raised by a fragment without an ICMP header. A carpet's hosts never
// exceed the addresses of its prefix.
func TestCommunityIDOfEveryEvent(t *testing.T) {
	dir := corpusDir(t)
	total := 0
	for _, tc := range corpusCases {
		code, out, stderr := icmpids(t, "replay", "--format", "eve", filepath.Join(dir, tc.file))
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.file, code, stderr)
		}
		total += len(checkCommunityIDs(t, tc.file, out))
	}
	if total < 20 {
		t.Errorf("the corpus raised %d alerts, want at least 20 to check", total)
	}

	tmp := t.TempDir()
	write := func(name string, frames []synth.Frame) string {
		p := filepath.Join(tmp, name)
		if err := synth.WritePcapFile(p, synth.Merge(frames)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	victim := netip.MustParseAddr("10.0.0.5")
	// A flood of one host whose sender changes halfway: the end's src_ip
	// is the first sender, its last packet the second's.
	var flood []synth.Frame
	for i, src := range []string{"198.51.100.7", "203.0.113.9"} {
		f, err := synth.Flood{Target: victim, Source: netip.MustParseAddr(src), Start: epoch.Add(time.Duration(i) * 2 * time.Second), Rate: 3000, Count: 6000}.Frames()
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, f...)
	}
	// Ping of Death over IPv4 and IPv6: raised by the last fragment.
	var pod []synth.Frame
	for i, src := range []string{"198.51.100.8", "2001:db8:9::8"} {
		dst := victim
		if i == 1 {
			dst = netip.MustParseAddr("2001:db8:1::5")
		}
		d, pieces := synth.PingTrain(netip.MustParseAddr(src), dst, 77, 65600, 1232)
		f, err := d.Frames(pieces, epoch.Add(time.Duration(i)*time.Second), time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		pod = append(pod, f...)
	}
	// A carpet over 10.9.9.0/24: every host, 6,000 requests/s for 3 s.
	var carpet []synth.Frame
	for i := 0; i < 18000; i++ {
		d, err := synth.EchoFrame(synth.Echo{Src: synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15|1, true), Dst: netip.AddrFrom4([4]byte{10, 9, 9, byte(i)}), ID: 9, Seq: uint16(i)})
		if err != nil {
			t.Fatal(err)
		}
		carpet = append(carpet, synth.Frame{Time: epoch.Add(time.Duration(i) * time.Second / 6000), Data: d})
	}
	for _, c := range []struct {
		name   string
		frames []synth.Frame
		rule   string
		want   int // alerts of rule, at least
	}{
		{"flood-two-senders.pcap", flood, "icmp_flood", 2},
		{"pod.pcap", pod, "ping_of_death", 2},
		{"carpet.pcap", carpet, "icmp_carpet_flood", 2},
	} {
		for _, w := range []string{"1", "3"} {
			code, out, stderr := icmpids(t, "replay", "--format", "eve", "--workers", w, write(c.name, c.frames))
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", c.name, code, stderr)
			}
			n := 0
			for _, e := range checkCommunityIDs(t, c.name, out) {
				a := e.Alert.Context.Attack
				if a["rule"] != c.rule {
					continue
				}
				n++
				if h, ok := a["hosts"].(float64); c.rule == "icmp_carpet_flood" && (!ok || h > 256) {
					t.Errorf("%s: a /24 carpet of %v hosts", c.name, a["hosts"])
				}
			}
			if n < c.want {
				t.Errorf("%s --workers %s: %d %s alerts, want at least %d:\n%s", c.name, w, n, c.rule, c.want, out)
			}
		}
	}
}
