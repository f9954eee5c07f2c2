package rules

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/corpus"
	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

var fragEpoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// fragRules returns every fragment rule with its defaults, and icmp_flood.
func fragRules() []detector.Rule {
	return []detector.Rule{
		NewFlood(DefaultFloodConfig()),
		NewPingOfDeath(DefaultPingOfDeathConfig()),
		NewFragOversize(DefaultFragOversizeConfig()),
		NewFragOverlap(DefaultFragOverlapConfig()),
		NewFragTiny(DefaultFragTinyConfig()),
		NewFragFlood(DefaultFragFloodConfig()),
	}
}

func newFragEngine(t testing.TB, rs ...detector.Rule) (*detector.Engine, *[]*detector.Event) {
	t.Helper()
	var evs []*detector.Event
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, ev) }), rs...)
	if err != nil {
		t.Fatal(err)
	}
	return e, &evs
}

func feed(e *detector.Engine, frames []synth.Frame) {
	for _, f := range frames {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	e.Close(detector.EndInputEnd)
}

// alertLine is an event in a comparable form: rule, phase, target and,
// for fragment one-shots, the computed size.
func alertLine(ev *detector.Event) string {
	s := fmt.Sprintf("%s %s %s", ev.Rule.Name, ev.Phase, ev.Target)
	if size, ok := ev.Extra["reassembled_size"]; ok {
		s += fmt.Sprintf(" size=%v", size)
	}
	return s
}

func lines(evs []*detector.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, alertLine(ev))
	}
	return out
}

func reverse[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func TestPingOfDeathBoundaries(t *testing.T) {
	v4s, v4d := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("10.0.0.5")
	v6s, v6d := netip.MustParseAddr("2001:db8:1::2"), netip.MustParseAddr("2001:db8:1::1")
	tests := []struct {
		name     string
		src, dst netip.Addr
		size     int
		fragData int
		order    func([]synth.Piece) []synth.Piece
		want     []string
	}{
		{"ipv4 65535 in order", v4s, v4d, 65535, 1480, nil, nil},
		{"ipv4 65536 in order", v4s, v4d, 65536, 1480, nil, []string{"ping_of_death start 10.0.0.5 size=65536"}},
		{"ipv4 65535 reversed", v4s, v4d, 65535, 1480, reverse[synth.Piece], nil},
		{"ipv4 65536 reversed", v4s, v4d, 65536, 1480, reverse[synth.Piece], []string{"ping_of_death start 10.0.0.5 size=65536"}},
		{"ipv4 66028 like mmt", v4s, v4d, 66028, 1480, nil, []string{"ping_of_death start 10.0.0.5 size=66028"}},
		{"ipv4 legal 65000 ping", v4s, v4d, 65000, 1480, nil, nil},
		{"ipv4 legal 8000 ping", v4s, v4d, 8000, 1480, nil, nil},
		{"ipv6 65535 in order", v6s, v6d, 65535, 1232, nil, nil},
		{"ipv6 65536 in order", v6s, v6d, 65536, 1232, nil, []string{"ping_of_death start 2001:db8:1::1 size=65536"}},
		{"ipv6 65535 reversed", v6s, v6d, 65535, 1232, reverse[synth.Piece], nil},
		{"ipv6 65536 reversed", v6s, v6d, 65536, 1232, reverse[synth.Piece], []string{"ping_of_death start 2001:db8:1::1 size=65536"}},
		{"ipv6 legal 65000 ping", v6s, v6d, 65000, 1232, nil, nil},
		{"ipv6 legal 8000 ping", v6s, v6d, 8000, 1232, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, pieces := synth.PingTrain(tc.src, tc.dst, 0x1234, tc.size, tc.fragData)
			if tc.order != nil {
				pieces = tc.order(pieces)
			}
			frames, err := d.Frames(pieces, fragEpoch, 100*time.Microsecond)
			if err != nil {
				t.Fatal(err)
			}
			e, evs := newFragEngine(t, fragRules()...)
			feed(e, frames)
			if got := lines(*evs); !slices.Equal(got, tc.want) {
				t.Fatalf("alerts %q, want %q", got, tc.want)
			}
			if len(*evs) == 1 {
				ev := (*evs)[0]
				if ev.Extra["fragments"] == nil || ev.Extra["first_fragment_seen"] != (tc.order == nil) ||
					ev.Extra["first_was_echo_request"] != (tc.order == nil) || ev.Extra["ip_id"] != uint32(0x1234) {
					t.Errorf("context %v", ev.Extra)
				}
				if wantAt := frames[len(frames)-1].Time; tc.order == nil && !ev.Time.Equal(wantAt) {
					t.Errorf("alert at %v, want the crossing fragment's time %v", ev.Time, wantAt)
				}
			}
			if s := e.Stats(); s.Frag.Len != 0 && s.Frag.Completed == 0 {
				t.Errorf("train not completed: %+v", s.Frag)
			}
		})
	}
}

// TestFragmentOrders replays a Ping of Death and a legal ping, interleaved
// and in every order, and a UDP oversize train: one alert per bad train.
func TestFragmentOrders(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.0.0.9")
	pod, podPieces := synth.PingTrain(a, b, 7, 65600, 1480)
	ok, okPieces := synth.PingTrain(a, b, 8, 65000, 1480)
	udp := synth.Datagram{Src: a, Dst: b, ID: 9, Proto: 17, Payload: make([]byte, 66000)}
	udpPieces := synth.Split(66000, 1480)
	build := func(d synth.Datagram, ps []synth.Piece) []synth.Frame {
		fr, err := d.Frames(ps, fragEpoch, time.Microsecond)
		if err != nil {
			t.Fatal(err)
		}
		return fr
	}
	dup := func(ps []synth.Piece) []synth.Piece {
		var out []synth.Piece
		for _, p := range ps {
			out = append(out, p, p)
		}
		return out
	}
	shuffle := func(ps []synth.Piece) []synth.Piece {
		out := slices.Clone(ps)
		for i := range out { // deterministic permutation
			j := (i*7 + 3) % len(out)
			out[i], out[j] = out[j], out[i]
		}
		return out
	}
	orders := map[string]func([]synth.Piece) []synth.Piece{
		"in order":   func(p []synth.Piece) []synth.Piece { return p },
		"reversed":   reverse[synth.Piece],
		"shuffled":   shuffle,
		"duplicated": dup,
	}
	for name, ord := range orders {
		t.Run(name, func(t *testing.T) {
			var frames []synth.Frame
			x, y, z := build(pod, ord(podPieces)), build(ok, ord(okPieces)), build(udp, ord(udpPieces))
			for i := 0; i < max(len(x), len(y), len(z)); i++ { // interleave the three trains
				for _, l := range [][]synth.Frame{x, y, z} {
					if i < len(l) {
						f := l[i]
						f.Time = fragEpoch.Add(time.Duration(len(frames)) * time.Microsecond)
						frames = append(frames, f)
					}
				}
			}
			e, evs := newFragEngine(t, fragRules()...)
			feed(e, frames)
			got := lines(*evs)
			slices.Sort(got)
			want := []string{"frag_oversize start 10.0.0.9 size=66020", "ping_of_death start 10.0.0.9 size=65600"}
			if !slices.Equal(got, want) {
				t.Fatalf("alerts %q, want %q", got, want)
			}
		})
	}
}

// TestFragmentedEchoCountsForFlood: the first fragment of a fragmented
// echo request carries the ICMP header and counts toward icmp_flood, once
// per datagram (not once per fragment).
func TestFragmentedEchoCountsForFlood(t *testing.T) {
	src, dst := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("10.0.0.5")
	run := func(rate, n int) []string {
		var frames []synth.Frame
		step := time.Second / time.Duration(rate)
		for i := 0; i < n; i++ {
			d, ps := synth.PingTrain(src, dst, uint32(i), 3000, 1480) // 3 fragments each
			fr, err := d.Frames(ps, fragEpoch.Add(time.Duration(i)*step), time.Microsecond)
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, fr...)
		}
		cfg := DefaultFloodConfig()
		cfg.EchoBPS, cfg.AnyBPS = 1e12, 1e12 // rate in packets only
		e, evs := newFragEngine(t, NewFlood(cfg))
		feed(e, frames)
		return lines(*evs)
	}
	if got := run(2000, 4000); len(got) == 0 || got[0] != "icmp_flood start 10.0.0.5" {
		t.Errorf("2,000 fragmented echo requests/s: %q, want an icmp_flood start", got)
	}
	// 600 datagrams/s are 1,800 fragments/s: over the 1,000/s echo level
	// only if fragments were counted one by one.
	if got := run(600, 1200); len(got) != 0 {
		t.Errorf("600 fragmented echo requests/s: %q, want nothing", got)
	}
}

func TestFragFlood(t *testing.T) {
	src, dst := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("10.0.0.7")
	var frames []synth.Frame
	// 3,000 first fragments in 1 s, random ids, never a second fragment.
	for i := 0; i < 3000; i++ {
		d := synth.Datagram{Src: src, Dst: dst, ID: uint32(i * 7919), Proto: 17, Payload: make([]byte, 1480)}
		fr, err := d.Frames([]synth.Piece{{Offset: 0, Len: 1480, More: true}}, fragEpoch.Add(time.Duration(i)*time.Second/3000), 0)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, fr...)
	}
	e, evs := newFragEngine(t, fragRules()...)
	feed(e, frames)
	got := lines(*evs)
	if len(got) != 2 || got[0] != "frag_flood start 10.0.0.7" || got[1] != "frag_flood end 10.0.0.7" {
		t.Fatalf("alerts %q, want a frag_flood start and end", got)
	}
	// The same rate of complete fragmented datagrams is no flood.
	frames = frames[:0]
	for i := 0; i < 3000; i++ {
		d, ps := synth.PingTrain(src, dst, uint32(i), 3000, 1480)
		fr, _ := d.Frames(ps, fragEpoch.Add(time.Duration(i)*time.Second/3000), time.Microsecond)
		frames = append(frames, fr...)
	}
	cfg := DefaultFloodConfig()
	cfg.EchoPPS, cfg.AnyPPS, cfg.EchoBPS, cfg.AnyBPS = 1e9, 1e9, 1e12, 1e12
	e, evs = newFragEngine(t, NewFlood(cfg), NewFragFlood(DefaultFragFloodConfig()))
	feed(e, frames)
	if got := lines(*evs); len(got) != 0 {
		t.Errorf("complete trains: %q, want nothing", got)
	}
}

func TestAlertLimit(t *testing.T) {
	src, dst := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("10.0.0.7")
	var frames []synth.Frame
	for i := 0; i < 50; i++ { // 50 teardrops in 5 s
		d := synth.Datagram{Src: src, Dst: dst, ID: uint32(i), Proto: 17, Payload: make([]byte, 64)}
		fr, _ := d.Frames([]synth.Piece{{Offset: 0, Len: 36, More: true}, {Offset: 24, Len: 4}}, fragEpoch.Add(time.Duration(i)*100*time.Millisecond), time.Microsecond)
		frames = append(frames, fr...)
	}
	cfg := DefaultFragOverlapConfig()
	e, evs := newFragEngine(t, NewFragOverlap(cfg))
	feed(e, frames)
	if len(*evs) != cfg.AlertsPerMinute {
		t.Errorf("%d alerts, want %d (the per-minute limit)", len(*evs), cfg.AlertsPerMinute)
	}
}

func TestFragConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"pod ok", DefaultPingOfDeathConfig().Validate(), ""},
		{"oversize ok", DefaultFragOversizeConfig().Validate(), ""},
		{"overlap ok", DefaultFragOverlapConfig().Validate(), ""},
		{"tiny ok", DefaultFragTinyConfig().Validate(), ""},
		{"flood ok", DefaultFragFloodConfig().Validate(), ""},
		{"pod limit", PingOfDeathConfig{AlertsPerMinute: 0, MaxTargets: 1}.Validate(), "rules.ping_of_death.alerts_per_minute"},
		{"tiny targets", FragTinyConfig{AlertsPerMinute: 1}.Validate(), "rules.frag_tiny.max_targets"},
		{"flood rate", FragFloodConfig{Window: time.Second, StopRatio: 0.5, MaxTargets: 1}.Validate(), "rules.frag_flood.trains_pps"},
		{"flood window", FragFloodConfig{TrainsPPS: 1, StopRatio: 0.5, MaxTargets: 1}.Validate(), "rules.frag_flood.window"},
		{"engine frag", func() error { c := detector.DefaultConfig(); c.Frag.MaxTrains = 0; return c.Validate() }(), "engine.frag.max_trains"},
	}
	for _, tc := range tests {
		if (tc.err == nil) != (tc.want == "") || (tc.err != nil && !strings.Contains(tc.err.Error(), tc.want)) {
			t.Errorf("%s: error %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}

func replayFile(t testing.TB, path string, rs ...detector.Rule) (*detector.Engine, []*detector.Event) {
	t.Helper()
	r, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e, evs := newFragEngine(t, rs...)
	for {
		fr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e.HandleFrame(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length)
	}
	e.Close(detector.EndInputEnd)
	return e, *evs
}

// TestFragCorpus replays the fragment captures of the shared corpus with
// every fragment rule and icmp_flood at their defaults and checks each
// file raises exactly the alerts PROVENANCE.md (and our decisions) say.
func TestFragCorpus(t *testing.T) {
	corpusDir := corpus.Dir(t)
	tests := []struct {
		file string
		want []string // alertLine @ RFC3339Nano time
	}{
		{"pod/ipv4_ping_of_death_66028B_mmt.pcap", []string{"ping_of_death start 192.168.0.55 size=66028 @ 2017-08-07T14:27:18.466953Z"}},
		{"pod/ipv6_oversize_echo_65543B_frag-15_thc.pcap", []string{"ping_of_death start 2001:db8:1::1 size=65543 @ 2018-09-11T12:36:51.342583Z"}},
		{"pod/ipv6_oversize_echo_65536B_frag-31_thc.pcap", []string{"ping_of_death start 2001:db8:1::1 size=65536 @ 2018-09-11T12:41:21.078564Z"}},
		{"pod/ipv6_oversize_echo_66928B_frag-16_thc.pcap", []string{"ping_of_death start 2001:db8:1::1 size=66928 @ 2018-09-11T12:37:04.033325Z"}},
		{"misc/fuzz_frag_offset_65480_tcpdump.pcap", []string{"frag_oversize start 0.172.128.5 size=98248 @ 2014-05-12T11:22:39.003332Z"}},
		{"frag/ipv4_teardrop_wireshark.pcap", []string{"frag_overlap start 129.111.30.27 size=56 @ 1999-09-09T04:11:26.616445Z"}},
		{"frag/ipv4_nestea_mmt.pcap", []string{"frag_overlap start 192.168.0.194 size=252 @ 2017-08-07T13:21:33.281846Z"}},
		{"frag/ipv4_udp_inconsistent_zeek-fragmented-1.pcap", []string{"frag_overlap start 164.1.123.61 size=324 @ 2000-02-19T19:23:55.156457Z"}},
		// Two byte-identical first fragments: a duplicate, not a conflict.
		{"frag/ipv4_udp_overlap_zeek-fragmented-2.pcap", nil},
		{"frag/ipv6_echo_overlap_frag-1_thc.pcap", []string{"frag_overlap start 2001:db8:1::1 size=808 @ 2018-09-11T12:33:05.233077Z"}},
		// Not garbage after all: 4 datagrams of 5,008 B, each in 313
		// in-order 16-byte fragments with the same id, each complete. Each
		// first fragment holds 16 of TCP's 20 header bytes: RFC 1858's
		// tiny fragment, once per train. No overlap, no oversize.
		{"frag/ipv4_tcp_fragment_garbage_ndpi.pcap", []string{
			"frag_tiny start 10.128.0.2 size=36 @ 2018-08-14T10:53:44.697756Z",
			"frag_tiny start 10.128.0.2 size=36 @ 2018-08-14T10:53:45.001741Z",
			"frag_tiny start 10.128.0.2 size=36 @ 2018-08-14T10:53:45.305644Z",
			"frag_tiny start 10.128.0.2 size=36 @ 2018-08-14T10:53:45.609837Z",
		}},
		{"benign/ping_fragmented_large_ppa.pcap", nil},
		{"benign/ping_fragmented_sanders.pcapng", nil},
		{"icmpv6/ping6_fragmented_sanders.pcapng", nil},
		{"misc/udp_dns_rrsig_amp_fragmented_stopddos.pcap", nil},
		// 39,812 MLD reports, each alone in a first fragment (M set, 14 B)
		// that never gets a second: a frag_flood as well as an icmp_flood.
		{"flood/ipv6_mld_report_frag_flood_denial6-6_thc.pcap", []string{
			"frag_flood start 2001:db8:1::1 @ 2018-09-28T10:15:10.642244Z",
			"icmp_flood start 2001:db8:1::1 @ 2018-09-28T10:15:10.760255Z",
			// Ends at the same time come out in rule order (the sensor's:
			// icmp_flood first), never in map order.
			"icmp_flood end 2001:db8:1::1 @ 2018-09-28T10:15:23.081423Z",
			"frag_flood end 2001:db8:1::1 @ 2018-09-28T10:15:23.081423Z",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			e, evs := replayFile(t, filepath.Join(corpusDir, tc.file), fragRules()...)
			var got []string
			for _, ev := range evs {
				got = append(got, alertLine(ev)+" @ "+ev.Time.UTC().Format(time.RFC3339Nano))
			}
			s := e.Stats()
			t.Logf("%d alerts %q; frag %+v", len(got), got, s.Frag)
			if !slices.Equal(got, tc.want) {
				t.Errorf("alerts\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// fragMix is a mix of fragment frames: a complete fragmented ping, a Ping
// of Death, a teardrop, and unfragmented echo requests.
func fragMix(t testing.TB) []synth.Frame {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.0.0.9")
	var out []synth.Frame
	add := func(d synth.Datagram, ps []synth.Piece) {
		fr, err := d.Frames(ps, fragEpoch, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fr...)
	}
	add(synth.PingTrain(a, b, 1, 8000, 1480))
	add(synth.PingTrain(a, b, 2, 66000, 1480))
	add(synth.Datagram{Src: a, Dst: b, ID: 3, Proto: 17, Payload: make([]byte, 64)}, []synth.Piece{{Offset: 0, Len: 36, More: true}, {Offset: 24, Len: 4}})
	add(synth.PingTrain(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), 4, 5000, 1232))
	echo, err := synth.EchoFrame(synth.Echo{Src: a, Dst: b, ID: 5})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, synth.Frame{Data: echo})
	return out
}

// TestFragmentPathNoAllocs: in steady state the engine decodes, tracks
// and runs every fragment rule on fragments — complete IPv4 and IPv6
// trains, and a never-completed train with a new id each round — without
// allocating. Alerts allocate, so the mix raises none.
func TestFragmentPathNoAllocs(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.0.0.9")
	var frames []synth.Frame
	for _, id := range []uint32{1, 2} {
		d, ps := synth.PingTrain(a, b, id, 8000, 1480)
		fr, _ := d.Frames(ps, fragEpoch, 0)
		frames = append(frames, fr...)
	}
	d, ps := synth.PingTrain(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), 4, 5000, 1232)
	fr, _ := d.Frames(ps, fragEpoch, 0)
	frames = append(frames, fr...)
	// an incomplete train with a new id each round
	open := synth.Datagram{Src: a, Dst: b, Proto: 17, Payload: make([]byte, 1480)}
	openFrame, _ := open.Frame(synth.Piece{Len: 1480, More: true})

	e, evs := newFragEngine(t, fragRules()...)
	now := fragEpoch
	round := 0
	step := func() {
		round++
		for _, f := range frames {
			now = now.Add(time.Millisecond) // 3 s of linger is 3,000 rounds: trains recycle
			e.HandleFrame(detector.LinkEthernet, f.Data, now, len(f.Data))
		}
		openFrame[14+4], openFrame[14+5] = byte(round>>8), byte(round)
		e.HandleFrame(detector.LinkEthernet, openFrame, now, len(openFrame))
	}
	for i := 0; i < 5000; i++ {
		step()
	}
	if a := testing.AllocsPerRun(2000, step); a != 0 {
		t.Errorf("fragment path allocates %.2f times per round of %d frames", a, len(frames)+1)
	}
	if len(*evs) != 0 {
		t.Errorf("benign mix raised %q", lines(*evs))
	}
}

func BenchmarkFragmentPath(b *testing.B) {
	frames := fragMix(b)
	e, _ := newFragEngine(b, fragRules()...)
	now := fragEpoch
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range frames {
			now = now.Add(time.Microsecond)
			e.HandleFrame(detector.LinkEthernet, f.Data, now, len(f.Data))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/frame")
}
