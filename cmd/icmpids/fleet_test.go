package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/icmpids/icmpids/output/redistest"
)

// TestReplayRedis: a replay with output.redis writes to the list exactly
// the lines stdout's EVE carries; Redis down fails the replay at once
// (exit 1) naming the output; a bad mode is a configuration error (2).
func TestReplayRedis(t *testing.T) {
	r := redistest.Start(t)
	demo := filepath.Join("testdata", "demo.pcap")
	t.Setenv("ICMPIDS_OUTPUT_REDIS_SERVER", r.Socket)
	code, stdout, stderr := icmpids(t, "replay", "--format", "eve", demo)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := r.Do("LRANGE", "icmpids", "0", "-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(stdout); got != want || strings.Count(want, "\n") < 1 {
		t.Errorf("redis list:\n%s\nstdout:\n%s", got, want)
	}
	t.Setenv("ICMPIDS_OUTPUT_REDIS_MODE", "queue")
	if code, _, stderr := icmpids(t, "replay", "--format", "none", demo); code != 2 || !strings.Contains(stderr, "output.redis.mode") {
		t.Errorf("bad mode: exit %d, stderr %q", code, stderr)
	}
	t.Setenv("ICMPIDS_OUTPUT_REDIS_MODE", "rpush")
	r.Kill()
	if code, _, stderr := icmpids(t, "replay", "--format", "none", demo); code != 1 || !strings.Contains(stderr, "output.redis: ") {
		t.Errorf("redis down: exit %d, stderr %q", code, stderr)
	}
}
