package report

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/icmpids/icmpids/detector"
)

// Timeline bounds, fixed so that a week-long capture costs what a minute
// does.
const (
	// MaxBuckets is the most time buckets a series holds. When packet time
	// runs past them, the bucket width steps up (1 s, 2 s, 10 s, 20 s, 1 min,
	// 2 min, 10 min, 20 min, 1 h, 2 h, 6 h, 12 h, 1 day, then doubling) and
	// the counts are merged into the wider buckets.
	MaxBuckets = 1200
	// maxTypeSeries is the most ICMP types charted one by one; further
	// types go to the "other ICMP" series.
	maxTypeSeries = 12
	// maxTargets is the size of the destination table (Space-Saving heavy
	// hitters): the top destinations are exact while at most this many
	// are active; beyond that a destination that entered late has lost
	// its earlier packets (its series is a lower bound).
	maxTargets = 16
)

// widths are the bucket widths in order; each is a multiple of the one
// before, so merging is exact.
var widths = []time.Duration{
	time.Second, 2 * time.Second, 10 * time.Second, 20 * time.Second,
	time.Minute, 2 * time.Minute, 10 * time.Minute, 20 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// Series kinds besides a single ICMP type.
const (
	seriesOtherICMP = 0x200 // ICMP types beyond maxTypeSeries, ICMP fragments without a header
	seriesFragments = 0x201 // fragments of other protocols
)

type series struct {
	key    uint16 // family<<8 | type, or a series* kind
	total  uint64
	counts []uint64
}

type target struct {
	addr   netip.Addr
	count  uint64 // Space-Saving count: an upper bound of its packets
	counts []uint64
}

// Timeline counts the packets the rules see (ICMP, ICMPv6, fragments) into
// time buckets, per ICMP type and per top destination. It is fed by the
// engine as an observer (it implements detector.Rule and never reports)
// and does not allocate per packet: series and targets are created when
// first met, up to fixed caps.
type Timeline struct {
	anchor  int64 // start of bucket 0, Unix ns, a multiple of the width
	width   int64 // bucket width, ns
	wi      int   // index in widths (past the end: doubling)
	n       int   // buckets in use
	types   []*series
	byType  [2][256]int16 // index+1 into types, 0 none
	targets []*target
	byAddr  map[netip.Addr]int
}

// NewTimeline returns an empty Timeline.
func NewTimeline() *Timeline {
	return &Timeline{width: int64(widths[0]), byAddr: make(map[netip.Addr]int, maxTargets)}
}

// Info implements detector.Rule; the timeline never reports.
func (t *Timeline) Info() detector.RuleInfo { return detector.RuleInfo{Name: "report.timeline"} }

// Tick implements detector.Rule.
func (t *Timeline) Tick(time.Time, detector.Reporter) {}

// Observe implements detector.Rule: it counts p.
func (t *Timeline) Observe(p *detector.Packet, _ detector.Reporter) {
	b := t.bucket(p.Time.UnixNano())
	var s *series
	switch {
	case p.HasICMP:
		fam := 0
		if p.IPv6 {
			fam = 1
		}
		i := t.byType[fam][p.ICMPType]
		if i == 0 {
			if len(t.types) < maxTypeSeries {
				t.types = append(t.types, &series{key: uint16(fam)<<8 | uint16(p.ICMPType), counts: make([]uint64, MaxBuckets)})
				i = int16(len(t.types))
				t.byType[fam][p.ICMPType] = i
			} else {
				i = t.kind(seriesOtherICMP)
			}
		}
		s = t.types[i-1]
	case p.IsICMP():
		s = t.types[t.kind(seriesOtherICMP)-1]
	default:
		s = t.types[t.kind(seriesFragments)-1]
	}
	s.counts[b]++
	s.total++
	t.countTarget(p.Dst, b)
}

// kind returns the index+1 of a series* kind, creating it.
func (t *Timeline) kind(k uint16) int16 {
	for i, s := range t.types {
		if s.key == k {
			return int16(i + 1)
		}
	}
	t.types = append(t.types, &series{key: k, counts: make([]uint64, MaxBuckets)})
	return int16(len(t.types))
}

// countTarget counts a packet to dst in bucket b (Space-Saving: a new
// destination takes the place of the least counted one once the table is
// full, inheriting its count as the bound of its error).
func (t *Timeline) countTarget(dst netip.Addr, b int) {
	if !dst.IsValid() {
		return
	}
	i, ok := t.byAddr[dst]
	if !ok {
		if len(t.targets) < maxTargets {
			t.targets = append(t.targets, &target{addr: dst, counts: make([]uint64, MaxBuckets)})
			i = len(t.targets) - 1
		} else {
			i = 0
			for j, tg := range t.targets {
				if tg.count < t.targets[i].count {
					i = j
				}
			}
			tg := t.targets[i]
			delete(t.byAddr, tg.addr)
			tg.addr = dst
			clear(tg.counts)
		}
		t.byAddr[dst] = i
	}
	tg := t.targets[i]
	tg.count++
	tg.counts[b]++
}

// bucket returns the bucket index of packet time ns, widening the buckets
// when ns lies past the last one.
func (t *Timeline) bucket(ns int64) int {
	if t.n == 0 {
		t.anchor = floorDiv(ns, t.width) * t.width
		t.n = 1
	}
	if ns < t.anchor {
		return 0 // before the first packet (a clock step back): clamp
	}
	for (ns-t.anchor)/t.width >= MaxBuckets {
		t.widen()
	}
	b := int((ns - t.anchor) / t.width)
	if b >= t.n {
		t.n = b + 1
	}
	return b
}

// widen steps the bucket width up and merges the counts.
func (t *Timeline) widen() {
	t.wi++
	var w int64
	if t.wi < len(widths) {
		w = int64(widths[t.wi])
	} else {
		w = 2 * t.width
	}
	anchor := floorDiv(t.anchor, w) * w
	remap := func(c []uint64) {
		for i := range t.n {
			if c[i] == 0 {
				continue
			}
			j := int((t.anchor + int64(i)*t.width - anchor) / w)
			v := c[i]
			c[i] = 0
			c[j] += v
		}
	}
	for _, s := range t.types {
		remap(s.counts)
	}
	for _, tg := range t.targets {
		remap(tg.counts)
	}
	t.n = int((t.anchor+int64(t.n-1)*t.width-anchor)/w) + 1
	t.anchor, t.width = anchor, w
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Width is the bucket width now in force.
func (t *Timeline) Width() time.Duration { return time.Duration(t.width) }

// Series is one charted series.
type Series struct {
	Label string
	// Key orders and colours the series: family<<8|type for an ICMP type.
	Key    uint16
	Total  uint64
	Start  time.Time     // time of Counts[0]
	Width  time.Duration // bucket width
	Counts []uint64
}

// TypeSeries returns the per-ICMP-type series, most packets first.
func (t *Timeline) TypeSeries() []Series {
	var out []Series
	for _, s := range t.types {
		label := ""
		switch s.key {
		case seriesOtherICMP:
			label = "other ICMP, later fragments"
		case seriesFragments:
			label = "fragments (not ICMP)"
		default:
			label = typeLabel(s.key>>8 == 1, uint8(s.key))
		}
		out = append(out, t.series(label, s.key, s.total, s.counts))
	}
	slices.SortStableFunc(out, func(a, b Series) int { return cmp.Compare(b.Total, a.Total) })
	return out
}

// TargetSeries returns the series of up to n destinations: those in
// prefer (attack targets) first, then the most counted.
func (t *Timeline) TargetSeries(n int, prefer []netip.Addr) []Series {
	tgs := slices.Clone(t.targets)
	rank := func(a netip.Addr) int {
		if i := slices.Index(prefer, a); i >= 0 {
			return i
		}
		return len(prefer)
	}
	slices.SortStableFunc(tgs, func(a, b *target) int {
		if c := cmp.Compare(rank(a.addr), rank(b.addr)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		return a.addr.Compare(b.addr)
	})
	var out []Series
	for _, tg := range tgs[:min(n, len(tgs))] {
		var total uint64
		for _, c := range tg.counts[:t.n] {
			total += c
		}
		out = append(out, t.series(tg.addr.String(), 0, total, tg.counts))
	}
	return out
}

func (t *Timeline) series(label string, key uint16, total uint64, counts []uint64) Series {
	return Series{Label: label, Key: key, Total: total, Start: time.Unix(0, t.anchor).UTC(),
		Width: time.Duration(t.width), Counts: slices.Clone(counts[:t.n])}
}
