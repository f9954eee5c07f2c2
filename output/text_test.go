package output

import (
	"bytes"
	"strings"
	"testing"

	"github.com/icmpids/icmpids/detector"
)

func TestTextGolden(t *testing.T) {
	var all bytes.Buffer
	for _, c := range testEvents() {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			NewText(&buf).Emit(c.ev)
			out := buf.Bytes()
			if n := bytes.Count(out, []byte("\n")); n != 1 || out[len(out)-1] != '\n' {
				t.Fatalf("want exactly one line, got:\n%s", out)
			}
			wantPrefix := c.ev.Time.UTC().Format("2006-01-02T15:04:05.000Z") + " ALERT " + c.ev.Rule.Name + " " + c.ev.Phase.String() + " target=" + c.ev.Target.String()
			if !strings.HasPrefix(string(out), wantPrefix) {
				t.Errorf("line %q does not start with %q", out, wantPrefix)
			}
			if c.ev.SourcesEstimated != bytes.Contains(out, []byte(" sources=~")) {
				t.Errorf("estimate mark wrong (estimated=%v): %s", c.ev.SourcesEstimated, out)
			}
			if c.ev.Phase == detector.PhaseEnd {
				for _, k := range []string{" duration=", " packets=", " bytes=", " peak_pps=", " top=", " reason="} {
					if !bytes.Contains(out, []byte(k)) {
						t.Errorf("end line lacks %q: %s", k, out)
					}
				}
			}
			all.Write(out)
		})
	}
	golden(t, "text_events.golden", all.Bytes())
}

func TestTextQuoting(t *testing.T) {
	for in, want := range map[string]string{
		"plain":     "plain",
		"two words": `"two words"`,
		"a=b":       `"a=b"`,
		"":          `""`,
		"nl\n":      `"nl\n"`,
		"ünï":       `"ünï"`,
	} {
		if got := string(appendTextString(nil, in)); got != want {
			t.Errorf("appendTextString(%q) = %s, want %s", in, got, want)
		}
	}
	for v, want := range map[float64]string{0: "0", 999: "999", 1e3: "1.0k", 40e6: "40.0M", 3.36e6: "3.4M", 2.5e9: "2.5G"} {
		if got := string(appendBits(nil, v)); got != want {
			t.Errorf("appendBits(%v) = %s, want %s", v, got, want)
		}
	}
}
