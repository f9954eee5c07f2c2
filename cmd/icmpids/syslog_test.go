package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/internal/testenv"
	"github.com/icmpids/icmpids/output/syslogtest"
)

// TestReplaySyslog: `icmpids replay --syslog URL capture` delivers every
// alert to a real rsyslogd over UDP, TCP and TLS, as RFC 5424 messages that
// rsyslog parses (app-name, msgid, structured data) with the EVE JSON
// alert as body — the same alerts, in the same order, as stdout carries.
func TestReplaySyslog(t *testing.T) {
	r := syslogtest.Start(t)
	t.Setenv("ICMPIDS_SYSLOG_TLS_CA_FILE", r.CAFile)
	t.Setenv("ICMPIDS_SYSLOG_HOSTNAME", "sensor1")
	demo := filepath.Join("testdata", "demo.pcap")
	for _, input := range []string{"udp", "tcp", "tls"} {
		t.Run(input, func(t *testing.T) {
			before := len(r.Lines())
			code, stdout, stderr := icmpids(t, "replay", "--format", "eve", "--syslog", r.URL(input), demo)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			want := strings.Split(strings.TrimSpace(stdout), "\n")
			if len(want) < 2 {
				t.Fatalf("demo replay gave %d alerts", len(want))
			}
			lines := r.WaitLines(before+len(want), 5*time.Second)[before:]
			if len(lines) != len(want) {
				t.Fatalf("rsyslog got %d messages, stdout has %d alerts\n%s", len(lines), len(want), r.Log())
			}
			for i, l := range lines {
				if l.Msg != want[i] {
					t.Errorf("message %d body differs from stdout's alert:\n got %s\nwant %s", i, l.Msg, want[i])
				}
				var ev eveAlert
				if err := json.Unmarshal([]byte(want[i]), &ev); err != nil {
					t.Fatal(err)
				}
				a := ev.Alert.Context.Attack
				if l.Version != "1" || l.AppName != "icmpids" || l.Hostname != "sensor1" || l.MsgID != a.Rule || l.Facility != "local5" {
					t.Errorf("message %d header parsed as %+v", i, l)
				}
				for _, kv := range []string{`rule="` + a.Rule + `"`, `phase="` + a.Phase + `"`,
					`target="` + a.Target + `"`, fmt.Sprintf(`packets="%d"`, a.Packets)} {
					if !strings.HasPrefix(l.SD, "[icmpids@32473 ") || !strings.Contains(l.SD, kv) {
						t.Errorf("message %d structured data %s lacks %s", i, l.SD, kv)
					}
				}
			}
			if !strings.Contains(stderr, "syslog_sent="+fmt.Sprint(len(want))) {
				t.Errorf("summary does not report %d sent:\n%s", len(want), stderr)
			}
		})
	}
}

// TestReplaySyslogCollectorDown: a replay to a collector that does not
// answer fails at once with one line naming it (exit 1); a bad URL or
// setting is a configuration error (exit 2).
func TestReplaySyslogCollectorDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	demo := filepath.Join("testdata", "demo.pcap")
	code, _, stderr := icmpids(t, "replay", "--format", "none", "--syslog", "tcp://"+addr, demo)
	if code != 1 || !strings.Contains(stderr, "output.syslog: tcp://"+addr) || !strings.Contains(stderr, "refused") {
		t.Errorf("collector down: exit %d, stderr %q", code, stderr)
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"--syslog", "http://x:1"}},
		{[]string{"--syslog", "tcp://x:99999"}},
	} {
		code, _, stderr := icmpids(t, append(append([]string{"replay", "--format", "none"}, tc.args...), demo)...)
		if code != 2 || !strings.Contains(stderr, "output.syslog") {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr)
		}
	}
	t.Setenv("ICMPIDS_SYSLOG_FACILITY", "local9")
	code, _, stderr = icmpids(t, "replay", "--format", "none", demo)
	if code != 2 || !strings.Contains(stderr, "syslog.facility") {
		t.Errorf("bad facility: exit %d, stderr %q", code, stderr)
	}
	t.Setenv("ICMPIDS_SYSLOG_FACILITY", "local5")
	t.Setenv("ICMPIDS_SYSLOG_TLS_CA_FILE", "/nonexistent/ca.pem")
	code, _, stderr = icmpids(t, "replay", "--format", "none", "--syslog", "tls://127.0.0.1:6514", demo)
	if code != 2 || !strings.Contains(stderr, "syslog.tls.ca_file") {
		t.Errorf("missing CA file: exit %d, stderr %q", code, stderr)
	}
}

// TestSystemdUnit checks configs/icmpids.service with systemd-analyze
// verify. Skipped when systemd-analyze is missing (or cannot run in this
// container), unless CI is set and it is installed.
func TestSystemdUnit(t *testing.T) {
	bin := testenv.Tool(t, "systemd-analyze")
	unit, err := filepath.Abs(filepath.Join("..", "..", "configs", "icmpids.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify wants the unit's ExecStart binary to exist: point it at a
	// copy whose path is the one the unit names, in a private root.
	text, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin2 := filepath.Join(dir, "icmpids")
	if err := os.WriteFile(bin2, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyUnit := filepath.Join(dir, "icmpids.service")
	if err := os.WriteFile(copyUnit, []byte(strings.ReplaceAll(string(text), "/usr/local/bin/icmpids", bin2)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "verify", "--man=no", copyUnit).CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err != nil || msg != "" {
		if strings.Contains(msg, "Failed to initialize manager") || strings.Contains(msg, "Failed to setup") ||
			strings.Contains(msg, "System has not been booted with systemd") {
			t.Skipf("systemd-analyze cannot run in this container: %s", msg)
		}
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unit, err, msg)
	}
	// The hardening, as systemd itself scores it (0 best, 10 worst).
	out, _ = exec.Command(bin, "security", "--offline=true", copyUnit).CombinedOutput()
	var score float64
	if i := strings.Index(string(out), "Overall exposure level for icmpids.service: "); i >= 0 {
		fmt.Sscanf(string(out[i:]), "Overall exposure level for icmpids.service: %g", &score)
	}
	if score == 0 || score > 3 {
		t.Errorf("systemd-analyze security: exposure %.1f, want at most 3.0 (OK)\n%s", score, out)
	}
	t.Logf("systemd-analyze security: exposure %.1f", score)
}
