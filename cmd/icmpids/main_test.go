package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/rules"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// icmpids runs the command line in-process and returns exit code, stdout
// and stderr.
func icmpids(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// eveAlert is the part of an EVE alert line the tests look at.
type eveAlert struct {
	Timestamp string `json:"timestamp"`
	EventType string `json:"event_type"`
	SrcIP     string `json:"src_ip"`
	DestIP    string `json:"dest_ip"`
	Alert     struct {
		SignatureID int `json:"signature_id"`
		Target      struct {
			IP string `json:"ip"`
		} `json:"target"`
		Context struct {
			Attack struct {
				ID      string  `json:"id"`
				Rule    string  `json:"rule"`
				Phase   string  `json:"phase"`
				Target  string  `json:"target"`
				Packets uint64  `json:"packets"`
				Sources uint64  `json:"sources"`
				PPS     float64 `json:"pps"`
			} `json:"attack"`
		} `json:"context"`
	} `json:"alert"`
}

func parseEVE(t *testing.T, out string) []eveAlert {
	t.Helper()
	var evs []eveAlert
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var a eveAlert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("stdout line is not JSON: %v: %q", err, sc.Text())
		}
		evs = append(evs, a)
	}
	return evs
}

// summary renders events as "rule phase target" lines.
func summary(evs []eveAlert) []string {
	var s []string
	for _, e := range evs {
		a := e.Alert.Context.Attack
		s = append(s, a.Rule+" "+a.Phase+" "+a.Target)
	}
	return s
}

func TestReplayDemo(t *testing.T) {
	code, out, stderr := icmpids(t, "replay", "--format", "eve", filepath.Join("testdata", "demo.pcap"))
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr)
	}
	evs := parseEVE(t, out)
	got := summary(evs)
	want := []string{
		"icmp_flood start 10.0.0.5",
		"icmp_flood end 10.0.0.5",
		"icmp_flood start 2001:db8::80",
		"icmp_flood end 2001:db8::80",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Packet time: the spoofed flood starts at 10:00:20 and crosses 1,000
	// pps within its first 0.4 s.
	if ts := evs[0].Timestamp; !strings.HasPrefix(ts, "2026-11-27T10:00:20.") || !strings.HasSuffix(ts, "+0000") {
		t.Errorf("start timestamp %q, want packet time 2026-11-27T10:00:20.xxx+0000", ts)
	}
	if s := evs[1].Alert.Context.Attack.Sources; s < 3500 || s > 4200 {
		t.Errorf("spoofed flood end: sources = %d, want about 4,000", s)
	}
	golden(t, filepath.Join("testdata", "demo.eve.golden"), out)
}

// golden compares got with the file at path (rewritten with -update).
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/icmpids -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestReplayTextFormat(t *testing.T) {
	code, out, stderr := icmpids(t, "replay", "--format", "text", filepath.Join("testdata", "demo.pcap"))
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 text lines, got %d:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !strings.Contains(l, "icmp_flood") {
			t.Errorf("line without rule name: %q", l)
		}
	}
	golden(t, filepath.Join("testdata", "demo.text.golden"), out)
}

func TestReplayEVEFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eve.json")
	code, out, stderr := icmpids(t, "replay", "--format", "none", "--eve", path, filepath.Join("testdata", "demo.pcap"))
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr)
	}
	if out != "" {
		t.Errorf("--format none still wrote to stdout: %q", out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(parseEVE(t, string(data))); n != 4 {
		t.Fatalf("EVE file holds %d events, want 4", n)
	}
}

// TestBadInput: every bad input gets one clear line on stderr naming the
// thing and the cause, and the right exit status.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	notPcap := filepath.Join(dir, "notes.txt")
	os.WriteFile(notPcap, []byte("this is not a capture file\n"), 0o644)
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	badKey := filepath.Join(dir, "badkey.yaml")
	os.WriteFile(badKey, []byte("rules:\n  icmp_flood:\n    echo_ppz: 5\n"), 0o644)
	badValue := filepath.Join(dir, "badvalue.yaml")
	os.WriteFile(badValue, []byte("rules:\n  icmp_flood:\n    echo_pps: lots\n"), 0o644)
	badRange := filepath.Join(dir, "badrange.yaml")
	os.WriteFile(badRange, []byte("engine:\n  hold_time: 0s\n"), 0o644)
	badYAML := filepath.Join(dir, "broken.yaml")
	os.WriteFile(badYAML, []byte("rules: [\n"), 0o644)
	demo := filepath.Join("testdata", "demo.pcap")

	cases := []struct {
		name     string
		args     []string
		code     int
		mentions []string
	}{
		{"missing file", []string{"replay", filepath.Join(dir, "nope.pcap")}, 2, []string{"nope.pcap", "no such file"}},
		{"directory", []string{"replay", dir}, 2, []string{dir, "directory"}},
		{"not a capture", []string{"replay", notPcap}, 2, []string{"notes.txt", "not a pcap"}},
		{"empty file", []string{"replay", empty}, 2, []string{"empty.pcap"}},
		{"second file bad", []string{"replay", demo, notPcap}, 2, []string{"notes.txt"}},
		{"no files", []string{"replay"}, 2, []string{"arg"}},
		{"unknown flag", []string{"replay", "--bogus", demo}, 2, []string{"bogus"}},
		{"bad format", []string{"replay", "--format", "xml", demo}, 2, []string{"output.format", "xml"}},
		{"unknown config key", []string{"replay", "--config", badKey, demo}, 2, []string{"badkey.yaml", "echo_ppz"}},
		{"bad config value", []string{"replay", "--config", badValue, demo}, 2, []string{"echo_pps", "lots"}},
		{"out of range value", []string{"replay", "--config", badRange, demo}, 2, []string{"engine.hold_time"}},
		{"broken yaml", []string{"replay", "--config", badYAML, demo}, 2, []string{"broken.yaml"}},
		{"missing config", []string{"replay", "--config", filepath.Join(dir, "none.yaml"), demo}, 2, []string{"none.yaml"}},
		{"run without interface", []string{"run"}, 2, []string{"interface"}},
		{"run unknown interface", []string{"run", "-i", "nosuchif0"}, 2, []string{"nosuchif0"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{"frobnicate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := icmpids(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 {
				t.Errorf("want one line on stderr, got %d:\n%s", len(lines), stderr)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(stderr, m) {
					t.Errorf("stderr %q does not mention %q", stderr, m)
				}
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
				t.Errorf("stderr shows a panic: %s", stderr)
			}
		})
	}
}

// TestTruncatedFile: the alerts found before the damage still come out,
// the damage is named, and the exit status is 1.
func TestTruncatedFile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "demo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	// Cut inside a record just after the spoofed flood (about 60 % in).
	path := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(path, data[:len(data)*6/10+7], 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := icmpids(t, "replay", "--format", "eve", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr)
	}
	if !strings.Contains(stderr, "cut.pcap") || !strings.Contains(stderr, "truncated") {
		t.Errorf("stderr does not name the file and the damage: %s", stderr)
	}
	got := summary(parseEVE(t, out))
	want := []string{"icmp_flood start 10.0.0.5", "icmp_flood end 10.0.0.5"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events before the damage: %v, want %v", got, want)
	}
}

// TestConfigPrecedence: defaults < file < environment < flags.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("rules:\n  icmp_flood:\n    echo_pps: 111\n    any_pps: 222\n    window: 2s\n"), 0o644)
	t.Setenv("ICMPIDS_RULES_ICMP_FLOOD_ANY_PPS", "333")
	t.Setenv("ICMPIDS_RULES_ICMP_FLOOD_STOP_RATIO", "0.25")
	code, out, stderr := icmpids(t, "rules", "--config", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	flat := " " + strings.Join(strings.Fields(out), " ") + " "
	for _, want := range []string{
		"rules.icmp_flood.echo_pps 111", // file
		"rules.icmp_flood.any_pps 333",  // env over file
		"rules.icmp_flood.stop_ratio 0.25",
		"rules.icmp_flood.window 2s",
		"rules.icmp_flood.echo_bps 20000000", // default
	} {
		if !strings.Contains(flat, " "+want+" ") {
			t.Errorf("rules output lacks %q:\n%s", want, out)
		}
	}
	// A flag beats the environment: ICMPIDS_OUTPUT_FORMAT=text, --format eve.
	t.Setenv("ICMPIDS_OUTPUT_FORMAT", "text")
	code, out, _ = icmpids(t, "replay", "--format", "eve", filepath.Join("testdata", "demo.pcap"))
	if code != 0 || !strings.HasPrefix(out, "{") {
		t.Errorf("--format eve did not override ICMPIDS_OUTPUT_FORMAT=text: %.80q", out)
	}
	// And the environment alone takes effect.
	code, out, _ = icmpids(t, "replay", filepath.Join("testdata", "demo.pcap"))
	if code != 0 || strings.HasPrefix(out, "{") {
		t.Errorf("ICMPIDS_OUTPUT_FORMAT=text ignored: %.80q", out)
	}
	t.Setenv("ICMPIDS_RULES_ICMP_FLOOD_ECHO_PPS", "many")
	code, _, stderr = icmpids(t, "rules")
	if code != 2 || !strings.Contains(stderr, "echo_pps") {
		t.Errorf("bad environment value: exit %d, stderr %q", code, stderr)
	}
}

// TestShippedConfigIsTheDefault: configs/icmpids.yaml documents exactly the
// built-in defaults, every key present.
func TestShippedConfigIsTheDefault(t *testing.T) {
	t.Setenv("ICMPIDS_SENSOR_NAME", "") // TestMain's fixed name: unset here
	path := filepath.Join("..", "..", "configs", "icmpids.yaml")
	v := newViper()
	got, err := loadConfig(v, path)
	if err != nil {
		t.Fatal(err)
	}
	// Compared as printed: an empty list in YAML decodes to an empty
	// slice where the default is nil, which is the same setting.
	want := flatten(defaultConfig())
	for key, g := range flatten(got) {
		if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", want[key]) {
			t.Errorf("configs/icmpids.yaml: %s is %+v, the default is %+v", key, g, want[key])
		}
	}
	raw := newViper()
	raw.SetConfigFile(path)
	if err := raw.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	for key := range flatten(defaultConfig()) {
		if !raw.InConfig(key) {
			t.Errorf("configs/icmpids.yaml does not document %s", key)
		}
	}
	// The rules: section is the rule registry's, word for word
	// (go test ./cmd/icmpids -run TestShippedConfig -update rewrites it).
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rules.WriteYAML(&b, rules.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	head, _, ok := strings.Cut(string(data), "\nrules:\n")
	if !ok {
		t.Fatal("configs/icmpids.yaml has no rules: section")
	}
	generated := head + "\n" + b.String()
	if string(data) != generated {
		if *update {
			if err := os.WriteFile(path, []byte(generated), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("configs/icmpids.yaml's rules: section is not what the rule registry documents; run go test ./cmd/icmpids -run TestShippedConfig -update and review the diff")
	}
}

func TestRulesAndVersion(t *testing.T) {
	code, out, _ := icmpids(t, "rules")
	if code != 0 || !strings.Contains(out, "icmp_flood") || !strings.Contains(out, "9000001") {
		t.Errorf("rules: exit %d, output:\n%s", code, out)
	}
	code, out, _ = icmpids(t, "version")
	if code != 0 || !strings.HasPrefix(out, "icmpids "+version) || !strings.Contains(out, "libpcap") {
		t.Errorf("version: exit %d, output %q", code, out)
	}
	for _, flag := range []string{"--version", "-V"} {
		code, got, stderr := icmpids(t, flag)
		if code != 0 || got != out || stderr != "" {
			t.Errorf("%s: exit %d, output %q, stderr %q; want %q as `icmpids version` prints", flag, code, got, stderr, out)
		}
	}
	code, out, _ = icmpids(t, "--help")
	if code != 0 || !strings.Contains(out, "replay") || !strings.Contains(out, "Exit status") {
		t.Errorf("--help: exit %d, output:\n%s", code, out)
	}
}

// TestReplayStdin reads a capture from standard input ("-").
func TestReplayStdin(t *testing.T) {
	frames, err := synth.Flood{Target: victimFor("stdin"), Source: victimFor("src"), Start: epoch, Rate: 5000, Count: 5000}.Frames()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "f.pcap")
	if err := synth.WritePcapFile(path, frames); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	code, out, stderr := icmpids(t, "replay", "--format", "eve", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := summary(parseEVE(t, out)); len(got) != 2 {
		t.Fatalf("events from stdin: %v", got)
	}
}

// TestCheck: `icmpids check` validates what run would load and exits 0 or
// 2 naming what is wrong; every rule off is a warning.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, yaml string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var off strings.Builder
	off.WriteString("rules:\n")
	for _, n := range rules.Names() {
		off.WriteString("  " + n + ":\n    enabled: false\n")
	}
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stdout string
		stderr string
	}{
		{"defaults", []string{"check"}, nil, 0, "OK (18 of 18 rules enabled)", ""},
		{"the shipped configuration", []string{"check", "--config", filepath.Join("..", "..", "configs", "icmpids.yaml")}, nil, 0, "OK", ""},
		{"bad filter", []string{"check", "--config", write("bpf.yaml", "capture:\n  bpf: 'icmp and and'\n")}, nil, 2, "", "capture.bpf"},
		{"missing interface", []string{"check", "-i", "nosuchif9"}, nil, 2, "", "nosuchif9"},
		{"unknown key", []string{"check", "--config", write("key.yaml", "rules:\n  icmp_flood:\n    echo_ppz: 3\n")}, nil, 2, "", "echo_ppz"},
		{"misspelt environment variable", []string{"check"}, map[string]string{"ICMPIDS_RULES_ICMP_FLOD_ECHO_PPS": "5"}, 2, "", "ICMPIDS_RULES_ICMP_FLOD_ECHO_PPS"},
		{"EVE file in a missing directory", []string{"check", "--eve", "/nonexistent-dir/eve.json"}, nil, 2, "", "output.eve"},
		{"TLS file missing", []string{"check", "--config", write("tls.yaml", "output:\n  syslog: tls://127.0.0.1:6514\nsyslog:\n  tls:\n    ca_file: /nonexistent/ca.pem\n")}, nil, 2, "", "ca.pem"},
		{"every rule off", []string{"check", "--config", write("off.yaml", off.String())}, nil, 0, "OK, 1 warning(s) (0 of 18", "warning: every rule is switched off"},
		{"unknown rule: the nearest named", []string{"check", "--config", write("flod.yaml", "rules:\n  icmp_flod:\n    echo_pps: 3\n")}, nil, 2, "", "rules.icmp_flod: unknown key (did you mean rules.icmp_flood?)"},
		{"unknown rule key: the nearest named", []string{"check", "--config", write("ppz.yaml", "rules:\n  icmp_flood:\n    echo_ppz: 3\n")}, nil, 2, "", "rules.icmp_flood.echo_ppz: unknown key (did you mean rules.icmp_flood.echo_pps?)"},
		{"unknown section: the nearest named", []string{"check", "--config", write("outptu.yaml", "outptu:\n  eve: x\n")}, nil, 2, "", "outptu: unknown key (did you mean output?)"},
		{"unknown key far from any: no guess", []string{"check", "--config", write("zz.yaml", "capture:\n  zzzzzzzz: 1\n")}, nil, 2, "", "capture.zzzzzzzz: unknown key\n"},
		{"misspelt environment variable: the nearest named", []string{"check"}, map[string]string{"ICMPIDS_CAPTURE_SNAPLNE": "5"}, 2, "", "ICMPIDS_CAPTURE_SNAPLNE (did you mean ICMPIDS_CAPTURE_SNAPLEN?)"},
		{"outputs listed", []string{"check", "--eve", filepath.Join(dir, "eve.json"), "--format", "none"}, nil, 0, "eve      " + filepath.Join(dir, "eve.json"), ""},
		{"UDP syslog is not probed", []string{"check", "--syslog", "udp://127.0.0.1:514"}, nil, 0, "udp://127.0.0.1:514 (not probed", ""},
		{"a syslog collector that does not answer is a warning", []string{"check", "--syslog", "tcp://127.0.0.1:" + closedPort(t)}, nil, 0, "(probed: no answer)", "warning: output.syslog"},
		{"a syslog collector that answers", []string{"check", "--syslog", "tcp://" + listening(t)}, nil, 0, "(probed: connected)", ""},
		{"-q: the verdict only", []string{"check", "-q"}, nil, 0, "OK (18 of 18 rules enabled)\n", ""},
		{"nowhere to go is a warning", []string{"check", "-q", "--format", "none"}, nil, 0, "OK, 1 warning(s)", "alerts would go nowhere"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, out, stderr := icmpids(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, lastLines(out, 3), stderr)
			}
			if code == 0 {
				// The verdict first; the rules last, unless -q.
				first, _, _ := strings.Cut(out, "\n")
				quiet := slices.Contains(tc.args, "-q")
				if !strings.Contains(first, ": OK") || strings.Contains(out, "rules.icmp_flood.echo_pps") == quiet ||
					quiet && strings.Count(out, "\n") != 1 {
					t.Errorf("check output does not start with its verdict or lists the rules when -q is %v:\n%s", quiet, out)
				}
			}
		})
	}
}

// closedPort returns a loopback TCP port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}

// listening returns the loopback address of a TCP listener that accepts
// and hangs up, closed at cleanup.
func listening(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// TestBPFField: the "capturing" line names the default filter "default" at
// info (its 2,000-odd characters go to debug) and a configured one as it is.
func TestBPFField(t *testing.T) {
	def := capture.DefaultBPFFor(nil, nil, nil)
	for _, tc := range []struct {
		name, level, configured, want string
		debugWhole                    bool
	}{
		{"default at info", "info", "", "default", false},
		{"default at debug", "debug", "", "default", true},
		{"configured", "debug", "icmp", "icmp", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := newLogger(tc.level, &buf)
			used := tc.configured
			if used == "" {
				used = def
			}
			log.WithField("bpf", bpfField(log, tc.configured, used)).Info("capturing")
			out := buf.String()
			first, _, _ := strings.Cut(out, "\n")
			if tc.debugWhole {
				first = strings.Split(strings.TrimSpace(out), "\n")[1]
			}
			if !strings.Contains(first, "bpf="+tc.want) || len(first) > 200 {
				t.Errorf("capturing line %q: want bpf=%s and a short line", first, tc.want)
			}
			if got := strings.Contains(out, def); got != tc.debugWhole {
				t.Errorf("default filter logged whole: %v, want %v:\n%s", got, tc.debugWhole, out)
			}
		})
	}
}

// TestManPages: the hidden `icmpids man DIR` writes icmpids(1) and a page
// per command from their help (the Debian package ships them).
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := icmpids(t, "man", dir); code != 0 {
		t.Fatalf("man: exit %d: %s", code, stderr)
	}
	page, err := os.ReadFile(filepath.Join(dir, "icmpids-check.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `.TH "ICMPIDS" "1"`) || !strings.Contains(string(page), "Check a configuration before deploying it") {
		t.Errorf("icmpids-check.1:\n%s", page)
	}
	for _, name := range []string{"icmpids.1", "icmpids-run.1", "icmpids-replay.1"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "icmpids-man.1")); err == nil {
		t.Error("the hidden man command has a page")
	}
}
