package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

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

// startKafka runs an in-process Kafka cluster with the EVE and observation
// topics, one partition each (kcat then reads them in order).
func startKafka(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "icmpids.eve", "icmpids.obs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// dropSeq removes alert.context.event_seq from an EVE line and returns it.
func dropSeq(t *testing.T, line string) (string, uint64) {
	t.Helper()
	i := strings.LastIndex(line, `,"event_seq":`)
	if i < 0 || !strings.HasSuffix(line, "}}}") {
		t.Fatalf("no event_seq at the end of alert.context: %s", line)
	}
	n, err := strconv.ParseUint(line[i+len(`,"event_seq":`):len(line)-3], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return line[:i] + "}}}", n
}

// TestReplayKafka: `replay --kafka` produces the EVE file's events; kcat
// (librdkafka, a second client) reads them back from the topic, each with
// event_seq 1, 2, 3, …; a broker that is down fails the replay (exit 1).
func TestReplayKafka(t *testing.T) {
	needTool(t, "kcat")
	c := startKafka(t)
	addr := c.ListenAddrs()[0]
	demo := filepath.Join("testdata", "demo.pcap")
	eve := filepath.Join(t.TempDir(), "eve.json")
	code, _, stderr := icmpids(t, "replay", "--format", "none", "--eve", eve, "--kafka", addr, demo)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want, err := os.ReadFile(eve)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kcat", "-C", "-b", addr, "-t", "icmpids.eve", "-e", "-q", "-f", "%k %s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v: %s", err, out)
	}
	wantLines := strings.Split(strings.TrimSpace(string(want)), "\n")
	gotLines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(wantLines) < 2 || len(gotLines) != len(wantLines) {
		t.Fatalf("kcat read %d records, the EVE file has %d lines:\n%s", len(gotLines), len(wantLines), out)
	}
	for i, g := range gotLines {
		key, value, _ := strings.Cut(g, " ")
		line, seq := dropSeq(t, value)
		if line != wantLines[i] || seq != uint64(i+1) {
			t.Errorf("record %d (event_seq %d):\n got %s\nwant %s", i, seq, line, wantLines[i])
		}
		var ev struct {
			Alert struct {
				Context struct {
					Attack struct {
						ID string `json:"id"`
					} `json:"attack"`
				} `json:"context"`
			} `json:"alert"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if key != ev.Alert.Context.Attack.ID {
			t.Errorf("record %d key %q, want the attack id %q", i, key, ev.Alert.Context.Attack.ID)
		}
	}
	c.Close()
	if code, _, stderr := icmpids(t, "replay", "--format", "none", "--kafka", addr, demo); code != 1 || !strings.Contains(stderr, "output.kafka: ") {
		t.Errorf("broker down: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := icmpids(t, "replay", "--format", "none", "--kafka", "nohostport", demo); code != 2 || !strings.Contains(stderr, "output.kafka.brokers") {
		t.Errorf("bad broker: exit %d, stderr %q", code, stderr)
	}
}
