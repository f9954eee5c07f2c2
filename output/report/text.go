package report

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// WriteText writes the summary for a person at a terminal: the capture's
// figures, then one line per attack.
func WriteText(w io.Writer, s *Summary) error {
	var b strings.Builder
	c := &s.Capture
	b.WriteString("── icmpids replay summary ──\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	files := fmt.Sprintf("%d read", c.FilesRead)
	if c.FilesDamaged > 0 {
		files += fmt.Sprintf(", %d damaged", c.FilesDamaged)
	}
	if c.FilesSkipped > 0 {
		files += fmt.Sprintf(", %d skipped (not captures)", c.FilesSkipped)
	}
	fmt.Fprintf(tw, "files\t%s\n", files)
	if !c.First.IsZero() {
		fmt.Fprintf(tw, "packet time\t%s → %s (%s)\n", c.First.Format(textTime), lastTime(c.First, c.Last), Duration(c.DurationS))
	}
	fmt.Fprintf(tw, "packets\t%s (%s) · ICMP %s, ICMPv6 %s (%s of all) · fragments %s\n",
		Count(c.Packets), Bytes(c.Bytes), Count(c.ICMP), Count(c.ICMPv6), Percent(c.ICMPShare), Count(c.Fragments))
	if f := c.Filter; f != nil {
		var parts []string
		if f.BPF != "" {
			parts = append(parts, fmt.Sprintf("bpf %q", f.BPF))
		}
		if !f.Since.IsZero() {
			parts = append(parts, "since "+f.Since.UTC().Format(time.RFC3339Nano))
		}
		if !f.Until.IsZero() {
			parts = append(parts, "until "+f.Until.UTC().Format(time.RFC3339Nano))
		}
		fmt.Fprintf(tw, "filter\t%s · %s packets left out\n", strings.Join(parts, ", "), Count(f.FilteredOut))
	}
	if len(c.ICMPTypes) > 0 {
		var parts []string
		for i, t := range c.ICMPTypes {
			if i == 6 {
				parts = append(parts, fmt.Sprintf("%d more", len(c.ICMPTypes)-i))
				break
			}
			name := t.Name
			if t.Family == "icmpv6" {
				name = "v6 " + name
			}
			parts = append(parts, fmt.Sprintf("%s %s", name, Percent(t.Share)))
		}
		fmt.Fprintf(tw, "ICMP types\t%s\n", strings.Join(parts, " · "))
	}
	decode := "none"
	if c.DecodeErrorsTotal > 0 {
		reasons := make([]string, 0, len(c.DecodeErrors))
		for r := range c.DecodeErrors {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		var parts []string
		for _, r := range reasons {
			parts = append(parts, fmt.Sprintf("%s %s", r, Count(c.DecodeErrors[r])))
		}
		decode = fmt.Sprintf("%s (%s)", Count(c.DecodeErrorsTotal), strings.Join(parts, ", "))
	}
	fmt.Fprintf(tw, "decode errors\t%s · not IP %s\n", decode, Count(c.NotIP))
	ev := "none"
	if c.Evicted > 0 || c.PendingEvicted > 0 || c.AttacksDropped > 0 {
		var parts []string
		for _, t := range c.Tables {
			if t.Evicted > 0 {
				parts = append(parts, fmt.Sprintf("%s %s", t.Name, Count(t.Evicted)))
			}
		}
		if c.PendingEvicted > 0 {
			parts = append(parts, "pending attacks "+Count(c.PendingEvicted))
		}
		if c.AttacksDropped > 0 {
			parts = append(parts, "attack hits dropped "+Count(c.AttacksDropped))
		}
		ev = strings.Join(parts, ", ")
	}
	fmt.Fprintf(tw, "evictions\t%s\n", ev)
	if r := s.Replay; r != nil {
		fmt.Fprintf(tw, "replayed in\t%s (%s packets/s)\n", Duration(r.ElapsedS), Count(uint64(r.PacketsPerSec)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range c.Files {
		if f.Status != "ok" {
			fmt.Fprintf(&b, "%s: %s\n", f.Status, f.Error)
		}
	}
	if len(s.Attacks) == 0 {
		b.WriteString("\nno attacks\n")
	} else {
		fmt.Fprintf(&b, "\n%d attack(s)\n", len(s.Attacks))
		if len(s.AttacksOmitted) > 0 {
			var parts []string
			for _, rule := range slices.Sorted(maps.Keys(s.AttacksOmitted)) {
				parts = append(parts, fmt.Sprintf("%s %d", rule, s.AttacksOmitted[rule]))
			}
			fmt.Fprintf(&b, "(and more not listed, past the first %d: %s)\n", MaxAttackRows, strings.Join(parts, ", "))
		}
		rows := [][]string{{"#", "rule", "target", "start (UTC)", "end", "duration", "packets", "bytes", "peak pps", "sources", "top sources"}}
		for _, a := range s.Attacks {
			rows = append(rows, []string{strconv.Itoa(a.ID), a.Rule, a.Target.String(), a.Start.Format(textTime),
				lastTime(a.Start, a.End), Duration(a.DurationS), Count(a.Packets), Bytes(a.Bytes), peak(a.PeakPPS),
				a.SourcesText(), a.TopText(3)})
		}
		writeTable(&b, rows, map[int]bool{0: true, 5: true, 6: true, 7: true, 8: true, 9: true})
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTable writes rows as columns two spaces apart, the columns in right
// right-aligned, the last column unpadded.
func writeTable(b *strings.Builder, rows [][]string, right map[int]bool) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			switch {
			case i == len(r)-1:
				b.WriteString(c)
			case right[i]:
				b.WriteString(pad + c + "  ")
			default:
				b.WriteString(c + pad + "  ")
			}
		}
		b.WriteByte('\n')
	}
}

// peak is a peak rate, "-" for a one-shot alert (no rate).
func peak(pps float64) string {
	if pps == 0 {
		return "-"
	}
	return Rate(pps)
}

// textTime is the summary's time layout (always UTC).
const textTime = "2006-01-02 15:04:05.000"

// lastTime formats end, leaving out the date when it is start's.
func lastTime(start, end time.Time) string {
	if start.Format(time.DateOnly) == end.Format(time.DateOnly) {
		return end.Format("15:04:05.000")
	}
	return end.Format(textTime)
}

// SourcesText is the attack's distinct sources, "~" marking an estimate,
// and its reflectors when the rule counts them.
func (a *Attack) SourcesText() string {
	s := Count(a.Sources)
	if a.SourcesEstimated {
		s = "~" + s
	}
	if a.Reflectors != nil {
		s += fmt.Sprintf(" (%s reflectors)", Count(*a.Reflectors))
	}
	return s
}

// TopText lists up to n top sources with their packets.
func (a *Attack) TopText(n int) string {
	var parts []string
	for i, s := range a.TopSources {
		if i == n {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", s.IP, Count(s.Packets)))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// Count formats n with thousands separators: 1,234,567.
func Count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// Rate formats a packet rate: 2,500 or 0.5.
func Rate(v float64) string {
	if v >= 10 || v == 0 {
		return Count(uint64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// Bytes formats a byte count in SI units: 392 kB, 1.2 MB.
func Bytes(n uint64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, exp := float64(n), 0
	for v >= unit && exp < 5 {
		v /= unit
		exp++
	}
	prefix := "kMGTP"[exp-1 : exp]
	if v >= 100 {
		return fmt.Sprintf("%.0f %sB", v, prefix)
	}
	return fmt.Sprintf("%.1f %sB", v, prefix)
}

// Percent formats a share (0..1) as a percentage.
func Percent(share float64) string {
	p := share * 100
	switch {
	case p == 0:
		return "0 %"
	case p == 100:
		return "100 %"
	case p < 0.1:
		return "<0.1 %"
	case p >= 99.95 && p < 100:
		return ">99.9 %"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + " %"
}

// Duration formats seconds: 1.6 s, 2 min 5 s, 1 h 2 min.
func Duration(sec float64) string {
	switch {
	case sec < 1:
		return strconv.FormatFloat(sec*1000, 'f', 0, 64) + " ms"
	case sec < 10:
		return strconv.FormatFloat(sec, 'f', 1, 64) + " s"
	case sec < 60:
		return strconv.FormatFloat(sec, 'f', 0, 64) + " s"
	}
	d := time.Duration(math.Round(sec)) * time.Second
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%d h %d min", h, m)
	case s > 0:
		return fmt.Sprintf("%d min %d s", m, s)
	}
	return fmt.Sprintf("%d min", m)
}
