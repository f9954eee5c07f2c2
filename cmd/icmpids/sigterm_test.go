package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icmpids/icmpids/internal/netnstest"
)

// A replay blocked on a TCP collector that accepts and never reads ends
// soon after SIGTERM (the real program, its real signal handling): it does
// not wait out the close deadline, and what it could not deliver is counted
// in its summary (syslog_dropped) and logged. The bound is a behaviour
// bound (2 s, with slack for a loaded machine), not a speed measurement.
func TestReplaySIGTERMNonReadingCollector(t *testing.T) {
	pcap, _ := manyAlerts(t, 3000)
	cfg := filepath.Join(t.TempDir(), "icmpids.yaml")
	// The default block_timeout (1 min): only the signal can end the wait.
	yaml := "engine:\n  hold_time: 1s\n  max_attacks: 1048576\nrules:\n  icmp_flood:\n    echo_pps: 10\n    any_pps: 20\n  icmp_sweep:\n    enabled: false\n  icmp_carpet_flood:\n    enabled: false\nsyslog:\n  queue_size: 100\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	collector := nonReadingCollector(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd := exec.Command(exe, "replay", "--config", cfg, "--format", "none", "--syslog", "tcp://"+collector, pcap)
	cmd.Env = append(os.Environ(), "ICMPIDS_TEST_AS_MAIN=1")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	// Wait until the replay is stuck: the kernel buffers are full and the
	// queue (100) with them, well before the capture's 6,000 alerts.
	time.Sleep(2 * time.Second)
	if cmd.ProcessState != nil {
		t.Fatalf("the replay ended before the signal:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM:\n%s", lastLines(stderr.String(), 8))
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1 (interrupted, alerts undelivered)", werr)
	}
	checkSIGTERMSummary(t, stderr.String(), time.Since(signalled), 2*time.Second)
}

// A live sensor whose TCP syslog collector accepts and never reads ends
// within seconds of SIGTERM (the real program in a test namespace): the
// shutdown flush is bounded (shutdownGrace, 3 s) as a replay's is, not the
// 10 s close deadline, and the alerts it could not deliver are counted in
// its summary (syslog_dropped) and logged (undelivered=N). The collector
// listens inside the sensor's namespace; the flood of 3,000 hosts raises
// 3,000 starts, and the 3,000 shutdown ends find the socket full.
func TestLiveSIGTERMNonReadingCollector(t *testing.T) {
	sender, victim, victimIf, _ := liveTestbed(t)
	senderIf := strings.Replace(victimIf, "ids-v", "ids-s", 1)
	pcap, _ := manyAlerts(t, 3000)
	// The syslog output's defaults (write_timeout 10 s): only the
	// shutdown bound can end the wait on the full socket.
	cfg := filepath.Join(t.TempDir(), "icmpids.yaml")
	yaml := "engine:\n  hold_time: 1s\n  max_attacks: 1048576\nrules:\n  icmp_flood:\n    echo_pps: 10\n    any_pps: 20\n  icmp_sweep:\n    enabled: false\n  icmp_carpet_flood:\n    enabled: false\nsyslog:\n  queue_size: 100\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	netnstest.Do(t, string(victim), func() (err error) {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	})
	collector := holdConnections(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr syncBuffer
	cmd := startSensor(t, ctx, victim, nil, &stderr, nil, "run", "-i", victimIf, "--config", cfg,
		"--format", "none", "--syslog", "tcp://"+collector, "--stats-interval", "0")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	inj := exec.CommandContext(ctx, "ip", "netns", "exec", string(sender), exe)
	inj.Env = append(os.Environ(), "ICMPIDS_TEST_INJECT="+senderIf+"="+pcap)
	if out, err := inj.CombinedOutput(); err != nil {
		t.Fatalf("inject: %v: %s", err, out)
	}
	time.Sleep(time.Second) // the last starts reach the queue
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM:\n%s", lastLines(stderr.String(), 8))
	}
	checkSIGTERMSummary(t, stderr.String(), time.Since(signalled), 3*time.Second)
}

// checkSIGTERMSummary checks a sensor stopped by SIGTERM with alerts it
// could not deliver: it exited within twice the promised bound (slack for
// a busy machine) after the signal, its summary counts what it could not
// deliver (syslog_dropped ≥ 1), and it logs that count (undelivered=N).
func checkSIGTERMSummary(t *testing.T, stderr string, took, promised time.Duration) {
	t.Helper()
	t.Logf("exited %v after SIGTERM", took.Round(time.Millisecond))
	if took > 2*promised {
		t.Errorf("exited %v after SIGTERM, want about %v at most:\n%s", took.Round(time.Millisecond), promised, lastLines(stderr, 8))
	}
	m := regexp.MustCompile(`syslog_dropped=(\d+)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no syslog_dropped in the summary:\n%s", lastLines(stderr, 8))
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 {
		t.Errorf("syslog_dropped=%d, want the undelivered alerts counted", n)
	}
	if !regexp.MustCompile(`undelivered=\d+`).MatchString(stderr) {
		t.Errorf("the undelivered alerts are not logged:\n%s", lastLines(stderr, 8))
	}
}
