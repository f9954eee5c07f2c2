//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLiveExecHook: the live sensor runs output.exec for a real flood's
// start and end (behind its queue), with the EVE object on stdin and the
// attack's variables in the environment; SIGTERM waits for the runs.
func TestLiveExecHook(t *testing.T) {
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	sender, victim, vIf, vAddr := liveTestbed(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	cmd := startSensor(t, ctx, victim, &stdout, &stderr, []string{
		"ICMPIDS_ENGINE_HOLD_TIME=2s",
		"ICMPIDS_OUTPUT_EXEC_COMMAND=/bin/sh,-c,sleep 0.2; cat > " + dir + "/$ICMPIDS_PHASE.$ICMPIDS_RULE.$ICMPIDS_TARGET",
	}, "run", "-i", vIf, "--format", "eve", "--stats-interval", "0")
	floodCtx, floodCancel := context.WithTimeout(ctx, 15*time.Second)
	defer floodCancel()
	out, err := exec.CommandContext(floodCtx, "ip", "netns", "exec", string(sender),
		"ping", "-f", "-l", "16", "-c", "20000", "-w", "6", "-q", vAddr).CombinedOutput()
	t.Logf("ping -f: %v %s", err, strings.TrimSpace(string(out)))
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(stdout.String(), `"phase":"end"`) }, "the end event", &stderr)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	for _, phase := range []string{"start", "end"} {
		body, err := os.ReadFile(filepath.Join(dir, phase+".icmp_flood."+vAddr))
		if err != nil {
			t.Errorf("no %s run: %v\nsensor log:\n%s", phase, err, stderr.String())
			continue
		}
		if !strings.Contains(string(body), `"phase":"`+phase+`"`) || !strings.Contains(stdout.String(), strings.TrimSpace(string(body))) {
			t.Errorf("%s run's stdin %q is not the event stdout carried", phase, body)
		}
	}
}
