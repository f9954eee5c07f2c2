// Package report turns a replay into what an analyst reads: a summary of
// every attack and of the capture itself (as text for a terminal and as
// JSON for scripts), and one self-contained HTML report with a timeline.
//
// The pieces plug into the pipeline without touching the hot path: a
// Collector is a detector.Sink that folds start, update and end events
// into one Attack each; a Timeline is an observer the engine calls with
// every packet its rules see, counting them into a fixed number of time
// buckets per ICMP type and per top destination. Build assembles the
// Summary from them and the engine's figures.
//
// The HTML report is rendered in Go (html/template, inline SVG): it holds
// no script, loads no font, stylesheet or image, and declares a Content
// Security Policy that forbids fetching anything, so it opens the same
// offline, from a mail attachment or an evidence archive, years later.
package report

import (
	"cmp"
	"encoding/json"
	"io"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/icmpids/icmpids/detector"
)

// Summary is everything a replay found: the attacks and the capture's own
// figures. Its JSON form (WriteJSON) is a stable interface for scripts:
// fields are only ever added.
type Summary struct {
	// Tool is the program and version that wrote the summary.
	Tool    string   `json:"tool"`
	Capture Capture  `json:"capture"`
	Attacks []Attack `json:"attacks"`
	// AttacksOmitted counts the attacks past MaxAttackRows, by rule: they
	// were alerted on but are not listed (omitted when none).
	AttacksOmitted map[string]uint64 `json:"attacks_omitted,omitempty"`
	// Replay holds the wall-clock figures of the run (omitted when zero).
	Replay *Replay `json:"replay,omitempty"`
	// Timeline feeds the HTML report's charts; it is not part of the JSON.
	Timeline *Timeline `json:"-"`
}

// Replay is how the run went in wall-clock time.
type Replay struct {
	ElapsedS      float64 `json:"elapsed_s"`
	PacketsPerSec float64 `json:"packets_per_s"`
}

// Capture is the capture's own figures.
type Capture struct {
	Files        []File `json:"files"`
	FilesRead    int    `json:"files_read"`
	FilesDamaged int    `json:"files_damaged"`
	FilesSkipped int    `json:"files_skipped"`
	// First and Last are the packet times of the first and last frame
	// replayed; DurationS the span between them.
	First     time.Time `json:"first_packet"`
	Last      time.Time `json:"last_packet"`
	DurationS float64   `json:"duration_s"`
	// Filter is what narrowed the replay (nil when nothing did).
	Filter *Filter `json:"filter,omitempty"`
	// Packets and Bytes are the frames replayed and their wire bytes.
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	IPv4    uint64 `json:"ipv4"`
	IPv6    uint64 `json:"ipv6"`
	ICMP    uint64 `json:"icmp"`
	ICMPv6  uint64 `json:"icmpv6"`
	// ICMPShare is (ICMP + ICMPv6) / Packets.
	ICMPShare float64 `json:"icmp_share"`
	// ICMPTypes lists the ICMP messages by type, most frequent first;
	// Share is of all ICMP and ICMPv6 messages with a decoded header.
	ICMPTypes []TypeCount `json:"icmp_types"`
	Fragments uint64      `json:"fragments"`
	// NotIP counts frames without IP (ARP, LLDP, ...): not errors.
	NotIP uint64 `json:"not_ip"`
	// DecodeErrors counts frames that failed to decode, by reason.
	DecodeErrors      map[string]uint64 `json:"decode_errors"`
	DecodeErrorsTotal uint64            `json:"decode_errors_total"`
	// Tables lists the bounded state tables; Evicted sums their evictions.
	Tables         []Table `json:"tables"`
	Evicted        uint64  `json:"evicted"`
	PendingEvicted uint64  `json:"pending_attacks_evicted"`
	AttacksDropped uint64  `json:"attacks_dropped"`
}

// File is one input file.
type File struct {
	Path string `json:"path"`
	// Status is "ok", "damaged" or "skipped" (found in a directory, not a
	// capture).
	Status  string    `json:"status"`
	Error   string    `json:"error,omitempty"`
	Packets uint64    `json:"packets"`
	Size    int64     `json:"size"` // bytes on disk, -1 unknown (stdin)
	First   time.Time `json:"first_packet,omitzero"`
	Last    time.Time `json:"last_packet,omitzero"`
}

// Filter is what narrowed the replay.
type Filter struct {
	BPF         string    `json:"bpf,omitempty"`
	Since       time.Time `json:"since,omitzero"`
	Until       time.Time `json:"until,omitzero"`
	FilteredOut uint64    `json:"filtered_out"`
}

// TypeCount is one ICMP type and its messages.
type TypeCount struct {
	Family  string  `json:"family"` // "icmp" or "icmpv6"
	Type    uint8   `json:"type"`
	Name    string  `json:"name"`
	Packets uint64  `json:"packets"`
	Share   float64 `json:"share"`
}

// Table is one bounded state table.
type Table struct {
	Name    string `json:"name"`
	Len     int    `json:"len"`
	Cap     int    `json:"cap"`
	Evicted uint64 `json:"evicted"`
}

// Attack is one attack, from its start event to its end event.
type Attack struct {
	// ID numbers the attacks from 1 in order of their start.
	ID          int        `json:"id"`
	Rule        string     `json:"rule"`
	SignatureID int        `json:"signature_id"`
	Signature   string     `json:"signature"`
	Severity    int        `json:"severity"`
	Target      netip.Addr `json:"target"`
	Start       time.Time  `json:"start"`
	End         time.Time  `json:"end"`
	DurationS   float64    `json:"duration_s"`
	Packets     uint64     `json:"packets"`
	Bytes       uint64     `json:"bytes"`
	PeakPPS     float64    `json:"peak_pps"`
	PeakBPS     float64    `json:"peak_bps"`
	// Sources counts distinct sources (for a Smurf: the reflectors, see
	// Reflectors); SourcesEstimated says it is a HyperLogLog estimate.
	Sources          uint64   `json:"sources"`
	SourcesEstimated bool     `json:"sources_estimated"`
	Reflectors       *uint64  `json:"reflectors,omitempty"`
	TopSources       []Source `json:"top_sources"`
	// EndReason says how the attack ended: "quiet", "input_end", ...;
	// "one_shot" for a single-alert rule.
	EndReason string `json:"end_reason"`
	// Context is the rule's own context from the last event.
	Context map[string]any `json:"context,omitempty"`

	events int // events folded in
	open   bool
}

// Source is one top source and its packets.
type Source struct {
	IP      netip.Addr `json:"ip"`
	Packets uint64     `json:"packets"`
}

// MaxAttackRows caps the attacks a Collector lists: a hostile capture can
// raise an alert for each of millions of spoofed targets, and the summary
// must stay bounded. Attacks past it are counted by rule (Omitted).
const MaxAttackRows = 10000

// Collector is a detector.Sink that folds the events of each attack into
// one Attack. It copies what it keeps: the events stay the sender's. It
// lists at most MaxAttackRows attacks and counts the rest.
type Collector struct {
	attacks []Attack
	open    map[attackKey]int
	omitted map[string]uint64
}

type attackKey struct {
	rule   string
	target netip.Addr
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{open: map[attackKey]int{}}
}

// Emit implements detector.Sink.
func (c *Collector) Emit(ev *detector.Event) {
	k := attackKey{ev.Rule.Name, ev.Target}
	i, ok := c.open[k]
	if !ok || ev.Phase == detector.PhaseStart {
		if len(c.attacks) >= MaxAttackRows {
			if ev.Phase == detector.PhaseStart {
				if c.omitted == nil {
					c.omitted = map[string]uint64{}
				}
				c.omitted[ev.Rule.Name]++
			}
			delete(c.open, k) // its later events have no row to fold into
			return
		}
		c.attacks = append(c.attacks, Attack{
			ID:          len(c.attacks) + 1,
			Rule:        ev.Rule.Name,
			SignatureID: ev.Rule.SignatureID,
			Signature:   ev.Rule.Signature,
			Severity:    ev.Rule.Severity,
			Target:      ev.Target,
			open:        true,
		})
		i = len(c.attacks) - 1
		c.open[k] = i
	}
	a := &c.attacks[i]
	a.events++
	a.Start = ev.Started.UTC()
	if ev.Started.IsZero() {
		a.Start = ev.Time.UTC()
	}
	a.End = ev.LastSeen.UTC()
	if a.End.Before(a.Start) {
		a.End = a.Start
	}
	a.DurationS = round(a.End.Sub(a.Start).Seconds(), 6)
	a.Packets = max(a.Packets, ev.Packets)
	a.Bytes = max(a.Bytes, ev.Bytes)
	a.PeakPPS = max(a.PeakPPS, round(ev.PeakPPS, 3), round(ev.PPS, 3))
	a.PeakBPS = max(a.PeakBPS, round(ev.PeakBPS, 3), round(ev.BPS, 3))
	a.Sources = max(a.Sources, ev.Sources)
	a.SourcesEstimated = ev.SourcesEstimated
	if len(ev.TopSources) > 0 {
		a.TopSources = a.TopSources[:0]
		for _, s := range ev.TopSources {
			a.TopSources = append(a.TopSources, Source{s.Addr, s.Packets})
		}
	}
	if len(ev.Extra) > 0 {
		a.Context = make(map[string]any, len(ev.Extra))
		for k, v := range ev.Extra {
			a.Context[k] = v
		}
		if r, ok := asUint(ev.Extra["reflectors"]); ok {
			a.Reflectors = &r
		}
	}
	switch {
	case ev.Rule.OneShot:
		a.EndReason = "one_shot"
		a.open = false
		delete(c.open, k)
	case ev.Phase == detector.PhaseEnd:
		a.EndReason = ev.EndReason
		a.open = false
		delete(c.open, k)
	}
}

// Omitted returns how many attacks past MaxAttackRows were not listed, by
// rule (nil when none).
func (c *Collector) Omitted() map[string]uint64 { return c.omitted }

// Attacks returns the attacks in order of their start, those still open
// included (EndReason "" until their end event).
func (c *Collector) Attacks() []Attack {
	out := slices.Clone(c.attacks)
	for i := range out {
		if out[i].TopSources == nil {
			out[i].TopSources = []Source{}
		}
	}
	return out
}

func asUint(v any) (uint64, bool) {
	switch n := v.(type) {
	case int:
		return uint64(max(n, 0)), true
	case int64:
		return uint64(max(n, 0)), true
	case uint64:
		return n, true
	case uint32:
		return uint64(n), true
	case float64:
		return uint64(max(n, 0)), true
	}
	return 0, false
}

// round rounds v to digits decimals.
func round(v float64, digits int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow10(digits)
	return math.Round(v*p) / p
}

// Inputs is what Build needs besides the attacks.
type Inputs struct {
	Tool   string
	Stats  detector.Stats
	Files  []File
	Filter *Filter
	// First and Last are the packet times of the first and last frame
	// replayed.
	First, Last time.Time
	Elapsed     time.Duration
}

// Build assembles the Summary from the engine's figures, the files, the
// collected attacks and the timeline (which may be nil).
func Build(in Inputs, attacks []Attack, tl *Timeline) *Summary {
	st := &in.Stats
	s := &Summary{Tool: in.Tool, Attacks: attacks, Timeline: tl}
	if s.Attacks == nil {
		s.Attacks = []Attack{}
	}
	c := &s.Capture
	c.Files = in.Files
	if c.Files == nil {
		c.Files = []File{}
	}
	for _, f := range c.Files {
		switch f.Status {
		case "ok":
			c.FilesRead++
		case "damaged":
			c.FilesRead++
			c.FilesDamaged++
		case "skipped":
			c.FilesSkipped++
		}
	}
	c.First, c.Last = in.First.UTC(), in.Last.UTC()
	if !c.First.IsZero() {
		c.DurationS = round(c.Last.Sub(c.First).Seconds(), 6)
	}
	c.Filter = in.Filter
	c.Packets, c.Bytes = st.Frames, st.Bytes
	c.IPv4, c.IPv6, c.ICMP, c.ICMPv6 = st.IPv4, st.IPv6, st.ICMP, st.ICMPv6
	if st.Frames > 0 {
		c.ICMPShare = round(float64(st.ICMP+st.ICMPv6)/float64(st.Frames), 4)
	}
	var typed uint64
	for t := range 256 {
		typed += st.ICMPv4Types[t] + st.ICMPv6Types[t]
	}
	c.ICMPTypes = []TypeCount{}
	for _, v6 := range []bool{false, true} {
		counts := &st.ICMPv4Types
		if v6 {
			counts = &st.ICMPv6Types
		}
		for t, n := range counts {
			if n == 0 {
				continue
			}
			c.ICMPTypes = append(c.ICMPTypes, TypeCount{Family: familyName(v6), Type: uint8(t),
				Name: TypeName(v6, uint8(t)), Packets: n, Share: round(float64(n)/float64(typed), 4)})
		}
	}
	slices.SortStableFunc(c.ICMPTypes, func(a, b TypeCount) int { return cmp.Compare(b.Packets, a.Packets) })
	c.Fragments = st.Fragments
	c.NotIP = st.Decode[detector.ReasonNotIP]
	c.DecodeErrors = map[string]uint64{}
	for r := detector.ReasonUnsupportedLink; r < detector.NumReasons; r++ {
		if n := st.Decode[r]; n > 0 {
			c.DecodeErrors[r.String()] = n
		}
	}
	c.DecodeErrorsTotal = st.DecodeErrors()
	c.Tables = []Table{}
	for _, t := range st.Tables {
		c.Tables = append(c.Tables, Table{t.Name, t.Len, t.Cap, t.Evicted})
		c.Evicted += t.Evicted
	}
	c.PendingEvicted, c.AttacksDropped = st.PendingEvicted, st.AttacksDropped
	if in.Elapsed > 0 {
		s.Replay = &Replay{ElapsedS: round(in.Elapsed.Seconds(), 3)}
		s.Replay.PacketsPerSec = round(float64(st.Frames)/in.Elapsed.Seconds(), 0)
	}
	return s
}

// WriteJSON writes the summary as indented JSON.
func WriteJSON(w io.Writer, s *Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}
