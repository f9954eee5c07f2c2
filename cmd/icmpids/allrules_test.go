package main

import (
	"bufio"
	"bytes"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/rules"
)

// allRulesCapture writes one capture holding an attack for every rule,
// each in its own minute of packet time: the golden EVE output of its
// replay pins every rule's events (start, update where an attack lasts,
// end) and every one is validated against Suricata's schema.
func allRulesCapture(t *testing.T) string {
	t.Helper()
	a := netip.MustParseAddr
	var frames []synth.Frame
	at := func(minute int) time.Time { return epoch.Add(time.Duration(minute) * time.Minute) }
	add := func(fs []synth.Frame, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, fs...)
	}
	every := func(m synth.Msg, start time.Time, rate float64, n int, each func(i int, m *synth.Msg)) []synth.Frame {
		return synth.Every(m, start, time.Duration(float64(time.Second)/rate), n, each)
	}
	nth := func(base netip.Addr, i int) netip.Addr {
		b := base.As16()
		v := int(b[14])<<8 | int(b[15]) + i
		b[14], b[15] = byte(v>>8), byte(v)
		if base.Is4() {
			return netip.AddrFrom4([4]byte(b[12:16]))
		}
		return netip.AddrFrom16(b)
	}
	// icmp_flood (15 s, so it has updates)
	add(synth.Flood{Target: a("10.0.0.5"), Source: a("198.51.100.7"), Start: at(0), Rate: 2000, Count: 30000}.Frames())
	// ping_of_death
	d, pieces := synth.PingTrain(a("198.51.100.66"), a("10.0.0.9"), 4242, 66000, 1480)
	add(d.Frames(pieces, at(1), time.Millisecond))
	// smurf (reply storm from 100 reflectors)
	add(synth.Smurf{Victim: a("10.0.7.7"), Reflectors: synth.Hosts(netip.MustParsePrefix("10.9.0.0/24"), 100), Replies: true, Start: at(2), Rate: 40, Count: 200}.Frames())
	// blacknurse
	pu := synth.Msg{Src: a("203.0.113.9"), Dst: a("10.0.0.11"), Type: 3, Code: 3, Rest: synth.Unreach(0, synth.Quote(a("10.0.0.11"), a("203.0.113.9"), 17, 5353, 53, 60))}
	frames = append(frames, every(pu, at(3), 1500, 3000, nil)...)
	// icmp_redirect (gateway 0.0.0.0)
	frames = append(frames, every(synth.Msg{Src: a("10.0.0.1"), Dst: a("10.0.0.12"), Type: 5, Code: 1,
		Rest: append([]byte{0, 0, 0, 0}, synth.Quote(a("10.0.0.12"), a("192.0.2.80"), 6, 1, 443, 60)...)}, at(4), 1, 3, nil)...)
	// icmp_sweep
	frames = append(frames, every(synth.Msg{Src: a("10.0.0.128"), Type: 8, Rest: make([]byte, 12)}, at(5), 100, 254, func(i int, m *synth.Msg) {
		m.Dst = nth(a("10.0.1.0"), 1+i)
	})...)
	// icmp_tunnel: replies carry other data than their requests
	for i := 0; i < 10; i++ {
		data := func(seed int) []byte {
			b := make([]byte, 64+seed%32)
			for k := range b {
				b[k] = byte(k*seed*7 + seed)
			}
			return b
		}
		req := synth.Msg{Src: a("192.168.1.10"), Dst: a("203.0.113.50"), Type: 8, Rest: append([]byte{0, 7, 0, byte(i)}, data(i+1)...)}
		rep := synth.Msg{Src: a("203.0.113.50"), Dst: a("192.168.1.10"), Type: 0, Rest: append([]byte{0, 7, 0, byte(i)}, data(i+100)...)}
		frames = append(frames, req.At(at(6).Add(time.Duration(i)*time.Second)), rep.At(at(6).Add(time.Duration(i)*time.Second+time.Millisecond)))
	}
	// icmp_carpet_flood
	frames = append(frames, every(synth.Msg{Src: a("198.51.100.70"), Type: 8, Rest: make([]byte, 60)}, at(20), 40000, 80000, func(i int, m *synth.Msg) {
		m.Dst = nth(a("192.0.2.0"), 1+i%254)
	})...)
	// ra_flood and rogue_ra (flood_router26: new routers every time)
	frames = append(frames, every(synth.Msg{Dst: a("ff02::1"), Type: 134}, at(21), 1000, 3000, func(i int, m *synth.Msg) {
		mac := synth.MAC(uint32(1000 + i))
		m.Src, m.SrcMAC = nth(a("fe80::1:0"), i), mac
		m.Rest = synth.RA(1800, 0, synth.PrefixOpt(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xf0, byte(i >> 8), byte(i)}), 64)), synth.LinkAddrOpt(1, mac))
	})...)
	// nd_flood (flood_solicitate6)
	frames = append(frames, every(synth.Msg{Dst: a("ff02::1"), Type: 135}, at(22), 2000, 6000, func(i int, m *synth.Msg) {
		mac := synth.MAC(uint32(5000 + i))
		m.Src, m.SrcMAC = nth(a("2001:db8:1::8000"), i), mac
		m.Rest = synth.NS(nth(a("2001:db8:1::100"), i), synth.LinkAddrOpt(1, mac))
	})...)
	// nd_spoof (one address fought over)
	frames = append(frames, every(synth.Msg{Src: a("2001:db8:1::101"), Dst: a("ff02::1"), Type: 136}, at(23), 1, 4, func(i int, m *synth.Msg) {
		mac := synth.MAC(101)
		if i%2 == 1 {
			mac = synth.MAC(66)
		}
		m.SrcMAC = mac
		m.Rest = synth.NA(a("2001:db8:1::101"), false, false, true, synth.LinkAddrOpt(2, mac))
	})...)
	// icmp_error_abuse (Packet Too Big, MTU 1200)
	frames = append(frames, synth.Msg{Src: a("2001:db8::1"), Dst: a("2001:db8::5"), Type: 2,
		Rest: synth.Unreach(1200, synth.Quote(a("2001:db8::5"), a("2001:db8:2::80"), 6, 40000, 443, 1500))}.At(at(24)))
	// decode_anomaly: a flood 5 GRE tunnels deep (decode.max_depth 4)
	deep, err := synth.Flood{Target: a("10.0.0.20"), Source: a("198.51.100.8"), Start: at(25), Rate: 2000, Count: 1000}.Frames()
	add(deep, err)
	for i := len(frames) - len(deep); i < len(frames); i++ {
		for j := 0; j < 5; j++ {
			w, err := synth.Wrap(synth.WrapGRE, frames[i].Data)
			if err != nil {
				t.Fatal(err)
			}
			frames[i].Data = w
		}
	}
	// icmp_flood through a GRE tunnel whose carriers are each two
	// fragments, and a rogue RA in two fragments to one host
	// (reassembled: engine.reassembly).
	carried, err := synth.Flood{Target: a("10.0.0.21"), Source: a("198.51.100.9"), Start: at(26), Rate: 2000, Count: 3000, PayloadLen: 1400}.Frames()
	if err != nil {
		t.Fatal(err)
	}
	if carried, err = synth.WrapFrames(synth.WrapGRE, carried); err != nil {
		t.Fatal(err)
	}
	rogue := synth.Msg{Src: a("fe80::bad"), Dst: a("2001:db8:1::200"), SrcMAC: synth.MAC(66), Type: 134,
		Rest: synth.RA(1800, 0, synth.PrefixOpt(netip.MustParsePrefix("2001:db8:bad::/64")), synth.LinkAddrOpt(1, synth.MAC(66)))}
	carried = append(carried, rogue.At(at(27)))
	for i, f := range carried {
		parts, err := synth.FragmentFrame(f.Data, 1400-1368*(i/3000), uint32(i))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			frames = append(frames, synth.Frame{Time: f.Time, Data: p})
		}
	}
	frames = synth.Merge(frames)
	path := filepath.Join(t.TempDir(), "allrules.pcap")
	if err := synth.WritePcapFile(path, frames); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAllRulesEVE: every rule's events, golden, each valid EVE.
func TestAllRulesEVE(t *testing.T) {
	capture := allRulesCapture(t)
	code, out, stderr := icmpids(t, "replay", "--format", "eve", capture)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	schema, err := jsonschema.NewCompiler().Compile(filepath.Join("..", "..", "output", "testdata", "suricata-eve.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(sc.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(v); err != nil {
			t.Errorf("not valid EVE: %v\n%s", err, sc.Text())
		}
	}
	for _, e := range parseEVE(t, out) {
		seen[e.Alert.Context.Attack.Rule+" "+e.Alert.Context.Attack.Phase] = true
	}
	var missing []string
	for _, r := range rules.Names() {
		if r == "frag_oversize" || r == "frag_overlap" || r == "frag_tiny" || r == "frag_flood" {
			continue // the fragment rules' events are pinned by the corpus and output goldens
		}
		if !seen[r+" start"] {
			missing = append(missing, r)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no start for %v; events: %v", missing, summary(parseEVE(t, out)))
	}
	if !seen["icmp_flood update"] || !seen["icmp_flood end"] {
		t.Errorf("the flood's update and end are missing: %v", seen)
	}
	// capture_file names a temporary directory: the golden has the base name.
	golden(t, filepath.Join("testdata", "allrules.eve.golden"), strings.ReplaceAll(out, capture, filepath.Base(capture)))
}
