package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket/pcap"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/internal/testenv"
)

// TestMain lets the test binary act as the icmpids command when
// ICMPIDS_TEST_AS_MAIN is set, so live tests can run the real program
// (inside a network namespace) without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("ICMPIDS_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	if spec := os.Getenv("ICMPIDS_TEST_INJECT"); spec != "" {
		// IFACE=PCAP: write the capture's frames onto IFACE (run inside a
		// test namespace by the live tests), then exit.
		iface, path, _ := strings.Cut(spec, "=")
		if err := inject(iface, path); err != nil {
			fmt.Fprintln(os.Stderr, "inject:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// Events name their sensor (EVE host, attack ids): the same name on
	// every machine keeps the golden files exact.
	os.Setenv("ICMPIDS_SENSOR_NAME", "test-sensor")
	debDir := startDebBuildEarly()
	code := m.Run()
	if debDir != "" {
		os.RemoveAll(debDir)
	}
	os.Exit(code)
}

// inject writes every frame of the pcap at path onto iface with libpcap.
func inject(iface, path string) error {
	h, err := pcap.OpenLive(iface, 65535, false, pcap.BlockForever)
	if err != nil {
		return err
	}
	defer h.Close()
	r, err := capture.OpenFile(path)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		fr, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := h.WritePacketData(fr.Data); err != nil {
			return fmt.Errorf("write to %s: %w", iface, err)
		}
	}
}

// netns is a network namespace the test created; it is deleted on cleanup.
type netns string

func sh(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// testbed is two test namespaces joined by a veth pair.
type testbed struct {
	sender, victim         netns
	senderIf, victimIf     string
	senderAddr, victimAddr string
}

// liveTestbed creates two namespaces joined by a veth pair: a sender and a
// victim with addresses in 10.231.x.0/24, private to the test. It skips
// unless the test runs as root with iproute2 and ping.
func liveTestbed(t *testing.T) (sender, victim netns, victimIf, victimAddr string) {
	tb := newTestbed(t)
	return tb.sender, tb.victim, tb.victimIf, tb.victimAddr
}

func newTestbed(t *testing.T) testbed {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture test needs root (network namespaces, raw capture)")
	}
	testenv.Tools(t, "ip", "ping")
	id := os.Getpid() % 200
	sender, victim := netns(fmt.Sprintf("icmpids-s%d", id)), netns(fmt.Sprintf("icmpids-v%d", id))
	sIf, vIf := fmt.Sprintf("ids-s%d", id), fmt.Sprintf("ids-v%d", id)
	sAddr, vAddr := fmt.Sprintf("10.231.%d.1", id), fmt.Sprintf("10.231.%d.2", id)
	sh(t, "ip", "netns", "add", string(sender))
	t.Cleanup(func() { exec.Command("ip", "netns", "del", string(sender)).Run() })
	sh(t, "ip", "netns", "add", string(victim))
	t.Cleanup(func() { exec.Command("ip", "netns", "del", string(victim)).Run() })
	sh(t, "ip", "link", "add", sIf, "netns", string(sender), "type", "veth", "peer", "name", vIf, "netns", string(victim))
	sh(t, "ip", "-n", string(sender), "addr", "add", sAddr+"/24", "dev", sIf)
	sh(t, "ip", "-n", string(victim), "addr", "add", vAddr+"/24", "dev", vIf)
	sh(t, "ip", "-n", string(sender), "link", "set", sIf, "up")
	sh(t, "ip", "-n", string(victim), "link", "set", vIf, "up")
	sh(t, "ip", "-n", string(sender), "link", "set", "lo", "up")
	sh(t, "ip", "-n", string(victim), "link", "set", "lo", "up")
	return testbed{sender, victim, sIf, vIf, sAddr, vAddr}
}

// TestLiveReloadRules: SIGHUP re-reads the configuration and applies new
// thresholds to the running sensor. With echo_pps at 10 million a bounded
// ping -f raises nothing; after the file is rewritten with 1,000 and the
// sensor gets SIGHUP, the same flood is reported. The EVE file is reopened
// too (logrotate): alerts after the HUP land in the new file.
func TestLiveReloadRules(t *testing.T) {
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	sender, victim, vIf, vAddr := liveTestbed(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "icmpids.yaml")
	evePath := filepath.Join(dir, "eve.json")
	writeCfg := func(pps int) {
		t.Helper()
		yaml := fmt.Sprintf("engine:\n  hold_time: 2s\nrules:\n  icmp_flood:\n    echo_pps: %d\n    any_pps: %d\n", pps, 2*pps)
		if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(10_000_000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr syncBuffer
	cmd := startSensor(t, ctx, victim, nil, &stderr, nil,
		"run", "-i", vIf, "--config", cfgPath, "--format", "none", "--eve", evePath, "--stats-interval", "0")
	flood := func() {
		t.Helper()
		fctx, fcancel := context.WithTimeout(ctx, 15*time.Second)
		defer fcancel()
		exec.CommandContext(fctx, "ip", "netns", "exec", string(sender),
			"ping", "-f", "-l", "16", "-c", "20000", "-w", "8", "-q", vAddr).Run()
	}
	flood()
	time.Sleep(3 * time.Second) // more than the hold time: anything would have ended
	if data, _ := os.ReadFile(evePath); len(data) != 0 {
		t.Fatalf("alerts above a 10M pps threshold: %s", data)
	}
	writeCfg(1000)
	if err := os.Rename(evePath, evePath+".1"); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "configuration reloaded") }, "reload", &stderr)
	flood()
	waitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(evePath)
		return strings.Contains(string(data), `"phase":"end"`)
	}, "alerts after the reload in the reopened EVE file", &stderr)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	data, _ := os.ReadFile(evePath)
	got := summary(parseEVE(t, string(data)))
	want := []string{"icmp_flood start " + vAddr, "icmp_flood end " + vAddr}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events after the reload: %v, want %v\nstderr:\n%s", got, want, stderr.String())
	}
	if !strings.Contains(stderr.String(), "rules.icmp_flood.echo_pps") {
		t.Errorf("the reload log does not name the applied key:\n%s", stderr.String())
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool, what string, log fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stderr:\n%s", what, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a writing process and a polling test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLivePingOfDeath: on a live veth in test namespaces, a legal
// `ping -s 65000` raises nothing, and a Ping of Death crafted by the test
// (an echo request of 65,600 bytes in 1,480-byte fragments, written onto
// the sender's veth with libpcap) raises exactly one ping_of_death for the
// victim, with the computed size.
func TestLivePingOfDeath(t *testing.T) {
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	tb := newTestbed(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	cmd := startSensor(t, ctx, tb.victim, &stdout, &stderr, nil,
		"run", "-i", tb.victimIf, "--format", "eve", "--stats-interval", "0")

	sh(t, "ip", "netns", "exec", string(tb.sender), "ping", "-c", "2", "-i", "0.3", "-s", "65000", "-W", "2", tb.victimAddr)
	time.Sleep(500 * time.Millisecond)
	if out := stdout.String(); out != "" {
		t.Fatalf("a legal 65,000-byte ping raised: %s", out)
	}

	d, pieces := synth.PingTrain(netip.MustParseAddr(tb.senderAddr), netip.MustParseAddr(tb.victimAddr), 4242, 65600, 1480)
	frames, err := d.Frames(pieces, time.Now(), time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	pod := filepath.Join(t.TempDir(), "pod.pcap")
	if err := synth.WritePcapFile(pod, frames); err != nil {
		t.Fatal(err)
	}
	injector := exec.CommandContext(ctx, "ip", "netns", "exec", string(tb.sender), exe)
	injector.Env = append(os.Environ(), "ICMPIDS_TEST_INJECT="+tb.senderIf+"="+pod)
	if out, err := injector.CombinedOutput(); err != nil {
		t.Fatalf("injecting the Ping of Death: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(stdout.String(), "ping_of_death") }, "ping_of_death", &stderr)
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	got := summary(parseEVE(t, stdout.String()))
	want := []string{"ping_of_death start " + tb.victimAddr}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events %v, want %v", got, want)
	}
	if !strings.Contains(stdout.String(), `"reassembled_size":65600`) {
		t.Errorf("alert lacks the computed size 65,600: %s", stdout.String())
	}
}

// startSensor runs this test binary as `icmpids <args>` inside ns, with
// env added to the test's environment, writing to stdout and stderr (nil:
// discarded), and waits until it captures. It is killed when the test
// ends, if it still runs.
func startSensor(t *testing.T, ctx context.Context, ns netns, stdout, stderr *syncBuffer, env []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", string(ns), exe}, args...)...)
	cmd.Env = append(append(os.Environ(), "ICMPIDS_TEST_AS_MAIN=1"), env...)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "capturing") }, "sensor start", stderr)
	return cmd
}
