package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOverridesConfig: rules.<rule>.overrides and ignore_sources from a
// file: replay honours them (the demo's IPv4 flood to 10.0.0.5 goes silent
// under an allowlist, the IPv6 one under ignore_sources of its source),
// `rules` and `check` show them, and a SIGHUP applies a change to them.
func TestOverridesConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, yaml string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf := write("o.yaml", `ignore_sources: ["2001:db8:bad::/48"]
rules:
  icmp_flood:
    overrides:
      - networks: [10.0.0.0/24]
        echo_pps: 50000
        any_pps: 100000
      - networks: [10.0.0.5]
        enabled: false
`)
	demo := filepath.Join("testdata", "demo.pcap")
	code, out, stderr := icmpids(t, "replay", "--format", "eve", demo)
	if code != 0 || len(parseEVE(t, out)) != 4 {
		t.Fatalf("demo without overrides: exit %d, %d events: %s", code, len(parseEVE(t, out)), stderr)
	}
	code, out, stderr = icmpids(t, "replay", "--format", "eve", "--config", conf, demo)
	if code != 0 || out != "" {
		t.Errorf("with the allowlist and ignore_sources: exit %d, events:\n%s%s", code, out, stderr)
	}
	want := "rules.icmp_flood.overrides[1]  networks: [10.0.0.5/32], enabled: false"
	for _, args := range [][]string{{"rules"}, {"check"}} {
		code, out, _ := icmpids(t, append(args, "--config", conf)...)
		if code != 0 || !strings.Contains(out, "rules.icmp_flood.overrides[0]  networks: [10.0.0.0/24], any_pps: 100000, echo_pps: 50000") || !strings.Contains(out, want) {
			t.Errorf("%s: exit %d, overrides not shown:\n%s", args[0], code, out)
		}
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key in an override", "rules:\n  icmp_flood:\n    overrides:\n      - networks: [10.0.0.0/8]\n        echo_ppz: 1\n", "rules.icmp_flood.overrides[0].echo_ppz: unknown key"},
		{"bad ignore_sources", "ignore_sources: [10.0.0.0/33]\n", "ignore_sources[0]"},
	} {
		code, _, stderr := icmpids(t, "check", "--config", write(strings.ReplaceAll(tc.name, " ", "_")+".yaml", tc.yaml))
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 naming %q", tc.name, code, stderr, tc.want)
		}
	}

	// SIGHUP: a changed override is applied, not left for a restart.
	old, err := loadConfig(newViper(), conf)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := loadConfig(newViper(), write("o2.yaml", strings.Replace(mustRead(t, conf), "echo_pps: 50000", "echo_pps: 40000", 1)))
	if err != nil {
		t.Fatal(err)
	}
	applied, restart := reloadDiff(old, changed)
	if strings.Join(applied, ",") != "rules.icmp_flood.overrides" || len(restart) != 0 {
		t.Errorf("reload: applied %v, restart %v; want the overrides applied", applied, restart)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
