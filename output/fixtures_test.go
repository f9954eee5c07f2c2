package output

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// t0 is the fixed epoch of the test events.
var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

var floodInfo = detector.RuleInfo{
	Name: "icmp_flood", SignatureID: 9000001, Rev: 1, Signature: "ICMP flood",
	Category: "Attempted Denial of Service", Severity: 2,
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func floodExtra(trigger string, echo, anyPPS float64) map[string]any {
	return map[string]any{"trigger": trigger, "echo_pps": echo, "any_icmp_pps": anyPPS}
}

// eventCase is one named test event; its goldens are
// testdata/{eve,text}_<name>.golden.
type eventCase struct {
	name string
	ev   *detector.Event
}

// testEvents returns the events the golden tests encode: icmp_flood's
// lifecycle over IPv4 (exact sources) and IPv6 (estimated sources), one-shot
// alerts with and without an ICMP header, and awkward Extra values.
func testEvents() []eventCase {
	v4start := t0.Add(3*time.Second + 120*time.Microsecond)
	v6start := t0.Add(5*time.Second + 999999*time.Nanosecond)
	return []eventCase{
		{"flood_v4_start", &detector.Event{
			Time: v4start, Rule: floodInfo, Phase: detector.PhaseStart,
			Target: addr("10.0.0.5"), Src: addr("198.51.100.7"), Dst: addr("10.0.0.5"),
			Proto: detector.ProtoICMPv4, HasICMP: true, ICMPType: 8, ICMPCode: 0,
			Source:  addr("198.51.100.7"),
			Started: t0.Add(2 * time.Second), LastSeen: v4start,
			Packets: 15000, Bytes: 1260000, PPS: 5000, BPS: 3.36e6, PeakPPS: 5000, PeakBPS: 3.36e6,
			Window: time.Second, Threshold: 1000, Sources: 1,
			TopSources: []detector.SourceCount{{Addr: addr("198.51.100.7"), Packets: 15000}},
			ICMPTypes:  []detector.TypeCount{{Type: 8, Code: 0, Packets: 15000}},
			Extra:      floodExtra("echo_request_rate", 5000, 5000),
		}},
		{"flood_v4_update", &detector.Event{
			Time: t0.Add(13 * time.Second), Rule: floodInfo, Phase: detector.PhaseUpdate,
			Target: addr("10.0.0.5"), Src: addr("203.0.113.9"), Dst: addr("10.0.0.5"),
			Proto: detector.ProtoICMPv4, HasICMP: true, ICMPType: 0, ICMPCode: 0,
			Source:  addr("198.51.100.7"),
			Started: t0.Add(2 * time.Second), LastSeen: t0.Add(13 * time.Second),
			Packets: 61234, Bytes: 5143656, PPS: 4321.06, BPS: 2903752.3, PeakPPS: 5120.44, PeakBPS: 3440935.68,
			Window: time.Second, Threshold: 2000, Sources: 3,
			TopSources: []detector.SourceCount{
				{Addr: addr("198.51.100.7"), Packets: 50000},
				{Addr: addr("203.0.113.9"), Packets: 10000},
				{Addr: addr("192.0.2.1"), Packets: 1234},
			},
			ICMPTypes: []detector.TypeCount{{Type: 8, Code: 0, Packets: 51234}, {Type: 0, Code: 0, Packets: 10000}},
			Extra:     floodExtra("any_icmp_rate", 1100.25, 4321.06),
		}},
		{"flood_v4_end", &detector.Event{
			Time: t0.Add(33*time.Second + 400*time.Millisecond), Rule: floodInfo, Phase: detector.PhaseEnd,
			Target: addr("10.0.0.5"), Src: addr("203.0.113.9"), Dst: addr("10.0.0.5"),
			Proto: detector.ProtoICMPv4, HasICMP: true, ICMPType: 8, ICMPCode: 0,
			Source:  addr("198.51.100.7"),
			Started: t0.Add(2 * time.Second), LastSeen: t0.Add(23*time.Second + 400*time.Millisecond),
			Packets: 90001, Bytes: 7560084, PeakPPS: 5120.44, PeakBPS: 3440935.68,
			Window: time.Second, Threshold: 1000, Sources: 3,
			TopSources: []detector.SourceCount{
				{Addr: addr("198.51.100.7"), Packets: 70000},
				{Addr: addr("203.0.113.9"), Packets: 18767},
				{Addr: addr("192.0.2.1"), Packets: 1234},
			},
			ICMPTypes: []detector.TypeCount{{Type: 8, Code: 0, Packets: 80001}, {Type: 0, Code: 0, Packets: 10000}},
			EndReason: detector.EndQuiet,
			Extra:     floodExtra("echo_request_rate", 0, 0),
		}},
		{"flood_v6_start", &detector.Event{
			Time: v6start, Rule: floodInfo, Phase: detector.PhaseStart,
			Target: addr("2001:db8:1::1"), Src: addr("2001:db8:bad::2"), Dst: addr("2001:db8:1::1"),
			Proto: detector.ProtoICMPv6, HasICMP: true, ICMPType: 128, ICMPCode: 0,
			Source:  addr("2001:db8:bad::2"),
			Started: t0.Add(5 * time.Second), LastSeen: v6start,
			Packets: 1001, Bytes: 118118, PPS: 1001, BPS: 944944, PeakPPS: 1001, PeakBPS: 944944,
			Window: time.Second, Threshold: 1000, Sources: 998, SourcesEstimated: true,
			TopSources: []detector.SourceCount{
				{Addr: addr("2001:db8:bad::2"), Packets: 3},
				{Addr: addr("2001:db8:bad::1f"), Packets: 2},
			},
			ICMPTypes: []detector.TypeCount{{Type: 128, Code: 0, Packets: 1001}},
			Extra:     floodExtra("echo_request_rate", 1001, 1001),
		}},
		{"flood_v6_update", &detector.Event{
			Time: t0.Add(15*time.Second + 999999*time.Nanosecond), Rule: floodInfo, Phase: detector.PhaseUpdate,
			Target: addr("2001:db8:1::1"), Src: addr("2001:db8:bad::77"), Dst: addr("2001:db8:1::1"),
			Proto: detector.ProtoICMPv6, HasICMP: true, ICMPType: 128, ICMPCode: 0,
			Source:  addr("2001:db8:bad::2"),
			Started: t0.Add(5 * time.Second), LastSeen: t0.Add(15*time.Second + 999999*time.Nanosecond),
			Packets: 20999, Bytes: 2477882, PPS: 1999.9, BPS: 1887905.6, PeakPPS: 2000.5, PeakBPS: 1888472,
			Window: time.Second, Threshold: 1000, Sources: 20120, SourcesEstimated: true,
			TopSources: []detector.SourceCount{
				{Addr: addr("2001:db8:bad::2"), Packets: 9},
				{Addr: addr("2001:db8:bad::1f"), Packets: 7},
				{Addr: addr("2001:db8:bad::77"), Packets: 4},
			},
			ICMPTypes: []detector.TypeCount{{Type: 128, Code: 0, Packets: 20999}},
			Extra:     floodExtra("echo_request_rate", 1999.9, 1999.9),
		}},
		{"flood_v6_end", &detector.Event{
			Time: t0.Add(31 * time.Second), Rule: floodInfo, Phase: detector.PhaseEnd,
			Target: addr("2001:db8:1::1"), Src: addr("2001:db8:bad::77"), Dst: addr("2001:db8:1::1"),
			Proto: detector.ProtoICMPv6, HasICMP: true, ICMPType: 128, ICMPCode: 0,
			Source:  addr("2001:db8:bad::2"),
			Started: t0.Add(5 * time.Second), LastSeen: t0.Add(21 * time.Second),
			Packets: 31000, Bytes: 3658000, PeakPPS: 2000.5, PeakBPS: 1888472,
			Window: time.Second, Threshold: 1000, Sources: 29876, SourcesEstimated: true,
			TopSources: []detector.SourceCount{
				{Addr: addr("2001:db8:bad::2"), Packets: 12},
				{Addr: addr("2001:db8:bad::1f"), Packets: 9},
			},
			ICMPTypes: []detector.TypeCount{{Type: 128, Code: 0, Packets: 31000}},
			EndReason: detector.EndInputEnd,
		}},
		{"ping_of_death", &detector.Event{
			Time: t0.Add(7 * time.Second), Phase: detector.PhaseStart,
			Rule: detector.RuleInfo{Name: "ping_of_death", SignatureID: 9000002, Rev: 1,
				Signature: "ICMP Ping of Death (oversized reassembly)", Category: "Attempted Denial of Service",
				Severity: 1, OneShot: true},
			Target: addr("10.0.0.9"), Src: addr("198.51.100.66"), Dst: addr("10.0.0.9"),
			Proto:   detector.ProtoICMPv4, // last fragment: no ICMP header
			Source:  addr("198.51.100.66"),
			Started: t0.Add(7 * time.Second), LastSeen: t0.Add(7 * time.Second),
			Packets: 1, Bytes: 1514, Sources: 1,
			Extra: map[string]any{"reassembled_size": 65538, "fragments": 45, "frag_id": uint32(0xbeef)},
		}},
		{"frag_oversize_udp", &detector.Event{
			Time: t0.Add(9*time.Second + 5*time.Millisecond), Phase: detector.PhaseStart,
			Rule: detector.RuleInfo{Name: "frag_oversize", SignatureID: 9000003, Rev: 2,
				Signature: "Oversized IP fragment reassembly", Category: "Attempted Denial of Service",
				Severity: 2, OneShot: true},
			Target: addr("2001:db8:1::9"), Src: addr("2001:db8:bad::66"), Dst: addr("2001:db8:1::9"),
			Proto: 17, Source: addr("2001:db8:bad::66"),
			Started: t0.Add(9*time.Second + 5*time.Millisecond), LastSeen: t0.Add(9*time.Second + 5*time.Millisecond),
			Packets: 1, Bytes: 1294, Sources: 1,
			Extra: map[string]any{"reassembled_size": 70000, "proto": "UDP"},
		}},
		{"ping_of_death_in_gre_vlan", &detector.Event{
			Time: t0.Add(7 * time.Second), Phase: detector.PhaseStart,
			Rule: detector.RuleInfo{Name: "ping_of_death", SignatureID: 9000002, Rev: 1,
				Signature: "ICMP Ping of Death", Category: "Attempted Denial of Service", Severity: 1, OneShot: true},
			Target: addr("10.0.0.9"), Src: addr("198.51.100.66"), Dst: addr("10.0.0.9"),
			Proto: detector.ProtoICMPv4, Source: addr("198.51.100.66"),
			Started: t0.Add(7 * time.Second), LastSeen: t0.Add(7 * time.Second),
			Packets: 1, Bytes: 1552, Sources: 1,
			VLANs:  []uint16{100, 200},
			Tunnel: detector.Tunnel{Src: addr("192.0.2.100"), Dst: addr("192.0.2.200"), Proto: 47, Depth: 1},
			Extra:  map[string]any{"reassembled_size": 66000},
		}},
		{"extra_values", &detector.Event{
			Time: t0.Add(11 * time.Second), Phase: detector.PhaseStart,
			Rule: detector.RuleInfo{Name: "smurf", SignatureID: 9000007, Rev: 1,
				Signature: "Smurf \"amplification\"\tattack", Category: "Attempted Denial of Service",
				Severity: 2},
			Target: addr("10.0.0.5"), Src: addr("10.0.0.5"), Dst: addr("10.0.0.255"),
			Proto: 132, Source: addr("10.0.0.5"),
			Started: t0.Add(10 * time.Second), LastSeen: t0.Add(11 * time.Second),
			Packets: 12, Bytes: 1008, Sources: 1,
			Extra: map[string]any{
				"broadcasts":  []netip.Addr{addr("10.0.0.255"), addr("255.255.255.255")},
				"rule":        "collides with our own key",
				"note":        "quote\" backslash\\ newline\n bad\xffutf8 \u2028",
				"nan":         math.NaN(),
				"ratio":       2.0 / 3,
				"reply_pps":   12.345,
				"first_reply": t0.Add(10*time.Second + time.Millisecond),
				"hold":        1500 * time.Millisecond,
				"nested":      map[string]any{"b": []any{1, "x", nil, true}, "a": uint8(7)},
				"pair":        struct{ A, B int }{1, 2},
				"none":        nil,
				"neg":         -0.0001,
			},
		}},
	}
}

// repoRoot is the directory holding go.mod, found from the package dir.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// eveSchema compiles Suricata's EVE schema, the copy in testdata/ (see
// testdata/README.md). A missing schema fails the test: skipping would let
// the contract go unchecked.
func eveSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	path := filepath.Join("testdata", "suricata-eve.schema.json")
	schemaOnce.Do(func() {
		schema, schemaErr = jsonschema.NewCompiler().Compile(path)
	})
	if schemaErr != nil {
		t.Fatalf("compiling EVE schema %s: %v", path, schemaErr)
	}
	return schema
}

// validateEVE checks one JSON line against the EVE schema.
func validateEVE(t testing.TB, line []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return eveSchema(t).Validate(v)
}

// validateLines checks every line of out against the EVE schema and
// returns the number of lines.
func validateLines(t testing.TB, out []byte) int {
	t.Helper()
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
		if err := validateEVE(t, sc.Bytes()); err != nil {
			t.Errorf("line %d does not validate against the EVE schema: %v\n%s", n, err, sc.Bytes())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot:  %s\nwant: %s", path, got, want)
	}
}

// TestSchemaCopyIsCurrent: testdata's schema is the project's shared copy
// (../shared/schemas beside the repository), when that is present.
func TestSchemaCopyIsCurrent(t *testing.T) {
	shared := filepath.Join(repoRoot(t), "..", "shared", "schemas", "suricata-eve.schema.json")
	want, err := os.ReadFile(shared)
	if err != nil {
		testenv.Missing(t, "no shared schema beside the repository (../shared/schemas): %v", err)
	}
	got, err := os.ReadFile(filepath.Join("testdata", "suricata-eve.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("testdata/suricata-eve.schema.json differs from %s: copy it again (and its commit into testdata/README.md)", shared)
	}
}
