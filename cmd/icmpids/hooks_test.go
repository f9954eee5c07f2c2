package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// TestReplayHooks: a replay delivers every alert to output.exec (its
// phases, start and end by default) and to output.webhook (every event),
// each as the EVE object stdout carries; an endpoint that fails makes the
// replay exit 1 saying how many alerts it lost.
func TestReplayHooks(t *testing.T) {
	var (
		mu     sync.Mutex
		posted []string
	)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posted = append(posted, string(b))
		mu.Unlock()
	}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer failing.Close()

	dir := t.TempDir()
	cfg := func(name, url string) string {
		p := filepath.Join(dir, name)
		yaml := "output:\n  exec:\n    command: [/bin/sh, -c, 'cat > \"" + dir + "/$ICMPIDS_PHASE.$ICMPIDS_ATTACK_ID\"']\n" +
			"  webhook:\n    url: " + url + "\n    retries: 1\n    backoff: 10ms\n"
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	code, out, stderr := icmpids(t, "replay", "--format", "eve", "--config", cfg("ok.yaml", ok.URL), filepath.Join("testdata", "demo.pcap"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	stdout := strings.Split(strings.TrimSpace(out), "\n")
	if len(stdout) != 4 {
		t.Fatalf("%d events on stdout, want the demo's 4", len(stdout))
	}
	sort.Strings(posted)
	want := slices.Clone(stdout)
	sort.Strings(want)
	if !slices.Equal(posted, want) {
		t.Errorf("webhook bodies differ from stdout's EVE lines:\n%s\nwant\n%s", strings.Join(posted, "\n"), strings.Join(want, "\n"))
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "*.*"))
	var names, ran []string
	for _, r := range runs {
		if n := filepath.Base(r); !strings.HasSuffix(n, ".yaml") {
			names = append(names, n)
			b, _ := os.ReadFile(r)
			ran = append(ran, strings.TrimSpace(string(b)))
		}
	}
	sort.Strings(ran)
	if len(names) != 4 || !slices.Equal(ran, want) {
		t.Errorf("exec runs %v with stdin %q: want the 4 start and end events", names, ran)
	}
	for _, e := range parseEVE(t, out) {
		if _, err := os.Stat(filepath.Join(dir, e.Alert.Context.Attack.Phase+"."+e.Alert.Context.Attack.ID)); err != nil {
			t.Errorf("no exec run for %s %s (ICMPIDS_PHASE and ICMPIDS_ATTACK_ID): %v", e.Alert.Context.Attack.Phase, e.Alert.Context.Attack.ID, err)
		}
	}

	code, _, stderr = icmpids(t, "replay", "--format", "none", "--config", cfg("failing.yaml", failing.URL), filepath.Join("testdata", "demo.pcap"))
	if code != 1 || !strings.Contains(stderr, "output.webhook: 4 of 4 alerts not delivered") || strings.Count(stderr, "delivery failed") != 1 {
		t.Errorf("failing webhook: exit %d, want 1 with the loss counted and logged once:\n%s", code, stderr)
	}
}

// TestHookConfig: the hooks' keys are checked like every other: an unknown
// key names the nearest, a missing program and a bad URL are exit 2.
func TestHookConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, yaml, want string }{
		{"misspelt key", "output:\n  exec:\n    comand: [true]\n", "output.exec.comand: unknown key (did you mean output.exec.command?)"},
		{"missing program", "output:\n  exec:\n    command: [/nonexistent/rtbh]\n", "output.exec.command: \"/nonexistent/rtbh\""},
		{"bad phase", "output:\n  exec:\n    command: [true]\n    phases: [begin]\n", "output.exec.phases"},
		{"bad URL", "output:\n  webhook:\n    url: ftp://x/\n", "output.webhook.url"},
		{"missing CA", "output:\n  webhook:\n    url: https://127.0.0.1/\n    tls:\n      ca_file: /nonexistent/ca.pem\n", "output.webhook.tls.ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := icmpids(t, "check", "--config", p)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q: want 2 naming %q", code, stderr, tc.want)
			}
		})
	}
}
