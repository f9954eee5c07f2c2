package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTemplate parses the report's template at its first use, not when
// the program starts: every icmpids command links this package, and few
// write a report (the parse was ~2,500 allocations and ~3 M instructions
// of every start-up).
var htmlTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
		"count":    Count,
		"bytes":    Bytes,
		"percent":  Percent,
		"rate":     Rate,
		"dur":      Duration,
		"ts":       func(t time.Time) string { return t.UTC().Format(textTime) },
		"endts":    func(a, b time.Time) string { return lastTime(a.UTC(), b.UTC()) },
		"trimpath": func(err, path string) string { return strings.TrimPrefix(err, path+": ") },
		"rfc":      func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"pct":      func(share float64) string { return strconv.FormatFloat(math.Max(share*100, 0.5), 'f', 1, 64) },
		"addf":     func(a, b float64) float64 { return a + b },
		"subf":     func(a, b float64) float64 { return a - b },
		"divf":     func(a, b float64) float64 { return a / b },
		"u64":      func(v float64) uint64 { return uint64(max(v, 0)) },
		"u64i":     func(v int) uint64 { return uint64(max(v, 0)) },
		"u64s":     func(v int64) uint64 { return uint64(max(v, 0)) },
	}).Parse(htmlSource))
})

// ruleColors colours the attack spans by rule; rules not listed are grey.
var ruleColors = map[string]string{
	"icmp_flood":        "#e4572e",
	"smurf":             "#8e44ad",
	"ping_of_death":     "#f39c12",
	"frag_oversize":     "#a0522d",
	"frag_overlap":      "#d81b60",
	"frag_tiny":         "#7cb342",
	"frag_flood":        "#00897b",
	"blacknurse":        "#1e88e5",
	"icmp_redirect":     "#6d4c41",
	"icmp_sweep":        "#c0ca33",
	"icmp_tunnel":       "#5e35b1",
	"icmp_carpet_flood": "#b71c1c",
	"ra_flood":          "#00bcd4",
	"rogue_ra":          "#fdd835",
	"nd_flood":          "#2e7d32",
	"nd_spoof":          "#ec407a",
	"icmp_error_abuse":  "#263238",
}

func ruleColor(rule string) string {
	if c, ok := ruleColors[rule]; ok {
		return c
	}
	return "#757575"
}

// linePalette colours the series of a chart in order.
var linePalette = []string{
	"#1f6fb4", "#2a9d3a", "#d4a000", "#6a3d9a", "#17a2b8", "#c2185b",
	"#5d4037", "#607d8b", "#8bc34a", "#ff7043", "#3949ab", "#00acc1", "#9e9d24", "#795548",
}

// Chart geometry (SVG user units; the SVG scales to the page width).
const (
	chartW     = 1160
	chartH     = 270
	plotLeft   = 64
	plotRight  = 34
	plotTop    = 30
	plotBottom = 28
)

type htmlView struct {
	Tool      string
	Range     string
	Cards     []htmlCard
	Charts    []*htmlChart
	Rules     []htmlLegend
	Attacks   []htmlAttack
	S         *Summary
	TypeRows  []htmlTypeRow
	Decode    []htmlKV
	Damaged   int
	BucketNot string
	// timeLayout shows times of day, with the date when the capture spans
	// more than one day.
	timeLayout string
}

// TimeOf formats a time of the capture for the attack table.
func (v *htmlView) TimeOf(t time.Time) string { return t.UTC().Format(v.timeLayout) }

type htmlCard struct {
	Label, Value, Sub string
	Alert             bool
}

type htmlLegend struct {
	Label, Color, Sub string
}

type htmlKV struct {
	Key   string
	Value uint64
}

type htmlTypeRow struct {
	Label   string
	Family  string
	Type    uint8
	Packets uint64
	Share   float64
	Color   string
}

type htmlAttack struct {
	Attack
	Color string
	Open  bool
}

type htmlChart struct {
	ID, Title, Note string
	W, H            int
	PX, PY, PW, PH  float64
	Bottom          float64
	XTicks, YTicks  []htmlTick
	Spans           []htmlSpan
	Lines           []htmlLine
	Empty           string
	Link            bool // spans carry the ids the attack table links to
}

type htmlTick struct {
	Pos   float64
	Label string
	Minor bool
}

type htmlSpan struct {
	ID          int
	X, W        float64
	LabelY      float64
	Color       string
	Title       string
	Rule        string
	Target      string
	LabelInside bool
}

type htmlLine struct {
	Path, Color, Label string
	Total              uint64
}

// WriteHTML writes the summary as one self-contained HTML page: a timeline
// of ICMP packets/s by type and for the top destinations with the attacks
// drawn as spans, the attack table linked to the spans, and the capture's
// figures. The page has no script and fetches nothing.
func WriteHTML(w io.Writer, s *Summary) error {
	v := &htmlView{Tool: s.Tool, S: s, timeLayout: "15:04:05.000"}
	c := &s.Capture
	if c.First.Format(time.DateOnly) != c.Last.Format(time.DateOnly) {
		v.timeLayout = textTime
	}
	if !c.First.IsZero() {
		v.Range = fmt.Sprintf("%s → %s UTC (%s)", c.First.Format(textTime), lastTime(c.First, c.Last), Duration(c.DurationS))
	}
	attackCard := htmlCard{Label: "attacks", Value: strconv.Itoa(len(s.Attacks)), Alert: len(s.Attacks) > 0}
	if len(s.Attacks) > 0 {
		rules := map[string]int{}
		var order []string
		for _, a := range s.Attacks {
			if rules[a.Rule] == 0 {
				order = append(order, a.Rule)
			}
			rules[a.Rule]++
		}
		var parts []string
		for _, r := range order {
			parts = append(parts, fmt.Sprintf("%d %s", rules[r], r))
			v.Rules = append(v.Rules, htmlLegend{Label: r, Color: ruleColor(r)})
		}
		attackCard.Sub = strings.Join(parts, " · ")
	} else {
		attackCard.Sub = "none found"
	}
	files := fmt.Sprintf("%d read", c.FilesRead)
	if c.FilesDamaged > 0 {
		files += fmt.Sprintf(" · %d damaged", c.FilesDamaged)
	}
	if c.FilesSkipped > 0 {
		files += fmt.Sprintf(" · %d skipped", c.FilesSkipped)
	}
	v.Cards = []htmlCard{
		attackCard,
		{Label: "packets", Value: Count(c.Packets), Sub: Bytes(c.Bytes)},
		{Label: "ICMP share", Value: Percent(c.ICMPShare), Sub: fmt.Sprintf("%s ICMP · %s ICMPv6", Count(c.ICMP), Count(c.ICMPv6))},
		{Label: "fragments", Value: Count(c.Fragments)},
		{Label: "packet time", Value: Duration(c.DurationS), Sub: firstDay(c.First)},
		{Label: "files", Value: strconv.Itoa(len(c.Files)), Sub: files, Alert: c.FilesDamaged > 0},
	}
	for _, a := range s.Attacks {
		v.Attacks = append(v.Attacks, htmlAttack{Attack: a, Color: ruleColor(a.Rule), Open: a.EndReason == ""})
	}
	for _, f := range c.Files {
		if f.Status == "damaged" {
			v.Damaged++
		}
	}
	for r, n := range c.DecodeErrors {
		v.Decode = append(v.Decode, htmlKV{r, n})
	}
	slices.SortFunc(v.Decode, func(a, b htmlKV) int { return strings.Compare(a.Key, b.Key) })

	// Charts.
	var typeSeries, targetSeries []Series
	if tl := s.Timeline; tl != nil && tl.n > 0 {
		typeSeries = tl.TypeSeries()
		var prefer []netip.Addr
		for _, a := range s.Attacks {
			if !slices.Contains(prefer, a.Target) {
				prefer = append(prefer, a.Target)
			}
		}
		targetSeries = tl.TargetSeries(6, prefer)
		v.BucketNot = fmt.Sprintf("%s buckets", bucketName(tl.Width()))
	}
	colorOf := map[uint16]string{}
	for i, se := range typeSeries {
		colorOf[se.Key] = linePalette[i%len(linePalette)]
	}
	for _, t := range c.ICMPTypes {
		key := uint16(t.Type)
		if t.Family == "icmpv6" {
			key |= 1 << 8
		}
		col, ok := colorOf[key]
		if !ok {
			col = "#9e9e9e"
		}
		v.TypeRows = append(v.TypeRows, htmlTypeRow{Label: typeLabel(t.Family == "icmpv6", t.Type), Family: t.Family,
			Type: t.Type, Packets: t.Packets, Share: t.Share, Color: col})
	}
	v.Charts = append(v.Charts,
		buildChart("types", "ICMP packets/s by type", typeSeries, s, true),
		buildChart("targets", "ICMP packets/s to the top destinations", targetSeries, s, false))
	return htmlTemplate().Execute(w, v)
}

func firstDay(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return "from " + t.UTC().Format("2006-01-02 15:04:05")
}

func bucketName(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d-second", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d-minute", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%d-hour", int(d.Hours()))
	}
	return fmt.Sprintf("%d-day", int(d.Hours()/24))
}

// buildChart lays out one timeline: log-scale packets/s, one step line per
// series, the attacks as shaded spans.
func buildChart(id, title string, ss []Series, s *Summary, link bool) *htmlChart {
	ch := &htmlChart{ID: id, Title: title, W: chartW, H: chartH, Link: link,
		PX: plotLeft, PY: plotTop, PW: chartW - plotLeft - plotRight, PH: chartH - plotTop - plotBottom}
	ch.Bottom = ch.PY + ch.PH
	// Time range: the capture, widened to whole buckets.
	t0, t1 := s.Capture.First, s.Capture.Last
	for _, se := range ss {
		end := se.Start.Add(time.Duration(len(se.Counts)) * se.Width)
		if t0.IsZero() || se.Start.Before(t0) {
			t0 = se.Start
		}
		if end.After(t1) {
			t1 = end
		}
	}
	if t0.IsZero() {
		ch.Empty = "no packets"
		return ch
	}
	if !t1.After(t0) {
		t1 = t0.Add(time.Second)
	}
	span := t1.Sub(t0).Seconds()
	xOf := func(t time.Time) float64 { return ch.PX + t.Sub(t0).Seconds()/span*ch.PW }

	// Rates and the log scale.
	lo, hi := math.Inf(1), 0.0
	for _, se := range ss {
		w := se.Width.Seconds()
		for _, n := range se.Counts {
			if n > 0 {
				r := float64(n) / w
				lo, hi = math.Min(lo, r), math.Max(hi, r)
			}
		}
	}
	if hi == 0 {
		ch.Empty = "no ICMP packets"
		lo, hi = 1, 10
	}
	dlo := math.Floor(math.Log10(lo))
	if math.Log10(lo)-dlo < 0.3 {
		dlo-- // keep the quietest series off the axis
	}
	dhi := math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	yOf := func(r float64) float64 {
		if r <= 0 {
			return ch.Bottom
		}
		return ch.Bottom - (math.Log10(r)-dlo)/(dhi-dlo)*ch.PH
	}
	for d := dlo; d <= dhi; d++ {
		ch.YTicks = append(ch.YTicks, htmlTick{Pos: yOf(math.Pow(10, d)), Label: rateTick(math.Pow(10, d))})
		if d < dhi && dhi-dlo <= 4 {
			for _, m := range []float64{2, 5} {
				ch.YTicks = append(ch.YTicks, htmlTick{Pos: yOf(m * math.Pow(10, d)), Minor: true})
			}
		}
	}
	ch.XTicks = timeTicks(t0, t1, xOf)
	ch.Note = "log scale"

	for i, se := range ss {
		var b strings.Builder
		w := se.Width.Seconds()
		y := ch.Bottom
		fmt.Fprintf(&b, "M%.1f,%.1f", xOf(se.Start), y)
		for j, n := range se.Counts {
			x := xOf(se.Start.Add(time.Duration(j) * se.Width))
			ny := yOf(float64(n) / w)
			if ny != y {
				fmt.Fprintf(&b, "H%.1fV%.1f", x, ny)
				y = ny
			}
		}
		fmt.Fprintf(&b, "H%.1f", xOf(se.Start.Add(time.Duration(len(se.Counts))*se.Width)))
		if y != ch.Bottom {
			fmt.Fprintf(&b, "V%.1f", ch.Bottom)
		}
		ch.Lines = append(ch.Lines, htmlLine{Path: b.String(), Color: linePalette[i%len(linePalette)], Label: se.Label, Total: se.Total})
	}

	// Attack spans, their labels staggered in up to three rows.
	var rowEnd [3]float64
	for _, a := range s.Attacks {
		x0, x1 := xOf(a.Start), xOf(a.End)
		if x1-x0 < 4 {
			mid := (x0 + x1) / 2
			x0, x1 = mid-2, mid+2
		}
		row := 0
		for row < len(rowEnd)-1 && rowEnd[row] > x0 {
			row++
		}
		label := "#" + strconv.Itoa(a.ID)
		rowEnd[row] = x0 + 8*float64(len(label)) + 6
		ch.Spans = append(ch.Spans, htmlSpan{
			ID: a.ID, X: x0, W: x1 - x0, Color: ruleColor(a.Rule), Rule: a.Rule, Target: a.Target.String(),
			LabelY: ch.PY - 6 - 0*float64(row) + float64(row)*14,
			Title: fmt.Sprintf("#%d %s → %s\n%s – %s (%s)\n%s packets, peak %s pps, %s sources", a.ID, a.Rule, a.Target,
				a.Start.Format(textTime), lastTime(a.Start, a.End), Duration(a.DurationS), Count(a.Packets), Rate(a.PeakPPS), a.SourcesText()),
			LabelInside: row > 0,
		})
	}
	return ch
}

// rateTick labels a power of ten: 0.01, 0.1, 1, 10, 100, 1k, 10k, 1M.
func rateTick(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// tickSteps are the time axis steps, finest first.
var tickSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	48 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
}

// timeTicks places at most about 12 ticks on [t0, t1] at a round step.
func timeTicks(t0, t1 time.Time, xOf func(time.Time) float64) []htmlTick {
	span := t1.Sub(t0)
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if span/s <= 12 {
			step = s
			break
		}
	}
	layout := "15:04:05"
	switch {
	case span > 48*time.Hour:
		layout = "01-02 15:04"
	case step >= time.Minute:
		layout = "15:04"
	}
	var out []htmlTick
	for t := t0.UTC().Truncate(step); !t.After(t1); t = t.Add(step) {
		if t.Before(t0) {
			continue
		}
		out = append(out, htmlTick{Pos: xOf(t), Label: t.Format(layout)})
	}
	return out
}
