package main

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/rules"
)

// TestRunReportsEveryRule replays a small flood and checks the table: one
// row per rule (as rules.Names lists them) and the summary rows, each with
// a figure per capture. Figures are timings and not checked.
func TestRunReportsEveryRule(t *testing.T) {
	frames, err := synth.Flood{Target: netip.MustParseAddr("10.0.0.5"), Spoofed: true, Seed: 1,
		Start: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), Rate: 10000, Count: 2000}.Frames()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for _, n := range []string{"a.pcap", "b.pcap"} {
		p := filepath.Join(dir, n)
		if err := synth.WritePcapFile(p, frames); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var out bytes.Buffer
	if err := run(&out, 1, 0, false, paths); err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && !strings.HasPrefix(l, "#") {
			rows[strings.Join(f[:len(f)-2], " ")] = len(f)
		}
	}
	want := append(rules.Names(), "rule", "sum of the above", "all rules", "base (no rule)", "engine, all rules")
	for _, w := range want {
		if _, ok := rows[w]; !ok {
			t.Errorf("no row %q in\n%s", w, out.String())
		}
	}
	if len(rows) != len(want) {
		t.Errorf("%d rows, want %d:\n%s", len(rows), len(want), out.String())
	}
}

// TestRunRejectsAnEmptyCapture: a capture without frames is an error
// naming it, not a division by zero.
func TestRunRejectsAnEmptyCapture(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty.pcap")
	if err := synth.WritePcapFile(p, nil); err != nil {
		t.Fatal(err)
	}
	err := run(new(bytes.Buffer), 1, 0, true, []string{p})
	if err == nil || !strings.Contains(err.Error(), "empty.pcap") {
		t.Fatalf("err %v, want one naming empty.pcap", err)
	}
}
