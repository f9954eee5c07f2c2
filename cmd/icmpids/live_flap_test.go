package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLiveLinkFlap: the capture interface goes down for three seconds in the
// middle of a flood and comes back; with libpcap and with AF_PACKET the
// sensor keeps running, logs the link going down and up once each, and the
// flood stays one attack.
func TestLiveLinkFlap(t *testing.T) {
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	for _, method := range []string{"pcap", "afpacket"} {
		t.Run(method, func(t *testing.T) {
			sender, victim, vIf, vAddr := liveTestbed(t)
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", string(victim), exe, "run", "-i", vIf,
				"--capture-method", method, "--format", "eve", "--stats-interval", "0")
			cmd.Env = append(os.Environ(), "ICMPIDS_TEST_AS_MAIN=1", "ICMPIDS_ENGINE_HOLD_TIME=5s")
			var stdout, stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			waitFor(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "capturing") }, "sensor start", &stderr)
			flood := func(secs string) {
				fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
				defer fcancel()
				exec.CommandContext(fctx, "ip", "netns", "exec", string(sender), "ping", "-f", "-l", "8", "-w", secs, "-q", vAddr).Run()
			}
			flood("2")
			sh(t, "ip", "-n", string(victim), "link", "set", vIf, "down")
			time.Sleep(3 * time.Second) // the link is checked every second

			select {
			case err := <-exited:
				t.Fatalf("the sensor exited while the link was down: %v\n%s", err, stderr.String())
			default:
			}
			sh(t, "ip", "-n", string(victim), "link", "set", vIf, "up")
			time.Sleep(1500 * time.Millisecond)
			flood("2")
			waitFor(t, 15*time.Second, func() bool { return strings.Contains(stdout.String(), `"phase":"end"`) }, "the end event", &stderr)
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			log := stderr.String()
			if strings.Count(log, "link down") != 1 || strings.Count(log, "link up again") != 1 {
				t.Errorf("link down/up not logged once each:\n%s", log)
			}
			got := summary(parseEVE(t, stdout.String()))
			if strings.Join(got, "|") != "icmp_flood start "+vAddr+"|icmp_flood end "+vAddr {
				t.Errorf("events %v: the flood must stay one attack across the flap\n%s", got, log)
			}
		})
	}
}
