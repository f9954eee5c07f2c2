package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/creack/pty"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/internal/testenv"
)

// incident is the packet-time origin of the incident captures.
var incident = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// writeIncident writes what an analyst gets after an incident: a directory
// of captures from two sensors, rotated, one gzip'ed, one pcapng, one cut
// short, and a stray notes file. Over two minutes of packet time it holds
// a baseline of pings (IPv4 and IPv6), a spoofed echo flood against
// 10.0.0.5, an IPv6 echo flood against 2001:db8::80, a Smurf reflection
// against 192.0.2.10 and a Ping of Death against 10.0.0.9. It returns the
// directory's name, relative to dir.
func writeIncident(t testing.TB, dir string) string {
	t.Helper()
	must := func(f []synth.Frame, err error) []synth.Frame {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	at := func(s float64) time.Time { return incident.Add(time.Duration(s * float64(time.Second))) }
	root := filepath.Join(dir, "incident")
	for _, d := range []string{"gw1", "gw2"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a4, b4 := netip.MustParseAddr("10.0.0.20"), netip.MustParseAddr("10.0.0.1")
	a6, b6 := netip.MustParseAddr("2001:db8::20"), netip.MustParseAddr("2001:db8::1")
	pings4 := must(synth.Pings(a4, b4, at(0), time.Second, 120))
	pings6 := must(synth.Pings(a6, b6, at(0.5), time.Second, 120))
	flood4 := must(synth.Flood{Target: netip.MustParseAddr("10.0.0.5"), Spoofed: true, Seed: 7,
		Start: at(20), Rate: 3000, Count: 6000}.Frames())
	flood6 := must(synth.Flood{Target: netip.MustParseAddr("2001:db8::80"), Source: netip.MustParseAddr("2001:db8:bad::7"),
		Start: at(75), Rate: 1500, Count: 3000, PayloadLen: 1000}.Frames())
	smurf := must(synth.Smurf{Victim: netip.MustParseAddr("192.0.2.10"), Broadcast: netip.MustParseAddr("10.0.0.255"),
		Reflectors: synth.Hosts(netip.MustParsePrefix("10.0.0.0/24"), 40), Requests: true, Replies: true,
		Start: at(48), Rate: 50, Count: 150, ID: 0x5a5a}.Frames())
	d, pieces := synth.PingTrain(netip.MustParseAddr("203.0.113.66"), netip.MustParseAddr("10.0.0.9"), 0x1234, 65600, 1480)
	pod := must(d.Frames(pieces, at(100), time.Millisecond))

	// gw1: rotated every minute (tcpdump -G 60), the second file gzip'ed.
	gw1 := synth.Merge(pings4, flood4, pod)
	split := func(fs []synth.Frame, t time.Time) (before, after []synth.Frame) {
		for i, f := range fs {
			if !f.Time.Before(t) {
				return fs[:i], fs[i:]
			}
		}
		return fs, nil
	}
	first, second := split(gw1, at(60))
	writePcap(t, filepath.Join(root, "gw1", "gw1-0900.pcap"), first, false)
	writePcap(t, filepath.Join(root, "gw1", "gw1-0901.pcap.gz"), second, true)

	// gw2: a pcapng (tcpdump -C naming), and the next file of the set cut short.
	gw2 := synth.Merge(pings6, smurf, flood6)
	first, second = split(gw2, at(90))
	var ng []synth.NgPacket
	for _, f := range first {
		ng = append(ng, synth.NgPacket{Frame: f})
	}
	var buf bytes.Buffer
	if err := synth.WritePcapng(&buf, false, []synth.NgInterface{{LinkType: 1, TSResol: 9}}, ng); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "gw2", "gw2.pcapng"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := synth.WritePcap(&buf, second); err != nil {
		t.Fatal(err)
	}
	cut := buf.Bytes()[:buf.Len()*2/3+5]
	if err := os.WriteFile(filepath.Join(root, "gw2", "gw2.pcapng1"), cut, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "NOTES.txt"), []byte("captures from gw1 and gw2, 27 Nov 09:00-09:02 UTC\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return "incident"
}

// writePcap writes frames as a pcap file, gzip-compressed if gz.
func writePcap(t testing.TB, path string, frames []synth.Frame, gz bool) {
	t.Helper()
	var buf bytes.Buffer
	if gz {
		zw := gzip.NewWriter(&buf)
		if err := synth.WritePcap(zw, frames); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	} else if err := synth.WritePcap(&buf, frames); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replayElapsed matches the summary's wall-clock line.
var replayElapsed = regexp.MustCompile(`(?m)^replayed in .*\n`)

// normalizeSummaryJSON drops the wall-clock figures from a JSON summary.
func normalizeSummaryJSON(t *testing.T, data []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, data)
	}
	delete(m, "replay")
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out) + "\n"
}

// startEvents returns the EVE start events as "rule target started" lines.
func startEvents(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Timestamp string `json:"timestamp"`
			Alert     struct {
				Context struct {
					Attack struct {
						Rule    string `json:"rule"`
						Phase   string `json:"phase"`
						Target  string `json:"target"`
						Started string `json:"started"`
					} `json:"attack"`
				} `json:"context"`
			} `json:"alert"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		a := ev.Alert.Context.Attack
		if a.Phase != "start" {
			continue
		}
		started := a.Started
		if started == "" {
			started = ev.Timestamp
		}
		ts, err := time.Parse("2006-01-02T15:04:05.999999-0700", started)
		if err != nil {
			t.Fatalf("EVE time %q: %v", started, err)
		}
		got = append(got, a.Rule+" "+a.Target+" "+ts.UTC().Format(time.RFC3339Nano))
	}
	return got
}

// summaryAttacks returns a JSON summary's attacks as "rule target start"
// lines.
func summaryAttacks(t *testing.T, data []byte) []string {
	t.Helper()
	var s struct {
		Attacks []struct {
			Rule   string    `json:"rule"`
			Target string    `json:"target"`
			Start  time.Time `json:"start"`
		} `json:"attacks"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range s.Attacks {
		out = append(out, a.Rule+" "+a.Target+" "+a.Start.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)) // EVE has µs
	}
	return out
}

// TestReplayIncidentDirectory: a directory of captures (rotated, gzip'ed,
// pcapng, one damaged, one not a capture) replays in packet-time order;
// the damaged file is named once and costs exit 1; the summary (text and
// JSON, golden) holds every attack of the EVE output and the capture's
// figures.
func TestReplayIncidentDirectory(t *testing.T) {
	abs := func(name string) string { p, _ := filepath.Abs(filepath.Join("testdata", name)); return p }
	textGolden, jsonGolden := abs("incident.summary.golden"), abs("incident.summary.json.golden")
	dir := t.TempDir()
	t.Chdir(dir)
	name := writeIncident(t, dir)
	// One engine: the JSON summary's table sizes are summed over the
	// engines, whose number follows the machine's CPUs by default.
	code, out, stderr := icmpids(t, "replay", "--workers", "1", "--format", "eve", "--summary", "--summary-json", "summary.json", name)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a damaged file); stderr:\n%s", code, stderr)
	}
	if n := strings.Count(stderr, "level=error msg=\"incident/gw2/gw2.pcapng1: capture file is truncated"); n != 1 {
		t.Errorf("the damaged file is reported %d times on stderr, want once:\n%s", n, stderr)
	}
	if !strings.Contains(stderr, `level=warning msg="skipped: incident/NOTES.txt`) {
		t.Errorf("no warning for the skipped file:\n%s", stderr)
	}
	starts := startEvents(t, out)
	want := []string{
		"icmp_flood 10.0.0.5", "smurf 192.0.2.10", "icmp_flood 2001:db8::80", "ping_of_death 10.0.0.9",
	}
	if len(starts) != len(want) {
		t.Fatalf("EVE start events %v, want %v", starts, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(starts[i], w+" ") {
			t.Errorf("start event %d: %q, want %q", i, starts[i], w)
		}
	}
	data, err := os.ReadFile("summary.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := summaryAttacks(t, data); !reflect.DeepEqual(got, starts) {
		t.Errorf("summary attacks differ from the EVE start events:\n%s\nEVE:\n%s", strings.Join(got, "\n"), strings.Join(starts, "\n"))
	}
	text := stderr[strings.Index(stderr, "── icmpids replay summary"):]
	text = replayElapsed.ReplaceAllString(text, "")
	text = text[:strings.Index(text, "icmpids: 1 problem(s)")]
	golden(t, textGolden, text)
	golden(t, jsonGolden, normalizeSummaryJSON(t, data))
}

// TestReplayNarrowing: --since/--until and --bpf narrow a replay in packet
// time and by BPF; the summary says so.
func TestReplayNarrowing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	name := writeIncident(t, dir)
	cases := []struct {
		name string
		args []string
		want []string // rule target of the start events
	}{
		{"since until", []string{"--since", "2026-11-27T09:00:40Z", "--until", "2026-11-27T09:01:30+00:00"},
			[]string{"smurf 192.0.2.10", "icmp_flood 2001:db8::80"}},
		{"bpf ip6", []string{"--bpf", "ip6"}, []string{"icmp_flood 2001:db8::80"}},
		{"bpf host", []string{"--bpf", "host 10.0.0.5 or host 10.0.0.9"}, []string{"icmp_flood 10.0.0.5", "ping_of_death 10.0.0.9"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"replay", "--format", "eve", "--summary-json", "s.json"}, tc.args...)
			code, out, stderr := icmpids(t, append(args, name)...)
			if code != 1 { // the damaged file is still damaged
				t.Fatalf("exit %d; stderr:\n%s", code, stderr)
			}
			var got []string
			for _, s := range startEvents(t, out) {
				f := strings.Fields(s)
				got = append(got, f[0]+" "+f[1])
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("attacks %v, want %v", got, tc.want)
			}
			data, _ := os.ReadFile("s.json")
			var s struct {
				Capture struct {
					Filter struct {
						FilteredOut uint64 `json:"filtered_out"`
					} `json:"filter"`
				} `json:"capture"`
			}
			json.Unmarshal(data, &s)
			if s.Capture.Filter.FilteredOut == 0 {
				t.Errorf("summary does not count the packets left out: %s", data)
			}
		})
	}
}

// TestReplayBadFlags: a bad flag value is exit 2 with one line naming it,
// before any output.
func TestReplayBadFlags(t *testing.T) {
	demo := filepath.Join("testdata", "demo.pcap")
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		args     []string
		mentions []string
	}{
		{"bad bpf", []string{"--bpf", "icmp and and"}, []string{"--bpf", `"icmp and and"`}},
		{"bad since", []string{"--since", "yesterday"}, []string{"--since", "yesterday", "RFC 3339"}},
		{"bad until", []string{"--until", "2026-11-27 10:00"}, []string{"--until", "2026-11-27 10:00"}},
		{"until before since", []string{"--since", "2026-11-27T10:00:00Z", "--until", "2026-11-27T09:00:00Z"}, []string{"--until"}},
		{"json to stdout with alerts", []string{"--summary-json", "-"}, []string{"--summary-json", "--format none"}},
		{"report in a missing directory", []string{"--report", filepath.Join(dir, "no", "r.html")}, []string{"--report", "r.html"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"replay", "--format", "eve"}, tc.args...), demo)
			code, out, stderr := icmpids(t, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, stderr)
			}
			if out != "" {
				t.Errorf("stdout is not empty: %.100q", out)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 {
				t.Errorf("want one line on stderr, got:\n%s", stderr)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(stderr, m) {
					t.Errorf("stderr %q does not mention %q", stderr, m)
				}
			}
		})
	}
}

// TestReplaySummaryJSONToStdout: with --format none, "-" puts the JSON
// summary on stdout for a pipe into jq.
func TestReplaySummaryJSONToStdout(t *testing.T) {
	code, out, stderr := icmpids(t, "replay", "--format", "none", "--summary-json", "-", filepath.Join("testdata", "demo.pcap"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var s struct {
		Attacks []json.RawMessage `json:"attacks"`
		Capture struct {
			Packets uint64 `json:"packets"`
		} `json:"capture"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%.300s", err, out)
	}
	if len(s.Attacks) != 2 || s.Capture.Packets != 6240 {
		t.Fatalf("summary: %d attacks, %d packets", len(s.Attacks), s.Capture.Packets)
	}
}

// TestReplayProgress: under a pseudo-terminal the progress line appears
// (files, packets, packets/s) and so does the text summary; on a pipe
// neither does, and --quiet silences both on a terminal.
func TestReplayProgress(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	name := writeIncident(t, dir)

	onPTY := func(args ...string) string {
		t.Helper()
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pseudo-terminal: %v", err)
		}
		defer ptmx.Close()
		pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 160})
		var buf bytes.Buffer
		done := make(chan struct{})
		go func() {
			io.Copy(&buf, ptmx) // ends with EIO once tty is closed
			close(done)
		}()
		var out bytes.Buffer
		run(context.Background(), args, &out, tty)
		tty.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("pty reader did not finish")
		}
		return buf.String()
	}

	got := onPTY("replay", "--format", "none", name)
	for _, want := range []string{"files 0/4 done", "packets", "pkt/s", "icmpids replay summary", "4 attack(s)"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, got)
		}
	}
	if !strings.Contains(got, "\r") {
		t.Errorf("no progress line redrawn on the terminal:\n%q", got)
	}

	got = onPTY("replay", "--quiet", "--format", "none", name)
	for _, bad := range []string{"files 0/4 done", "pkt/s", "summary"} {
		if strings.Contains(got, bad) {
			t.Errorf("--quiet: terminal output has %q:\n%q", bad, got)
		}
	}

	_, _, stderr := icmpids(t, "replay", "--format", "none", name)
	for _, bad := range []string{"pkt/s", "files 0/4 done", "\r", "icmpids replay summary"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("pipe: stderr has %q:\n%q", bad, stderr)
		}
	}
	// --progress forces it on a pipe.
	_, _, stderr = icmpids(t, "replay", "--progress", "--format", "none", name)
	if !strings.Contains(stderr, "pkt/s") {
		t.Errorf("--progress on a pipe: no progress line:\n%q", stderr)
	}
}

// chromiumPath finds Debian's chromium (or another Chrome). Without one the
// test is skipped, except on CI (CI set), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium is not installed (apt-get install chromium)")
	return ""
}

// artifactDir is where tests leave files for a person to look at:
// $ICMPIDS_ARTIFACTS, or icmpids-artifacts in the temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ICMPIDS_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "icmpids-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReportInChromium opens the HTML report of the incident directory in
// headless Chromium, driven over the DevTools protocol: the page loads
// with no console error and no network request besides itself, its attack
// rows are the EVE output's attacks, every attack links to a span on the
// timeline, and a screenshot is left as an artifact (with -update, also as
// testdata/report.png for the README).
func TestReportInChromium(t *testing.T) {
	browser := chromiumPath(t)
	readme, _ := filepath.Abs(filepath.Join("testdata", "report.png"))
	dir := t.TempDir()
	t.Chdir(dir)
	name := writeIncident(t, dir)
	report := filepath.Join(dir, "incident.html")
	code, out, stderr := icmpids(t, "replay", "--format", "eve", "--report", report, name)
	if code != 1 { // the damaged file
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	eve := startEvents(t, out)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1200),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	var mu sync.Mutex
	var requests, problems []string
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == "error" || ev.Type == "warning" || ev.Type == "assert" {
				problems = append(problems, fmt.Sprintf("console.%s", ev.Type))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("%s %s: %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}))
	defer cancelTab()
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	if _, err := chromedp.Call(tab, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tab, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	url := "file://" + report
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	type row struct{ Rule, Target, Start, Span string }
	rows, err := chromedp.Run(tab, chromedp.Evaluate[[]row](`Array.from(document.querySelectorAll("tr.attack")).map(r => ({
		Rule: r.dataset.rule, Target: r.dataset.target, Start: r.dataset.start,
		Span: (document.getElementById(r.querySelector("td.id a").getAttribute("href").slice(1)) || {}).tagName || ""}))`))
	if err != nil {
		t.Fatal(err)
	}
	var dom []string
	for _, r := range rows {
		start, err := time.Parse(time.RFC3339Nano, r.Start)
		if err != nil {
			t.Fatalf("row start %q: %v", r.Start, err)
		}
		dom = append(dom, r.Rule+" "+r.Target+" "+start.Truncate(time.Microsecond).Format(time.RFC3339Nano))
		if r.Span != "g" {
			t.Errorf("attack %s %s links to no span on the timeline (got %q)", r.Rule, r.Target, r.Span)
		}
	}
	if !reflect.DeepEqual(dom, eve) {
		t.Errorf("attack rows in the DOM:\n%s\nEVE start events:\n%s", strings.Join(dom, "\n"), strings.Join(eve, "\n"))
	}
	counts, err := chromedp.Run(tab, chromedp.Evaluate[[]int](`[document.querySelectorAll("#chart-types g.span").length,
		document.querySelectorAll("#chart-types path.series").length, document.querySelectorAll("tr.file").length,
		document.scripts.length]`))
	if err != nil {
		t.Fatal(err)
	}
	if counts[0] != len(eve) || counts[1] < 4 || counts[2] != 5 || counts[3] != 0 {
		t.Errorf("spans, series, file rows, scripts = %v; want %d spans, 4+ series, 5 files, no script", counts, len(eve))
	}
	shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifactDir(t), "report.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the report: %s", path)
	if *update {
		if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 1270)); err != nil {
			t.Fatal(err)
		}
		top, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(readme, top, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, u := range requests {
		if u != url {
			t.Errorf("the report fetched %s", u)
		}
	}
	if len(problems) > 0 {
		t.Errorf("console/log problems:\n%s", strings.Join(problems, "\n"))
	}
}
