package main

import (
	"context"
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
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var stdout, stderr syncBuffer
			cmd := startSensor(t, ctx, victim, &stdout, &stderr, []string{"ICMPIDS_ENGINE_HOLD_TIME=5s"},
				"run", "-i", vIf,
				"--capture-method", method, "--format", "eve", "--stats-interval", "0")
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
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
