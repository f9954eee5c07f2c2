//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLiveFloodInNamespace runs the real sensor on the victim's veth inside
// a test namespace, with every capture setup: libpcap with one engine and
// with two workers; AF_PACKET with one socket, and with a fanout group of
// two sockets feeding two engines or one (each reader routing by victim).
// Normal pings raise nothing; a bounded `ping -f` raises exactly one
// icmp_flood start for the victim and its end, from the wall-clock ticks of
// the idle engine after the flood (hold time 2 s); the capture statistics
// on exit show no kernel drop. The pinger's own replies raise nothing.
func TestLiveFloodInNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"libpcap", nil},
		{"libpcap, workers 2", []string{"--workers", "2"}},
		{"afpacket, one socket", []string{"--capture-method", "afpacket"}},
		{"afpacket, fanout 2, workers 2", []string{"--capture-method", "afpacket", "--fanout", "2", "--workers", "2"}},
		{"afpacket, fanout 2, one engine", []string{"--capture-method", "afpacket", "--fanout", "2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sender, victim, vIf, vAddr := liveTestbed(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var stdout, stderr syncBuffer
			cmd := startSensor(t, ctx, victim, &stdout, &stderr, []string{"ICMPIDS_ENGINE_HOLD_TIME=2s"},
				append([]string{"run", "-i", vIf, "--format", "eve", "--stats-interval", "0"}, c.flags...)...)
			if slices.Contains(c.flags, "afpacket") && !strings.Contains(stderr.String(), "method=afpacket") {
				t.Fatalf("not capturing with afpacket:\n%s", stderr.String())
			}
			sh(t, "ip", "netns", "exec", string(sender), "ping", "-c", "5", "-i", "0.2", "-W", "1", vAddr)
			time.Sleep(500 * time.Millisecond)
			if out := stdout.String(); out != "" {
				t.Fatalf("normal pings raised alerts: %s", out)
			}
			floodCtx, floodCancel := context.WithTimeout(ctx, 15*time.Second)
			defer floodCancel()
			flood := exec.CommandContext(floodCtx, "ip", "netns", "exec", string(sender),
				"ping", "-f", "-l", "16", "-c", "30000", "-w", "8", "-q", vAddr)
			if out, err := flood.CombinedOutput(); err != nil {
				t.Logf("ping -f: %v\n%s", err, out)
			} else {
				t.Logf("ping -f: %s", strings.TrimSpace(string(out)))
			}
			waitFor(t, 10*time.Second, func() bool { return strings.Contains(stdout.String(), `"phase":"end"`) }, "the end event", &stderr)
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			evs := parseEVE(t, stdout.String())
			got := summary(evs)
			want := []string{"icmp_flood start " + vAddr, "icmp_flood end " + vAddr}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("events:\n%s\nwant:\n%s\nstderr:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), stderr.String())
			}
			log := stderr.String()
			if !strings.Contains(log, "capture statistics at exit") || !strings.Contains(log, "kernel_dropped=0") {
				t.Errorf("no drop-free capture statistics on exit:\n%s", log)
			}
			t.Logf("start: %.0f pps; sensor log:\n%s", evs[0].Alert.Context.Attack.PPS, log)
		})
	}
}

// TestAFPacketConfigErrors: capture.method and capture.fanout are checked
// and their errors name the key; afpacket on "any" is refused as bad usage.
func TestAFPacketConfigErrors(t *testing.T) {
	for _, c := range []struct {
		env  string
		args []string
		want string
	}{
		{"netmap", nil, `capture.method: "netmap" is not one of pcap, afpacket`},
		{"", []string{"--fanout", "2"}, "capture.fanout: 2 needs capture.method afpacket"},
		{"", []string{"--capture-method", "afpacket", "--fanout", "-1"}, "capture.fanout: -1 is out of range"},
	} {
		t.Run(strings.Join(c.args, " ")+c.env, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("ICMPIDS_CAPTURE_METHOD", c.env)
			}
			code, _, stderr := icmpids(t, append([]string{"run", "-i", "lo"}, c.args...)...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, c.want)
			}
		})
	}
	if os.Geteuid() == 0 {
		code, _, stderr := icmpids(t, "run", "-i", "any", "--capture-method", "afpacket")
		if code != 2 || !strings.Contains(stderr, "capture.method afpacket") || !strings.Contains(stderr, `"any"`) {
			t.Errorf(`afpacket on "any": exit %d, stderr %q`, code, stderr)
		}
	}
}
