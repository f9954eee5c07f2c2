package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// gcLine is a collection's line in GODEBUG=gctrace=1 output, initLine a
// package initialisation's in inittrace=1 output.
var (
	gcLine   = regexp.MustCompile(`(?m)^gc \d+ @`)
	initLine = regexp.MustCompile(`(?m)^init \S+ @`)
)

// TestReplayStartupDoesNotCollect: a short replay, the real program
// (GODEBUG=gctrace=1), runs no collection once the packages are
// initialised (the race detector's initialisation may run one before);
// before pauseGC its start-up ran two, each scanning gopacket's 5 MB of
// pointer globals.
func TestReplayStartupDoesNotCollect(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(corpusDir(t), "benign", "ping_75_continuous_suricata.pcap")
	cmd := exec.Command(exe, "replay", "--format", "none", file)
	cmd.Env = append(os.Environ(), "ICMPIDS_TEST_AS_MAIN=1", "GODEBUG=gctrace=1,inittrace=1", "GOGC=100")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("replay %s: %v\n%s", file, err, out)
	}
	inits := initLine.FindAllIndex(out, -1)
	if len(inits) == 0 {
		t.Fatalf("no inittrace line:\n%s", out)
	}
	if n := len(gcLine.FindAll(out[inits[len(inits)-1][0]:], -1)); n != 0 {
		t.Errorf("replaying %s ran %d collections:\n%s", file, n, out)
	}
}

// TestResumeGC (in a child process of its own, GOGC=100): after pauseGC's
// resume the start-up heap is not collected at the next allocations, a
// heap that grows past twice it is, and GOGC is back at its setting once
// that collection has run.
func TestResumeGC(t *testing.T) {
	if os.Getenv("ICMPIDS_TEST_RESUME_GC") == "" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run", "^TestResumeGC$", "-test.v")
		cmd.Env = append(os.Environ(), "ICMPIDS_TEST_RESUME_GC=1", "GOGC=100")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestResumeGC") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	cycles := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	gcPercent := func() int {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	resume := pauseGC()
	var keep [][]byte
	for range 20 { // a start-up heap of 20 MB
		keep = append(keep, make([]byte, 1<<20))
	}
	resume()
	before := cycles()
	if p := gcPercent(); p <= 100 {
		t.Fatalf("GOGC %d right after resume, want the first goal raised above the start-up heap", p)
	}
	for range 1000 { // 1 MB more, in small pieces
		keep = append(keep, make([]byte, 1<<10))
	}
	if c := cycles() - before; c != 0 {
		t.Fatalf("%d collections once start-up ended, want none below twice its heap", c)
	}
	for range 30 {
		keep = append(keep, make([]byte, 1<<20))
	}
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() != 100 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p := gcPercent(); p != 100 {
		t.Errorf("GOGC %d after the first collection, want 100 again", p)
	}
	runtime.KeepAlive(keep)
}
