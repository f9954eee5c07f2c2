package hook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
)

func execConfig(command ...string) ExecConfig {
	c := DefaultExecConfig()
	c.Command = command
	return c
}

// TestExecRunsPerEvent: the command runs once per event of the configured
// phases (start and end by default), with the EVE JSON on its standard
// input and the ICMPIDS_* variables in its environment.
func TestExecRunsPerEvent(t *testing.T) {
	dir := t.TempDir()
	script := `cat > "$OUT/$ICMPIDS_TARGET.$ICMPIDS_PHASE.json"; printf '%s %s %s %s\n' "$ICMPIDS_RULE" "$ICMPIDS_PHASE" "$ICMPIDS_TARGET" "$ICMPIDS_ATTACK_ID" > "$OUT/$ICMPIDS_TARGET.$ICMPIDS_PHASE.env"`
	t.Setenv("OUT", dir)
	o, err := NewExec(execConfig("/bin/sh", "-c", script), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []detector.Phase{detector.PhaseStart, detector.PhaseUpdate, detector.PhaseEnd} {
		o.Emit(event(5, p))
	}
	if err := closeWithin(t, o, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for i := range files {
		files[i] = filepath.Base(files[i])
	}
	sort.Strings(files)
	want := []string{"192.0.2.5.end.env", "192.0.2.5.end.json", "192.0.2.5.start.env", "192.0.2.5.start.json"}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("runs left %v, want %v (update is not a default phase)", files, want)
	}
	var ids []string
	for _, p := range []string{"start", "end"} {
		body, _ := os.ReadFile(filepath.Join(dir, "192.0.2.5."+p+".json"))
		if !strings.HasSuffix(string(body), "}\n") {
			t.Errorf("%s: stdin %q is not one EVE line", p, body)
		}
		a := eveAlert(t, body)
		if a["phase"] != p || a["rule"] != "icmp_flood" {
			t.Errorf("%s: EVE attack %v", p, a)
		}
		env, _ := os.ReadFile(filepath.Join(dir, "192.0.2.5."+p+".env"))
		f := strings.Fields(string(env))
		if len(f) != 4 || f[0] != "icmp_flood" || f[1] != p || f[2] != "192.0.2.5" || f[3] != a["id"] {
			t.Errorf("%s: environment %q, want rule, phase, target and the EVE id %v", p, env, a["id"])
		}
		ids = append(ids, f[len(f)-1])
	}
	if ids[0] != ids[1] {
		t.Errorf("ICMPIDS_ATTACK_ID differs between start and end: %v", ids)
	}
	if st := o.Stats(); st.Sent != 2 || st.Rejected != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 2 sent", st)
	}
}

// TestExecHangKilled: a hook that hangs is killed at its timeout, with
// what it started (the whole process group), and counted as failed; the
// failure is logged once for many events.
func TestExecHangKilled(t *testing.T) {
	dir := t.TempDir()
	log, buf := testLog()
	cfg := execConfig("/bin/sh", "-c", `sleep 30 & echo $! > "$OUT/pid.$ICMPIDS_TARGET"; wait`)
	cfg.Timeout = 300 * time.Millisecond
	t.Setenv("OUT", dir)
	o, err := NewExec(cfg, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 1; i <= 3; i++ {
		o.Emit(event(i, detector.PhaseStart))
	}
	if err := closeWithin(t, o, 10*time.Second); err == nil || !strings.Contains(err.Error(), "3 of 3 alerts not delivered") {
		t.Errorf("Close: %v, want the undelivered alerts counted", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("3 hung hooks with a 300ms timeout took %v", took)
	}
	if st := o.Stats(); st.Rejected != 3 || st.Sent != 0 {
		t.Errorf("stats %+v, want 3 failed", st)
	}
	if n := lines(buf.String(), "delivery failed"); n != 1 || !strings.Contains(buf.String(), "killed at its timeout") {
		t.Errorf("%d failure lines, want 1 naming the timeout:\n%s", n, buf)
	}
	pids, _ := filepath.Glob(filepath.Join(dir, "pid.*"))
	if len(pids) != 3 {
		t.Fatalf("pid files %v", pids)
	}
	for _, p := range pids {
		b, _ := os.ReadFile(p)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid > 0 && alive(pid) {
			t.Errorf("the hook's child %d outlived the kill", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestExecFailure: a hook that exits non-zero counts as failed; the log
// line quotes its stderr; a success afterwards is logged as a recovery.
func TestExecFailure(t *testing.T) {
	log, buf := testLog()
	cfg := execConfig("/bin/sh", "-c", `[ "$ICMPIDS_TARGET" = 192.0.2.9 ] && exit 0; echo "bgp session down" >&2; exit 3`)
	cfg.MaxRunning = 1
	o, err := NewExec(cfg, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		o.Emit(event(i, detector.PhaseStart))
	}
	for deadline := time.Now().Add(5 * time.Second); o.Stats().Rejected < 4 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // the failures finish before the success
	}
	o.Emit(event(9, detector.PhaseStart))
	closeWithin(t, o, 10*time.Second)
	if st := o.Stats(); st.Rejected != 4 || st.Sent != 1 {
		t.Errorf("stats %+v, want 4 failed, 1 sent", st)
	}
	out := buf.String()
	if lines(out, "delivery failed") != 1 || !strings.Contains(out, "exit status 3") || !strings.Contains(out, "bgp session down") {
		t.Errorf("want one failure line with the exit status and stderr:\n%s", out)
	}
	if !strings.Contains(out, "works again") {
		t.Errorf("no recovery line:\n%s", out)
	}
}

// TestExecLiveDropsOldest: in a live sensor Emit never waits: with one
// slow run at a time and a queue of 2, a burst loses its oldest events
// (counted, logged once), and the last event is among those delivered.
func TestExecLiveDropsOldest(t *testing.T) {
	dir := t.TempDir()
	log, buf := testLog()
	cfg := execConfig("/bin/sh", "-c", `sleep 0.2; touch "$OUT/$ICMPIDS_TARGET"`)
	cfg.MaxRunning, cfg.QueueSize = 1, 2
	t.Setenv("OUT", dir)
	o, err := NewExec(cfg, Options{Live: true, QueueSize: cfg.QueueSize, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const n = 20
	for i := 1; i <= n; i++ {
		o.Emit(event(i, detector.PhaseStart))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("20 live Emits took %v: a live hook must not wait", took)
	}
	if err := closeWithin(t, o, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st := o.Stats()
	if st.Dropped == 0 || st.Sent+st.Dropped != n || st.Rejected != 0 {
		t.Errorf("stats %+v: want drops, and sent + dropped = %d", st, n)
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("192.0.2.%d", n))); err != nil {
		t.Errorf("the newest event was not delivered: %v", err)
	}
	if c := lines(buf.String(), "queue is full"); c != 1 {
		t.Errorf("%d queue-full lines, want 1:\n%s", c, buf)
	}
}

// TestExecReplayWaits: a replay's Emit waits for a run slot, so every
// event runs; max_running runs go at once.
func TestExecReplayWaits(t *testing.T) {
	dir := t.TempDir()
	cfg := execConfig("/bin/sh", "-c", `sleep 0.2; touch "$OUT/$ICMPIDS_TARGET"`)
	cfg.MaxRunning = 4
	t.Setenv("OUT", dir)
	o, err := NewExec(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	for i := 1; i <= n; i++ {
		o.Emit(event(i, detector.PhaseStart))
	}
	if err := closeWithin(t, o, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if st := o.Stats(); len(files) != n || st.Sent != n || st.Dropped != 0 {
		t.Errorf("%d runs, stats %+v: want all %d", len(files), st, n)
	}
}

// TestExecStop: a replay stopped by a signal stops waiting at once: the
// run under way is killed, the waiting event dropped and counted.
func TestExecStop(t *testing.T) {
	cfg := execConfig("sleep", "30")
	cfg.MaxRunning, cfg.Timeout = 1, time.Minute
	stop, cancel := context.WithCancel(context.Background())
	o, err := NewExec(cfg, Options{Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	o.Emit(event(1, detector.PhaseStart)) // runs
	done := make(chan struct{})
	go func() { o.Emit(event(2, detector.PhaseStart)); close(done) }() // waits for the slot
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Emit still waits after Stop")
	}
	closeWithin(t, o, 5*time.Second)
	if st := o.Stats(); st.Dropped != 1 || st.Rejected != 1 {
		t.Errorf("stats %+v: want the waiting event dropped, the running one failed (killed)", st)
	}
}

// TestExecCloseKills: Close kills runs still going at its deadline and
// says so.
func TestExecCloseKills(t *testing.T) {
	cfg := execConfig("sleep", "30")
	cfg.Timeout = time.Minute
	o, err := NewExec(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.Emit(event(1, detector.PhaseEnd))
	err = closeWithin(t, o, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Close: %v, want the killed run named", err)
	}
}

func TestExecConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ExecConfig)
		want string
	}{
		{"defaults (off)", func(*ExecConfig) {}, ""},
		{"a command", func(c *ExecConfig) { c.Command = []string{"/usr/local/bin/rtbh", "announce"} }, ""},
		{"empty program", func(c *ExecConfig) { c.Command = []string{" ", "x"} }, "output.exec.command"},
		{"bad phase", func(c *ExecConfig) { c.Phases = []string{"start", "begin"} }, `output.exec.phases: "begin"`},
		{"no phase", func(c *ExecConfig) { c.Phases = nil }, "output.exec.phases"},
		{"zero timeout", func(c *ExecConfig) { c.Timeout = 0 }, "output.exec.timeout"},
		{"max_running 0", func(c *ExecConfig) { c.MaxRunning = 0 }, "output.exec.max_running"},
		{"queue_size 0", func(c *ExecConfig) { c.QueueSize = 0 }, "output.exec.queue_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultExecConfig()
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := execConfig("no-such-hook-icmpids").Program(); err == nil || !strings.Contains(err.Error(), "output.exec.command") {
		t.Errorf("missing program: %v", err)
	}
}

// alive tells whether process pid still runs (a zombie, dead and not yet
// reaped by whoever inherited it, does not), waiting a little for the kill
// to land.
func alive(pid int) bool {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return false
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// pid (comm) STATE ...: the state follows the last ')'.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false
		}
	}
	return true
}
