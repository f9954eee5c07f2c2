package report

import (
	"bytes"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
)

var epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func echo(t time.Time, dst netip.Addr, v6 bool, typ uint8) *detector.Packet {
	p := &detector.Packet{Time: t, Dst: dst, IPv6: v6, HasICMP: true, ICMPType: typ, Proto: detector.ProtoICMPv4}
	if v6 {
		p.Proto = detector.ProtoICMPv6
	}
	return p
}

func sum(c []uint64) (n uint64) {
	for _, v := range c {
		n += v
	}
	return n
}

// TestTimelineWidens: packet time past the last bucket widens the buckets
// step by step; no packet is lost and the series stay bounded.
func TestTimelineWidens(t *testing.T) {
	tl := NewTimeline()
	dst := netip.MustParseAddr("10.0.0.5")
	var sent uint64
	// One packet a second for three hours, then 100 in the last second.
	for s := 0; s < 3*3600; s += 1 {
		tl.Observe(echo(epoch.Add(time.Duration(s)*time.Second+500*time.Millisecond), dst, false, 8), detector.Reporter{})
		sent++
	}
	for range 100 {
		tl.Observe(echo(epoch.Add(3*time.Hour-time.Millisecond), dst, false, 8), detector.Reporter{})
		sent++
	}
	if w := tl.Width(); w != 10*time.Second {
		t.Fatalf("width %v after 3 h, want 10s (1,200 buckets of 10 s cover 3 h 20 min)", w)
	}
	ss := tl.TypeSeries()
	if len(ss) != 1 || ss[0].Label != "echo request" || ss[0].Total != sent || sum(ss[0].Counts) != sent {
		t.Fatalf("series %+v, want one echo request series of %d", ss, sent)
	}
	if n := len(ss[0].Counts); n > MaxBuckets || n != 1080 {
		t.Fatalf("%d buckets, want 1080", n)
	}
	if c := ss[0].Counts[0]; c != 10 {
		t.Fatalf("first 10-s bucket holds %d, want 10", c)
	}
	if c := ss[0].Counts[len(ss[0].Counts)-1]; c != 110 {
		t.Fatalf("last bucket holds %d, want 110", c)
	}
	if !ss[0].Start.Equal(epoch) {
		t.Fatalf("series start %v, want %v", ss[0].Start, epoch)
	}
	ts := tl.TargetSeries(5, nil)
	if len(ts) != 1 || ts[0].Total != sent {
		t.Fatalf("target series %+v", ts)
	}
}

// TestTimelineTargets: the table of destinations is bounded; a heavy
// destination that arrives after many light ones still makes the top.
func TestTimelineTargets(t *testing.T) {
	tl := NewTimeline()
	for i := range 200 {
		tl.Observe(echo(epoch.Add(time.Duration(i)*time.Millisecond), netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), false, 8), detector.Reporter{})
	}
	victim := netip.MustParseAddr("192.0.2.10")
	for i := range 1000 {
		tl.Observe(echo(epoch.Add(time.Second+time.Duration(i)*time.Millisecond), victim, true, 129), detector.Reporter{})
	}
	if n := len(tl.targets); n != maxTargets {
		t.Fatalf("%d targets held, want the cap %d", n, maxTargets)
	}
	ts := tl.TargetSeries(3, nil)
	if ts[0].Label != victim.String() || ts[0].Total != 1000 {
		t.Fatalf("top target %s (%d), want %s (1000)", ts[0].Label, ts[0].Total, victim)
	}
	// Preferred (attack) targets come first.
	pref := netip.AddrFrom4([4]byte{10, 1, 0, 199})
	if ts := tl.TargetSeries(2, []netip.Addr{pref}); ts[0].Label != pref.String() {
		t.Fatalf("preferred target not first: %v", ts[0].Label)
	}
}

// TestTimelineObserveDoesNotAllocate: counting a packet allocates nothing
// once its series and destination exist.
func TestTimelineObserveDoesNotAllocate(t *testing.T) {
	tl := NewTimeline()
	dsts := []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("2001:db8::5")}
	ts := epoch
	feed := func() {
		for i, d := range dsts {
			ts = ts.Add(time.Millisecond)
			tl.Observe(echo(ts, d, i == 1, 8), detector.Reporter{})
		}
	}
	feed()
	p := echo(ts, dsts[0], false, 8)
	allocs := testing.AllocsPerRun(1000, func() {
		p.Time = p.Time.Add(time.Millisecond)
		tl.Observe(p, detector.Reporter{})
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocations per packet, want 0", allocs)
	}
}

// TestCollector folds start, update and end events into one attack each,
// and a later start on the same target into a new one.
func TestCollector(t *testing.T) {
	c := NewCollector()
	flood := detector.RuleInfo{Name: "icmp_flood", SignatureID: 9000001, Signature: "ICMP flood"}
	pod := detector.RuleInfo{Name: "ping_of_death", OneShot: true}
	v := netip.MustParseAddr("10.0.0.5")
	ev := func(r detector.RuleInfo, ph detector.Phase, at, started time.Duration, pkts uint64, pps float64) *detector.Event {
		return &detector.Event{Rule: r, Phase: ph, Target: v, Time: epoch.Add(at), Started: epoch.Add(started),
			LastSeen: epoch.Add(at), Packets: pkts, PPS: pps, PeakPPS: pps, Sources: 3, SourcesEstimated: true,
			TopSources: []detector.SourceCount{{Addr: netip.MustParseAddr("198.51.100.7"), Packets: pkts / 2}}}
	}
	c.Emit(ev(flood, detector.PhaseStart, time.Second, 0, 1000, 1000))
	c.Emit(ev(pod, detector.PhaseStart, 2*time.Second, 2*time.Second, 1, 0))
	c.Emit(ev(flood, detector.PhaseUpdate, 11*time.Second, 0, 20000, 3000))
	end := ev(flood, detector.PhaseEnd, 15*time.Second, 0, 25000, 0)
	end.PeakPPS, end.EndReason = 3000, detector.EndQuiet
	c.Emit(end)
	c.Emit(ev(flood, detector.PhaseStart, 60*time.Second, 59*time.Second, 1000, 1000))
	as := c.Attacks()
	if len(as) != 3 {
		t.Fatalf("%d attacks, want 3: %+v", len(as), as)
	}
	a := as[0]
	if a.ID != 1 || a.Rule != "icmp_flood" || a.Packets != 25000 || a.PeakPPS != 3000 || a.EndReason != "quiet" ||
		a.DurationS != 15 || !a.Start.Equal(epoch) || !a.SourcesEstimated || len(a.TopSources) != 1 {
		t.Errorf("first attack %+v", a)
	}
	if as[1].Rule != "ping_of_death" || as[1].EndReason != "one_shot" || as[1].DurationS != 0 {
		t.Errorf("one-shot attack %+v", as[1])
	}
	if as[2].ID != 3 || as[2].EndReason != "" || !as[2].Start.Equal(epoch.Add(59*time.Second)) {
		t.Errorf("second flood %+v", as[2])
	}
}

// TestHTMLIsSelfContained: the page references nothing outside itself.
func TestHTMLIsSelfContained(t *testing.T) {
	tl := NewTimeline()
	c := NewCollector()
	v := netip.MustParseAddr("10.0.0.5")
	for i := range 5000 {
		tl.Observe(echo(epoch.Add(time.Duration(i)*time.Millisecond), v, false, 8), detector.Reporter{})
	}
	c.Emit(&detector.Event{Rule: detector.RuleInfo{Name: "icmp_flood"}, Phase: detector.PhaseStart, Target: v,
		Time: epoch.Add(time.Second), Started: epoch, LastSeen: epoch.Add(time.Second), Packets: 1000, PPS: 1000})
	var st detector.Stats
	st.Frames, st.ICMP, st.IPv4 = 5000, 5000, 5000
	st.ICMPv4Types[8] = 5000
	s := Build(Inputs{Tool: "icmpids test", Stats: st, First: epoch, Last: epoch.Add(5 * time.Second),
		Files: []File{{Path: "a <b>.pcap", Status: "ok", Packets: 5000}}}, c.Attacks(), tl)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, s); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script", "http://", "https://", "@import", "url(", "<link", "<img", "<iframe", "<object"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, want := range []string{
		`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`,
		`id="span-1"`, `href="#span-1"`, `id="attack-1"`, `a &lt;b&gt;.pcap`, "<svg", "echo request",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := len(regexp.MustCompile(`<tr class="attack"`).FindAllString(page, -1)); n != 1 {
		t.Errorf("%d attack rows, want 1", n)
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Count(0), "0"}, {Count(999), "999"}, {Count(1000), "1,000"}, {Count(1234567), "1,234,567"},
		{Bytes(999), "999 B"}, {Bytes(392000), "392 kB"}, {Bytes(3_200_000), "3.2 MB"},
		{Percent(1), "100 %"}, {Percent(0.0004), "<0.1 %"}, {Percent(0.4021), "40.2 %"},
		{Duration(0.0123), "12 ms"}, {Duration(1.8), "1.8 s"}, {Duration(119), "1 min 59 s"}, {Duration(7322), "2 h 2 min"},
		{Rate(2500.4), "2,500"}, {Rate(0.5), "0.5"},
		{TypeName(false, 8), "echo request"}, {TypeName(true, 135), "neighbor solicitation"}, {TypeName(false, 77), "type 77"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestCollectorIsBounded: a hostile capture alerting on more targets than
// MaxAttackRows keeps the list at the cap and counts the rest by rule.
func TestCollectorIsBounded(t *testing.T) {
	c := NewCollector()
	info := detector.RuleInfo{Name: "frag_tiny", SignatureID: 9000005, OneShot: true}
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for i := 0; i < MaxAttackRows+250; i++ {
		c.Emit(&detector.Event{Time: t0, Rule: info, Phase: detector.PhaseStart,
			Target: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Packets: 1})
	}
	if n := len(c.Attacks()); n != MaxAttackRows {
		t.Fatalf("%d attacks listed, want %d", n, MaxAttackRows)
	}
	if got := c.Omitted()["frag_tiny"]; got != 250 {
		t.Fatalf("omitted %d, want 250", got)
	}
	if len(c.open) != 0 {
		t.Fatalf("%d one-shot attacks left open", len(c.open))
	}
}
