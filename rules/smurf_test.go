package rules_test

import (
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/corpus"
	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// smurfEpoch is the fixed packet-time origin of the smurf scenarios.
var smurfEpoch = time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC)

var (
	smurfVictim4  = netip.MustParseAddr("192.0.2.10")
	smurfBcast4   = netip.MustParseAddr("10.0.0.255")
	smurfNet4     = netip.MustParsePrefix("10.0.0.0/24")
	smurfVictim6  = netip.MustParseAddr("2001:db8::10")
	smurfAllNodes = netip.MustParseAddr("ff02::1")
	smurfNet6     = netip.MustParsePrefix("2001:db8:a::/64")
	smurfMonitor  = netip.MustParseAddr("192.0.2.200")
)

// smurfRules returns smurf built from cfg and icmp_flood (defaults) with
// smurf classifying the packets icmp_flood leaves out, as the engine runs them.
func smurfRules(t testing.TB, cfg rules.SmurfConfig) (*rules.Smurf, *rules.Flood) {
	t.Helper()
	s, err := rules.NewSmurf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, rules.NewFlood(rules.DefaultFloodConfig())
}

// smurfEngine returns an engine running rs whose events land in *evs.
func smurfEngine(t testing.TB, evs *[]*detector.Event, rs ...detector.Rule) *detector.Engine {
	t.Helper()
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { *evs = append(*evs, ev) }), rs...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func smurfReplay(t testing.TB, frames []synth.Frame, rs ...detector.Rule) []*detector.Event {
	t.Helper()
	var evs []*detector.Event
	e := smurfEngine(t, &evs, rs...)
	for _, f := range frames {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	e.Close(detector.EndInputEnd)
	return evs
}

// smurfFrames returns a function that passes frames through and fails t on
// an error, for smurfFrames(t)(generator.Frames()).
func smurfFrames(t testing.TB) func([]synth.Frame, error) []synth.Frame {
	return func(fs []synth.Frame, err error) []synth.Frame {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
}

// smurfSummary is what a scenario raised: start and end events per rule and
// the targets of the starts.
type smurfSummary struct {
	starts, ends map[string]int
	targets      map[string][]netip.Addr
	first        map[string]*detector.Event // first start event per rule
}

func summarizeSmurf(evs []*detector.Event) smurfSummary {
	s := smurfSummary{starts: map[string]int{}, ends: map[string]int{}, targets: map[string][]netip.Addr{}, first: map[string]*detector.Event{}}
	for _, ev := range evs {
		n := ev.Rule.Name
		switch ev.Phase {
		case detector.PhaseStart:
			s.starts[n]++
			s.targets[n] = append(s.targets[n], ev.Target)
			if s.first[n] == nil {
				s.first[n] = ev
			}
		case detector.PhaseEnd:
			s.ends[n]++
		}
	}
	return s
}

func TestSmurfScenarios(t *testing.T) {
	reflectors4 := synth.Hosts(smurfNet4, 100)
	reflectors6 := synth.Hosts(smurfNet6, 60)
	monitorTargets := synth.Hosts(netip.MustParsePrefix("10.1.0.0/16"), 500)

	type want struct {
		smurf      int        // smurf start events (each must end once)
		target     netip.Addr // smurf's target
		sides      string
		minRefl    uint64 // reflectors estimate bounds (reply side)
		maxRefl    uint64
		broadcasts []string
		flood      int // icmp_flood start events
		floodAt    netip.Addr
	}
	cases := []struct {
		name   string
		cfg    func(c *rules.SmurfConfig)
		frames func(t *testing.T) []synth.Frame
		want   want
	}{
		{
			name: "ipv4 request side only (amplifier network, .255 heuristic)",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfVictim4, Broadcast: smurfBcast4, Requests: true,
					Start: smurfEpoch, Rate: 100, Count: 500, ID: 0x5151}.Frames())
			},
			want: want{smurf: 1, target: smurfVictim4, sides: "request", broadcasts: []string{"10.0.0.255"}},
		},
		{
			name: "ipv4 request side to a /25 home network's broadcast, heuristic off",
			cfg: func(c *rules.SmurfConfig) {
				c.HomeNetworks = []string{"10.0.1.0/25"}
				c.BroadcastHeuristic = false
			},
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfVictim4, Broadcast: netip.MustParseAddr("10.0.1.127"), Requests: true,
					Start: smurfEpoch, Rate: 100, Count: 500}.Frames())
			},
			want: want{smurf: 1, target: smurfVictim4, sides: "request", broadcasts: []string{"10.0.1.127"}},
		},
		{
			name: "ipv4 .255 inside a /23 home network is a host, not a broadcast",
			cfg: func(c *rules.SmurfConfig) {
				c.HomeNetworks = []string{"10.0.0.0/23"}
			},
			frames: func(t *testing.T) []synth.Frame {
				fs, err := synth.Pings(smurfVictim4, smurfBcast4, smurfEpoch, 10*time.Millisecond, 500)
				return smurfFrames(t)(fs, err)
			},
			want: want{},
		},
		{
			name: "ipv4 reply side only (victim network, 100 reflectors, 4000 replies/s)",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfVictim4, Broadcast: smurfBcast4, Reflectors: reflectors4, Replies: true,
					Start: smurfEpoch, Rate: 40, Count: 200}.Frames())
			},
			want: want{smurf: 1, target: smurfVictim4, sides: "reply", minRefl: 90, maxRefl: 110},
		},
		{
			name: "ipv4 both sides on one link are one attack",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfVictim4, Broadcast: smurfBcast4, Reflectors: reflectors4, Requests: true, Replies: true,
					Start: smurfEpoch, Rate: 40, Count: 200}.Frames())
			},
			want: want{smurf: 1, target: smurfVictim4, sides: "request+reply", minRefl: 90, maxRefl: 110, broadcasts: []string{"10.0.0.255"}},
		},
		{
			name: "ipv6 request side to ff02::1",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfVictim6, Broadcast: smurfAllNodes, Requests: true,
					Start: smurfEpoch, Rate: 100, Count: 500}.Frames())
			},
			want: want{smurf: 1, target: smurfVictim6, sides: "request", broadcasts: []string{"ff02::1"}},
		},
		{
			name: "ipv6 reply side only (60 reflectors, 3000 replies/s)",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfVictim6, Broadcast: smurfAllNodes, Reflectors: reflectors6, Replies: true,
					Start: smurfEpoch, Rate: 50, Count: 250}.Frames())
			},
			want: want{smurf: 1, target: smurfVictim6, sides: "reply", minRefl: 54, maxRefl: 66},
		},
		{
			name: "ipv6 both sides are one attack",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfVictim6, Broadcast: netip.MustParseAddr("ff05::1"), Reflectors: reflectors6, Requests: true, Replies: true,
					Start: smurfEpoch, Rate: 50, Count: 250}.Frames())
			},
			want: want{smurf: 1, target: smurfVictim6, sides: "request+reply", minRefl: 54, maxRefl: 66, broadcasts: []string{"ff05::1"}},
		},
		{
			name: "ipv4 limited broadcast 255.255.255.255",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfVictim4, Broadcast: netip.MustParseAddr("255.255.255.255"), Requests: true,
					Start: smurfEpoch, Rate: 50, Count: 200}.Frames())
			},
			want: want{smurf: 1, target: smurfVictim4, sides: "request", broadcasts: []string{"255.255.255.255"}},
		},
		{
			name: "monitoring host pings 500 hosts, one id each, 3 rounds",
			frames: func(t *testing.T) []synth.Frame {
				var rounds [][]synth.Frame
				for r := 0; r < 3; r++ {
					rounds = append(rounds, smurfFrames(t)(synth.Sweep{Src: smurfMonitor, Targets: monitorTargets, PerTargetID: true, ID: 1000,
						Seq: uint16(r), Start: smurfEpoch.Add(time.Duration(r) * 5 * time.Second), Interval: time.Millisecond}.Frames()))
				}
				return synth.Merge(rounds...)
			},
			want: want{},
		},
		{
			name: "monitoring host pings 500 hosts with one shared id (fping)",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Sweep{Src: smurfMonitor, Targets: monitorTargets, ID: 77,
					Start: smurfEpoch, Interval: 500 * time.Microsecond}.Frames())
			},
			want: want{},
		},
		{
			name: "a single broadcast ping answered by 100 hosts",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfMonitor, Broadcast: smurfBcast4, Reflectors: reflectors4, Requests: true, Replies: true,
					Start: smurfEpoch, Rate: 1, Count: 1}.Frames())
			},
			want: want{},
		},
		{
			name: "ping -b once a second for 30s answered by 100 hosts",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfMonitor, Broadcast: smurfBcast4, Reflectors: reflectors4, Requests: true, Replies: true,
					Start: smurfEpoch, Rate: 1, Count: 30}.Frames())
			},
			want: want{},
		},
		{
			name: "ping6 ff02::1 every 0.2s for 20s answered by 60 nodes",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfVictim6, Broadcast: smurfAllNodes, Reflectors: reflectors6, Requests: true, Replies: true,
					Start: smurfEpoch, Rate: 5, Count: 100}.Frames())
			},
			want: want{},
		},
		{
			name: "unsolicited replies from 5 reflectors at 1000/s are not a smurf",
			frames: func(t *testing.T) []synth.Frame {
				return smurfFrames(t)(synth.Smurf{Victim: smurfVictim4, Reflectors: reflectors4[:5], Replies: true,
					Start: smurfEpoch, Rate: 200, Count: 1000}.Frames())
			},
			want: want{},
		},
		{
			name: "echo-reply flood from one source stays an icmp_flood",
			frames: func(t *testing.T) []synth.Frame {
				var out []synth.Frame
				for i := 0; i < 9000; i++ {
					data, err := synth.EchoFrame(synth.Echo{Src: reflectors4[0], Dst: smurfVictim4, Reply: true, ID: 3, Seq: uint16(i)})
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, synth.Frame{Time: smurfEpoch.Add(time.Duration(i) * time.Second / 3000), Data: data})
				}
				return out
			},
			want: want{flood: 1, floodAt: smurfVictim4},
		},
		{
			name: "spoofed-source echo flood of ff02::1 stays an icmp_flood",
			frames: func(t *testing.T) []synth.Frame {
				fs, err := synth.Flood{Target: smurfAllNodes, Spoofed: true, Seed: 3, Start: smurfEpoch, Rate: 5000, Count: 10000}.Frames()
				return smurfFrames(t)(fs, err)
			},
			want: want{flood: 1, floodAt: smurfAllNodes},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := rules.DefaultSmurfConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			s, f := smurfRules(t, cfg)
			evs := smurfReplay(t, tc.frames(t), f, s)
			sum := summarizeSmurf(evs)
			if sum.starts["smurf"] != tc.want.smurf || sum.ends["smurf"] != tc.want.smurf {
				t.Fatalf("smurf: %d starts, %d ends (targets %v), want %d each", sum.starts["smurf"], sum.ends["smurf"], sum.targets["smurf"], tc.want.smurf)
			}
			if sum.starts["icmp_flood"] != tc.want.flood {
				t.Fatalf("icmp_flood: %d starts (targets %v), want %d", sum.starts["icmp_flood"], sum.targets["icmp_flood"], tc.want.flood)
			}
			if tc.want.flood > 0 && sum.targets["icmp_flood"][0] != tc.want.floodAt {
				t.Errorf("icmp_flood target %v, want %v", sum.targets["icmp_flood"][0], tc.want.floodAt)
			}
			if tc.want.smurf == 0 {
				return
			}
			ev := sum.first["smurf"]
			if ev.Target != tc.want.target {
				t.Errorf("smurf target %v, want %v", ev.Target, tc.want.target)
			}
			if ev.Rule.SignatureID != 9000007 {
				t.Errorf("signature id %d, want 9000007", ev.Rule.SignatureID)
			}
			// The end event carries the attack's final description.
			var end *detector.Event
			for _, e := range evs {
				if e.Rule.Name == "smurf" && e.Phase == detector.PhaseEnd {
					end = e
				}
			}
			if got := end.Extra["sides"]; got != tc.want.sides {
				t.Errorf("sides %v, want %q", got, tc.want.sides)
			}
			if tc.want.maxRefl > 0 {
				r, _ := end.Extra["reflectors"].(uint64)
				if r < tc.want.minRefl || r > tc.want.maxRefl {
					t.Errorf("reflectors %d, want [%d, %d]", r, tc.want.minRefl, tc.want.maxRefl)
				}
				// The engine's distinct sources are the reflectors (and,
				// with the request side, the spoofed sender).
				if end.Sources < tc.want.minRefl {
					t.Errorf("sources %d, want at least %d", end.Sources, tc.want.minRefl)
				}
			}
			bs, _ := end.Extra["broadcast_addresses"].([]string)
			if !slices.Equal(bs, tc.want.broadcasts) {
				t.Errorf("broadcast_addresses %v, want %v", bs, tc.want.broadcasts)
			}
		})
	}
}

func smurfRulesList(t testing.TB, cfg rules.SmurfConfig) []detector.Rule {
	s, f := smurfRules(t, cfg)
	return []detector.Rule{f, s}
}

// ruleOnly hides every interface of a rule but detector.Rule (its
// Classify among them).
type ruleOnly struct{ detector.Rule }

// Without smurf's classification, icmp_flood reports a reflection storm as
// a flood of the victim; with it, only smurf does.
func TestSmurfClaimsReplyStormFromFlood(t *testing.T) {
	frames := smurfFrames(t)(synth.Smurf{Victim: smurfVictim4, Reflectors: synth.Hosts(smurfNet4, 100), Replies: true,
		Start: smurfEpoch, Rate: 40, Count: 200}.Frames())
	s, err := rules.NewSmurf(rules.DefaultSmurfConfig())
	if err != nil {
		t.Fatal(err)
	}
	alone := summarizeSmurf(smurfReplay(t, frames, rules.NewFlood(rules.DefaultFloodConfig()), ruleOnly{s}))
	if alone.starts["icmp_flood"] != 1 || alone.starts["smurf"] != 1 {
		t.Fatalf("unwired: flood %d, smurf %d; want 1 and 1 (the double report the claim removes)", alone.starts["icmp_flood"], alone.starts["smurf"])
	}
	wired := summarizeSmurf(smurfReplay(t, frames, smurfRulesList(t, rules.DefaultSmurfConfig())...))
	if wired.starts["icmp_flood"] != 0 || wired.starts["smurf"] != 1 {
		t.Fatalf("wired: flood %d, smurf %d; want 0 and 1", wired.starts["icmp_flood"], wired.starts["smurf"])
	}
	disabled := rules.DefaultSmurfConfig()
	disabled.Enabled = false
	sd, f := smurfRules(t, disabled)
	_ = sd
	off := summarizeSmurf(smurfReplay(t, frames, f))
	if off.starts["icmp_flood"] != 1 {
		t.Fatalf("a disabled smurf must claim nothing: flood %d starts", off.starts["icmp_flood"])
	}
}

func replayCorpusFile(t testing.TB, path string, rs ...detector.Rule) []*detector.Event {
	t.Helper()
	r, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var evs []*detector.Event
	e := smurfEngine(t, &evs, rs...)
	for {
		fr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		e.HandleFrame(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length)
	}
	e.Close(detector.EndInputEnd)
	return evs
}

func TestSmurfCorpus(t *testing.T) {
	smurfCorpus := corpus.Dir(t)
	cases := []struct {
		file   string
		smurf  []netip.Addr // smurf start targets
		flood  int          // icmp_flood starts
		sides  string
		bcasts []string
	}{
		// 1,000 echo requests ff02::1 -> ff02::1 in 8 ms (THC rsmurf6): the
		// forged source is the all-nodes group, so the group is the victim.
		{file: "smurf/ipv6_rsmurf6_ff02-1_thc.pcap", smurf: []netip.Addr{smurfAllNodes}, sides: "request", bcasts: []string{"ff02::1"}},
		// 2 of 512 sweep pings go to 10.0.0.255: far below the rate.
		{file: "misc/ping_sweep_10.0.0.0_24_incl_bcast_sgr.pcap"},
		// 3 pings to 255.255.255.255 under QinQ tags.
		{file: "misc/broadcast_ping_255.255.255.255_vlan_suricata.pcap"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			evs := replayCorpusFile(t, filepath.Join(smurfCorpus, tc.file), smurfRulesList(t, rules.DefaultSmurfConfig())...)
			sum := summarizeSmurf(evs)
			if !slices.Equal(sum.targets["smurf"], tc.smurf) || sum.ends["smurf"] != len(tc.smurf) {
				t.Fatalf("smurf starts %v (%d ends), want %v", sum.targets["smurf"], sum.ends["smurf"], tc.smurf)
			}
			if sum.starts["icmp_flood"] != tc.flood {
				t.Errorf("icmp_flood starts %v, want %d", sum.targets["icmp_flood"], tc.flood)
			}
			for _, ev := range evs {
				if ev.Rule.Name == "smurf" && ev.Phase == detector.PhaseEnd {
					if ev.Extra["sides"] != tc.sides {
						t.Errorf("sides %v, want %q", ev.Extra["sides"], tc.sides)
					}
					if bs, _ := ev.Extra["broadcast_addresses"].([]string); !slices.Equal(bs, tc.bcasts) {
						t.Errorf("broadcast_addresses %v, want %v", bs, tc.bcasts)
					}
					if ev.Packets < 900 {
						t.Errorf("packets %d, want most of the 1,000", ev.Packets)
					}
				}
			}
		})
	}
}

// Every other capture in the corpus is silent for smurf.
func TestSmurfCorpusPrecision(t *testing.T) {
	smurfCorpus := corpus.Dir(t)
	err := filepath.WalkDir(smurfCorpus, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.Contains(path, ".pcap") || strings.Contains(path, "rsmurf6") {
			return nil
		}
		s, err := rules.NewSmurf(rules.DefaultSmurfConfig())
		if err != nil {
			return err
		}
		for _, ev := range replayCorpusFile(t, path, s) {
			if ev.Rule.Name == "smurf" {
				t.Errorf("%s: smurf %s -> %v", path, ev.Phase, ev.Target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A spoofed-source flood of broadcast pings keeps both tables within their
// caps and counts what it evicted; it is icmp_flood's (no source reaches
// smurf's rate), not smurf's.
func TestSmurfTablesBounded(t *testing.T) {
	cfg := rules.DefaultSmurfConfig()
	cfg.MaxHosts, cfg.MaxPending = 64, 128
	s, f := smurfRules(t, cfg)
	frames := smurfFrames(t)(synth.Flood{Target: smurfBcast4, Spoofed: true, Seed: 11, Start: smurfEpoch, Rate: 5000, Count: 5000}.Frames())
	// and unsolicited replies from spoofed reflectors to spoofed hosts
	rng := uint64(99)
	for i := 0; i < 2000; i++ {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		data, err := synth.EchoFrame(synth.Echo{Src: synth.RandomAddr(rng, true), Dst: synth.RandomAddr(rng>>3, true), Reply: true, ID: uint16(i)})
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, synth.Frame{Time: smurfEpoch.Add(time.Second + time.Duration(i)*100*time.Microsecond), Data: data})
	}
	frames = synth.Merge(frames)
	sum := summarizeSmurf(smurfReplay(t, frames, f, s))
	if sum.starts["smurf"] != 0 {
		t.Errorf("smurf raised %v", sum.targets["smurf"])
	}
	if sum.starts["icmp_flood"] != 1 || sum.targets["icmp_flood"][0] != smurfBcast4 {
		t.Errorf("icmp_flood %v, want one at %v", sum.targets["icmp_flood"], smurfBcast4)
	}
	for _, ts := range s.Tables() {
		if ts.Len > ts.Cap {
			t.Errorf("%s: %d entries over cap %d", ts.Name, ts.Len, ts.Cap)
		}
		if ts.Evicted == 0 {
			t.Errorf("%s: no evictions counted", ts.Name)
		}
		t.Logf("%s: len %d cap %d evicted %d", ts.Name, ts.Len, ts.Cap, ts.Evicted)
	}
}

func TestSmurfConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(c *rules.SmurfConfig)
		want string // substring of the error; "" for valid
	}{
		{name: "defaults", mod: func(c *rules.SmurfConfig) {}},
		{name: "home networks", mod: func(c *rules.SmurfConfig) {
			c.HomeNetworks = []string{"10.0.0.0/24", "192.168.1.1/24", "2001:db8::/48"}
		}},
		{name: "bad cidr", mod: func(c *rules.SmurfConfig) { c.HomeNetworks = []string{"10.0.0.0/24", "10.0.0.0/33"} },
			want: `rules.smurf.home_networks[1]: "10.0.0.0/33" is not a CIDR prefix`},
		{name: "bare address", mod: func(c *rules.SmurfConfig) { c.HomeNetworks = []string{"10.0.0.1"} },
			want: `rules.smurf.home_networks[0]: "10.0.0.1"`},
		{name: "window", mod: func(c *rules.SmurfConfig) { c.Window = time.Millisecond }, want: "rules.smurf.window: 1ms"},
		{name: "request_pps", mod: func(c *rules.SmurfConfig) { c.RequestPPS = 0 }, want: "rules.smurf.request_pps: 0"},
		{name: "reply_pps", mod: func(c *rules.SmurfConfig) { c.ReplyPPS = -1 }, want: "rules.smurf.reply_pps: -1"},
		{name: "min_reflectors", mod: func(c *rules.SmurfConfig) { c.MinReflectors = 0 }, want: "rules.smurf.min_reflectors: 0"},
		{name: "min_reflectors too many", mod: func(c *rules.SmurfConfig) { c.MinReflectors = 5000 }, want: "rules.smurf.min_reflectors: 5000"},
		{name: "stop_ratio", mod: func(c *rules.SmurfConfig) { c.StopRatio = 1.5 }, want: "rules.smurf.stop_ratio: 1.5"},
		{name: "max_hosts", mod: func(c *rules.SmurfConfig) { c.MaxHosts = 0 }, want: "rules.smurf.max_hosts: 0"},
		{name: "max_pending", mod: func(c *rules.SmurfConfig) { c.MaxPending = -3 }, want: "rules.smurf.max_pending: -3"},
		{name: "request_timeout", mod: func(c *rules.SmurfConfig) { c.RequestTimeout = 0 }, want: "rules.smurf.request_timeout: 0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rules.DefaultSmurfConfig()
			tc.mod(&c)
			err := c.Validate()
			_, nerr := rules.NewSmurf(c)
			switch {
			case tc.want == "" && (err != nil || nerr != nil):
				t.Fatalf("unexpected errors %v / %v", err, nerr)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			case tc.want != "" && nerr == nil:
				t.Fatalf("NewSmurf accepted a bad config")
			}
		})
	}
}

// smurfMix is a steady-state traffic mix for the allocation test and the
// benchmark: a smurf (requests and replies from 50 reflectors), a monitoring
// sweep, a benign ping, a unicast flood and a layer-2 broadcast ping.
func smurfMix(t testing.TB) []synth.Frame {
	t.Helper()
	var lists [][]synth.Frame
	lists = append(lists, smurfFrames(t)(synth.Smurf{Victim: smurfVictim4, Broadcast: smurfBcast4, Reflectors: synth.Hosts(smurfNet4, 50), Requests: true, Replies: true,
		Start: smurfEpoch, Rate: 20, Count: 40}.Frames()))
	lists = append(lists, smurfFrames(t)(synth.Smurf{Victim: smurfVictim6, Broadcast: smurfAllNodes, Reflectors: synth.Hosts(smurfNet6, 20), Requests: true, Replies: true,
		Start: smurfEpoch, Rate: 20, Count: 40}.Frames()))
	lists = append(lists, smurfFrames(t)(synth.Sweep{Src: smurfMonitor, Targets: synth.Hosts(netip.MustParsePrefix("10.1.0.0/16"), 200), PerTargetID: true,
		Start: smurfEpoch, Interval: 10 * time.Millisecond}.Frames()))
	fs, err := synth.Pings(netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), smurfEpoch, 50*time.Millisecond, 40)
	lists = append(lists, smurfFrames(t)(fs, err))
	lists = append(lists, smurfFrames(t)(synth.Flood{Target: netip.MustParseAddr("198.51.100.9"), Source: netip.MustParseAddr("203.0.113.5"),
		Start: smurfEpoch, Rate: 2000, Count: 4000}.Frames()))
	data, err := synth.EchoFrame(synth.Echo{Src: netip.MustParseAddr("10.0.0.7"), Dst: netip.MustParseAddr("10.0.0.255"), DstMAC: layers.EthernetBroadcast})
	lists = append(lists, smurfFrames(t)([]synth.Frame{{Time: smurfEpoch, Data: data}}, err))
	return synth.Merge(lists...)
}

// mixRunner feeds the mix again and again with packet time moving on, so
// every attack stays active and every table entry is reused.
type mixRunner struct {
	e      *detector.Engine
	frames []synth.Frame
	span   time.Duration
	round  int
	i      int
}

func (m *mixRunner) next() {
	f := m.frames[m.i]
	m.e.HandleFrame(detector.LinkEthernet, f.Data, f.Time.Add(time.Duration(m.round)*m.span), len(f.Data))
	if m.i++; m.i == len(m.frames) {
		m.i, m.round = 0, m.round+1
	}
}

func newMixRunner(t testing.TB, evs *[]*detector.Event, rs ...detector.Rule) *mixRunner {
	frames := smurfMix(t)
	span := frames[len(frames)-1].Time.Sub(frames[0].Time) + time.Millisecond
	if rs == nil {
		rs = smurfRulesList(t, rules.DefaultSmurfConfig())
	}
	return &mixRunner{e: smurfEngine(t, evs, rs...), frames: frames, span: span}
}

func TestSmurfObserveDoesNotAllocate(t *testing.T) {
	var evs []*detector.Event
	m := newMixRunner(t, &evs)
	for m.round < 3 { // warm up: attacks started, tables and maps grown
		m.next()
	}
	if summarizeSmurf(evs).starts["smurf"] != 2 {
		t.Fatalf("warm-up raised %v, want the two smurfs", summarizeSmurf(evs).targets)
	}
	// Measure within one update interval, so no event is due.
	n := len(m.frames) / 4
	allocs := testing.AllocsPerRun(4, func() {
		for j := 0; j < n; j++ {
			m.next()
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per %d packets, want 0", allocs, n)
	}
}

// BenchmarkSmurf runs the mix through decode and the engine with icmp_flood
// alone and with icmp_flood and smurf: the difference is smurf's cost.
func BenchmarkSmurf(b *testing.B) {
	for _, bc := range []struct {
		name  string
		rules func() []detector.Rule
	}{
		{"flood", func() []detector.Rule { return []detector.Rule{rules.NewFlood(rules.DefaultFloodConfig())} }},
		{"flood+smurf", func() []detector.Rule { return smurfRulesList(b, rules.DefaultSmurfConfig()) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var evs []*detector.Event
			m := newMixRunner(b, &evs, bc.rules()...)
			for m.round < 2 {
				m.next()
			}
			b.ReportAllocs()
			for b.Loop() {
				m.next()
				if len(evs) > 1024 {
					evs = evs[:0]
				}
			}
		})
	}
}
