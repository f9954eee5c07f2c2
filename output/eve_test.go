package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
)

func encodeEVE(t testing.TB, ev *detector.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := NewEVE(&buf)
	e.Emit(ev)
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decodeJSON(t testing.TB, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	return m
}

// path walks nested objects: path(m, "alert", "context", "attack").
func path(m map[string]any, keys ...string) (any, bool) {
	var v any = m
	for _, k := range keys {
		o, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = o[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func TestEVEGolden(t *testing.T) {
	for _, c := range testEvents() {
		t.Run(c.name, func(t *testing.T) {
			out := encodeEVE(t, c.ev)
			if n := bytes.Count(out, []byte("\n")); n != 1 || out[len(out)-1] != '\n' {
				t.Fatalf("want exactly one line, got %d newlines:\n%s", n, out)
			}
			golden(t, "eve_"+c.name+".golden", out)
			validateLines(t, out)

			m := decodeJSON(t, out)
			ev := c.ev
			if got, want := m["timestamp"], ev.Time.UTC().Format("2006-01-02T15:04:05.000000+0000"); got != want {
				t.Errorf("timestamp = %v, want %v", got, want)
			}
			if _, ok := m["icmp_type"]; ok != ev.HasICMP {
				t.Errorf("icmp_type present = %v, want %v (HasICMP)", ok, ev.HasICMP)
			}
			if _, ok := m["icmp_code"]; ok != ev.HasICMP {
				t.Errorf("icmp_code present = %v, want %v (HasICMP)", ok, ev.HasICMP)
			}
			if got := m["proto"]; got != detector.ProtoName(ev.Proto) {
				t.Errorf("proto = %v, want %v", got, detector.ProtoName(ev.Proto))
			}
			attack, ok := path(m, "alert", "context", "attack")
			if !ok {
				t.Fatal("no alert.context.attack")
			}
			a := attack.(map[string]any)
			if a["rule"] != ev.Rule.Name || a["phase"] != ev.Phase.String() || a["target"] != ev.Target.String() {
				t.Errorf("rule/phase/target = %v/%v/%v", a["rule"], a["phase"], a["target"])
			}
			if _, ok := a["end_reason"]; ok != (ev.Phase == detector.PhaseEnd) {
				t.Errorf("end_reason present = %v in a %v event", ok, ev.Phase)
			}
			if _, ok := a["sources_estimated"]; ok != ev.SourcesEstimated {
				t.Errorf("sources_estimated present = %v, want %v", ok, ev.SourcesEstimated)
			}
			for _, k := range []string{"last_seen", "duration_s"} {
				if _, ok := a[k]; ok == ev.Rule.OneShot {
					t.Errorf("%s present = %v for OneShot = %v", k, ok, ev.Rule.OneShot)
				}
			}
			rated := ev.Window > 0 && !ev.Rule.OneShot
			for _, k := range []string{"pps", "bps", "peak_pps", "peak_bps", "window_s"} {
				if _, ok := a[k]; ok != rated {
					t.Errorf("%s present = %v, want %v (window %v, OneShot %v)", k, ok, rated, ev.Window, ev.Rule.OneShot)
				}
			}
			if got, _ := path(m, "alert", "source", "ip"); got != ev.Source.String() {
				t.Errorf("alert.source.ip = %v, want %v", got, ev.Source)
			}
			if got, _ := path(m, "alert", "target", "ip"); got != ev.Target.String() {
				t.Errorf("alert.target.ip = %v, want %v", got, ev.Target)
			}
		})
	}
}

// TestEVEContractExample checks that the contract's example alert is, member
// for member, part of what we write for the same event.
func TestEVEContractExample(t *testing.T) {
	const example = `{"timestamp":"2026-11-27T10:00:03.000120+0000","event_type":"alert",
 "src_ip":"198.51.100.7","dest_ip":"10.0.0.5","proto":"ICMP",
 "icmp_type":8,"icmp_code":0,
 "alert":{"action":"allowed","gid":1,"signature_id":9000001,"rev":1,
          "signature":"ICMP echo flood","category":"Attempted Denial of Service",
          "severity":2,
          "source":{"ip":"198.51.100.7"},"target":{"ip":"10.0.0.5"},
          "context":{"attack":{"rule":"icmp_flood","phase":"start","target":"10.0.0.5",
                               "sources":1,"packets":15000,"bytes":1260000,"pps":5000.0,
                               "window_s":3}}}}`
	ev := testEvents()[0].ev
	ev.Rule.Signature = "ICMP echo flood"
	ev.Window = 3 * time.Second
	out := encodeEVE(t, ev)
	validateLines(t, []byte(strings.ReplaceAll(example, "\n", "")+"\n"))
	validateLines(t, out)
	var want, got any
	if err := json.Unmarshal([]byte(example), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	var check func(p string, w, g any)
	check = func(p string, w, g any) {
		wm, ok := w.(map[string]any)
		if !ok {
			if w != g {
				t.Errorf("%s = %v, want %v", p, g, w)
			}
			return
		}
		gm, ok := g.(map[string]any)
		if !ok {
			t.Errorf("%s = %v, want an object", p, g)
			return
		}
		for k, wv := range wm {
			gv, ok := gm[k]
			if !ok {
				t.Errorf("%s.%s missing", p, k)
				continue
			}
			check(p+"."+k, wv, gv)
		}
	}
	check("$", want, got)
	// The contract's order of the leading members.
	for i, k := range []string{`"timestamp"`, `"event_type"`, `"src_ip"`, `"dest_ip"`, `"proto"`, `"icmp_type"`, `"icmp_code"`, `"alert"`} {
		if at := bytes.Index(out, []byte(k)); at < 0 || (i > 0 && at < bytes.Index(out, []byte(`"timestamp"`))) {
			t.Errorf("%s out of place in %s", k, out)
		}
	}
}

// TestEVESchemaRejects proves the validator can fail: broken variants of a
// valid event must not validate.
func TestEVESchemaRejects(t *testing.T) {
	good := bytes.TrimSpace(encodeEVE(t, testEvents()[0].ev))
	if err := validateEVE(t, good); err != nil {
		t.Fatalf("the unbroken event must validate: %v", err)
	}
	for _, c := range []struct{ name, old, new string }{
		{"timestamp with a space", `"2026-11-27T10:00:03.000120+0000"`, `"2026-11-27 10:00:03.000120+0000"`},
		{"timestamp with Z", `"2026-11-27T10:00:03.000120+0000"`, `"2026-11-27T10:00:03.000120Z"`},
		{"timestamp without fraction", `"2026-11-27T10:00:03.000120+0000"`, `"2026-11-27T10:00:03+0000"`},
		{"unknown top-level member", `"event_type":"alert",`, `"event_type":"alert","attack":{},`},
		{"our figures in alert.source", `"source":{"ip":"198.51.100.7"}`, `"source":{"ip":"198.51.100.7","packets":1}`},
		{"icmp_type as string", `"icmp_type":8`, `"icmp_type":"8"`},
		{"no event_type", `"event_type":"alert",`, ``},
		{"signature_id as string", `"signature_id":9000001`, `"signature_id":"9000001"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := bytes.Replace(good, []byte(c.old), []byte(c.new), 1)
			if bytes.Equal(bad, good) {
				t.Fatalf("%q not found in %s", c.old, good)
			}
			if err := validateEVE(t, bad); err == nil {
				t.Errorf("validated, want a schema error:\n%s", bad)
			}
		})
	}
}

func TestEVEStats(t *testing.T) {
	st := &StatsEvent{
		Time:   t0.Add(time.Minute + 250*time.Millisecond),
		Uptime: 61*time.Second + 900*time.Millisecond,
		Engine: detector.Stats{
			Frames: 120000, Bytes: 10080000, IPv4: 90000, IPv6: 29000, ICMP: 85000, ICMPv6: 28000,
			Fragments: 12, AttacksStarted: 3, AttacksEnded: 2,
		},
		Capture:       &CaptureStats{Packets: 120100, Drops: 100, IfDrops: 2},
		AlertsDropped: 4,
	}
	st.Engine.Decode[detector.ReasonTruncated] = 7
	st.Engine.Decode[detector.ReasonMalformedICMP] = 3
	st.Engine.Decode[detector.ReasonNotIP] = 1000 // not an error

	var buf bytes.Buffer
	e := NewEVE(&buf)
	e.EmitStats(st)
	st.Capture = nil // a capture file: no kernel counters
	st.Engine = detector.Stats{}
	e.EmitStats(st)
	if n := validateLines(t, buf.Bytes()); n != 2 {
		t.Fatalf("%d lines, want 2", n)
	}
	golden(t, "eve_stats.golden", buf.Bytes())
	m := decodeJSON(t, bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0])
	if v, _ := path(m, "stats", "decoder", "invalid"); v != json.Number("10") {
		t.Errorf("decoder.invalid = %v, want 10", v)
	}
	if v, _ := path(m, "stats", "detect", "alert_queue_overflow"); v != json.Number("4") {
		t.Errorf("detect.alert_queue_overflow = %v, want 4", v)
	}
}

func TestEVEEmitDoesNotAllocate(t *testing.T) {
	evs := testEvents()
	e := NewEVE(io.Discard)
	for _, i := range []int{0, 2, 5, 7} { // flood v4 start/end, v6 end, frag_oversize (proto 17)
		ev := evs[i].ev
		e.Emit(ev) // grow the buffers
		if n := testing.AllocsPerRun(100, func() { e.Emit(ev) }); n != 0 {
			t.Errorf("%s: Emit allocates %.0f times per event, want 0", evs[i].name, n)
		}
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestEVEWriteError(t *testing.T) {
	boom := errors.New("disk on fire")
	e := NewEVE(failWriter{boom})
	e.Emit(testEvents()[0].ev)
	e.Emit(testEvents()[1].ev)
	if err := e.Err(); !errors.Is(err, boom) {
		t.Errorf("Err() = %v, want it to wrap %v", err, boom)
	}
	if w, f := e.Counts(); w != 0 || f != 2 {
		t.Errorf("Counts() = %d written, %d failed; want 0, 2", w, f)
	}
}

func TestAppendEVE(t *testing.T) {
	ev := testEvents()[3].ev
	prefix := []byte("<14>1 - - - ")
	got := AppendEVE(prefix, ev, nil)
	if !bytes.HasPrefix(got, prefix) {
		t.Fatal("AppendEVE lost the prefix")
	}
	want := bytes.TrimSuffix(encodeEVE(t, ev), []byte("\n"))
	if !bytes.Equal(got[len(prefix):], want) {
		t.Errorf("AppendEVE = %s\nwant %s", got[len(prefix):], want)
	}
	st := AppendEVEStats(nil, &StatsEvent{Time: t0})
	validateLines(t, append(st, '\n'))
}

func TestAppendQuoted(t *testing.T) {
	for _, s := range []string{
		"", "plain", `q"uote`, `back\slash`, "nl\ncr\rtab\tnul\x00bell\x07del\x7f",
		"\u2028\u2029", "日本語", "bad\xff\xfeutf8", "\xe2\x82", "</script>&",
	} {
		got := appendQuoted(nil, s)
		if !json.Valid(got) {
			t.Errorf("appendQuoted(%q) = %s: not valid JSON", s, got)
			continue
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); back != want && back != strings.ReplaceAll(s, "\xff", "\uFFFD") {
			// ToValidUTF8 folds a run of bad bytes into one U+FFFD; we
			// replace each byte, as encoding/json does.
			ej, _ := json.Marshal(s)
			var ejBack string
			_ = json.Unmarshal(ej, &ejBack)
			if back != ejBack {
				t.Errorf("appendQuoted(%q) decodes to %q, want %q", s, back, ejBack)
			}
		}
	}
}

func FuzzAppendQuoted(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "\u2028", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendQuoted(nil, s)
		if !json.Valid(got) {
			t.Fatalf("appendQuoted(%q) = %s: not valid JSON", s, got)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		ej, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ej, &want)
		if back != want {
			t.Fatalf("appendQuoted(%q) decodes to %q, encoding/json's to %q", s, back, want)
		}
	})
}

func TestNumberFormats(t *testing.T) {
	for _, c := range []struct {
		f    func([]byte, float64) []byte
		v    float64
		want string
	}{
		{appendRate, 5000, "5000.0"},
		{appendRate, 1234.56, "1234.6"},
		{appendRate, math.NaN(), "null"},
		{appendRate, math.Inf(1), "null"},
		{appendFloat3, 3, "3.0"}, // a float stays a float (Elasticsearch maps the first value it sees)
		{appendFloat3, 0.1, "0.1"},
		{appendFloat3, 12.3456, "12.346"},
		{appendFloat3, -0.0001, "0.0"},
		{appendFloat3, 0, "0.0"},
		{appendFloat3, 100, "100.0"},
		{appendFloat3, math.Inf(-1), "null"},
	} {
		if got := string(c.f(nil, c.v)); got != c.want {
			t.Errorf("format(%v) = %s, want %s", c.v, got, c.want)
		}
	}
}

func TestEVEFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "eve.json")
	if err := os.WriteFile(p, []byte("{\"timestamp\":\"2026-11-27T09:00:00.000000+0000\",\"event_type\":\"stats\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenEVEFile(p)
	if err != nil {
		t.Fatal(err)
	}
	evs := testEvents()
	f.Emit(evs[0].ev)
	if b, _ := os.ReadFile(p); bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("the event reached the file before Flush: buffering expected")
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); bytes.Count(b, []byte("\n")) != 2 {
		t.Errorf("after Flush the file has %d lines, want 2 (appended to the old one)", bytes.Count(b, []byte("\n")))
	}

	// logrotate: rename, then Reopen; what was buffered goes to the old file.
	f.Emit(evs[1].ev)
	rotated := p + ".1"
	if err := os.Rename(p, rotated); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.Emit(evs[2].ev)
	f.EmitStats(&StatsEvent{Time: t0, Engine: detector.Stats{Frames: 1}})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	old, _ := os.ReadFile(rotated)
	cur, _ := os.ReadFile(p)
	if n := validateLines(t, old); n != 3 {
		t.Errorf("rotated file has %d lines, want 3", n)
	}
	if n := validateLines(t, cur); n != 2 {
		t.Errorf("new file has %d lines, want 2", n)
	}
	if !bytes.Contains(cur, []byte(`"phase":"end"`)) || !bytes.Contains(old, []byte(`"phase":"update"`)) {
		t.Errorf("events in the wrong file:\nold: %s\nnew: %s", old, cur)
	}
	if fi, err := os.Stat(p); err != nil {
		t.Fatal(err)
	} else if perm := fi.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("new file mode %v, want at most 0640", perm)
	}

	// After Close, events are counted as failed, not written.
	f.Emit(evs[0].ev)
	if _, failed := f.Counts(); failed != 1 {
		t.Errorf("failed writes after Close = %d, want 1", failed)
	}
	if err := f.Err(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Err() after Close = %v, want os.ErrClosed", err)
	}
	if err := f.Reopen(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Reopen after Close = %v, want os.ErrClosed", err)
	}
}

func TestEVEFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "eve.json")
	if _, err := OpenEVEFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("OpenEVEFile(%s) = %v, want an error naming the path", missing, err)
	}

	// Reopen failing keeps the old file.
	sub := filepath.Join(dir, "logs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(sub, "eve.json")
	f, err := OpenEVEFile(p)
	if err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(sub, moved); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Reopen with the directory gone = %v, want an error naming %s", err, p)
	}
	f.Emit(testEvents()[0].ev)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(moved, "eve.json"))
	if n := validateLines(t, b); n != 1 {
		t.Errorf("old file has %d lines after the failed Reopen, want 1", n)
	}
}
