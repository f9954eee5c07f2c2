package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLiveParasite6ManyAddresses runs THC parasite6 against a victim that
// resolves six addresses of the sender, known to the sensor beforehand (and
// whose own address parasite6 takes too, answering the sender's solicitations):
// one attacker taking over many addresses is one nd_spoof attack (before
// it was one attack per address), whose context counts the addresses.
// Every traffic command is bounded by a count and a timeout.
func TestLiveParasite6ManyAddresses(t *testing.T) {
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	needTool(t, "atk6-parasite6")
	tb := newToolbed(t)
	base := strings.TrimSuffix(tb.sender6, "1")
	addrs := []string{tb.sender6}
	for i := 0x10; i < 0x15; i++ {
		a := fmt.Sprintf("%s%x", base, i)
		sh(t, "ip", "-n", string(tb.sender), "addr", "add", a+"/64", "dev", tb.senderIf, "nodad")
		addrs = append(addrs, a)
	}
	cfg := filepath.Join(t.TempDir(), "icmpids.yaml")
	if err := os.WriteFile(cfg, []byte("engine:\n  hold_time: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	sensor := startSensor(t, ctx, tb.victim, &stdout, &stderr, nil,
		"run", "-i", tb.victimIf, "--config", cfg, "--format", "eve", "--stats-interval", "0")
	// The victim resolves every address once with no attacker (the
	// sensor learns the real bindings), then again, twice, while parasite6
	// answers every solicitation with its MAC.
	pings := ""
	for _, a := range addrs {
		pings += fmt.Sprintf("ping -6 -c 1 -W 1 %s >/dev/null; ", a)
	}
	victim := fmt.Sprintf("ip neigh flush dev %[1]s; %[2]s sleep 1.5; for i in 1 2; do ip neigh flush dev %[1]s; %[2]s sleep 0.5; done", tb.victimIf, pings)
	attack := exec.CommandContext(ctx, "ip", "netns", "exec", string(tb.sender), "sh", "-c",
		fmt.Sprintf("sleep 1; timeout 8 atk6-parasite6 %s 02:00:00:00:66:66 >/dev/null 2>&1", tb.senderIf))
	if err := attack.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", string(tb.victim), "sh", "-c", victim).CombinedOutput(); err != nil {
		t.Logf("victim's pings: %v: %s", err, out)
	}
	attack.Wait()
	time.Sleep(6 * time.Second) // hold time: the attack ends
	sensor.Process.Signal(syscall.SIGTERM)
	sensor.Wait()
	var starts []string
	var addresses float64
	for _, l := range strings.Split(stdout.String(), "\n") {
		var ev struct {
			Alert struct {
				Context struct {
					Attack map[string]any `json:"attack"`
				} `json:"context"`
			} `json:"alert"`
		}
		if json.Unmarshal([]byte(l), &ev) != nil {
			continue
		}
		a := ev.Alert.Context.Attack
		if a["rule"] != "nd_spoof" {
			continue
		}
		if a["phase"] == "start" {
			starts = append(starts, fmt.Sprint(a["target"]))
		}
		if n, ok := a["addresses"].(float64); ok && n > addresses {
			addresses = n
		}
	}
	if len(starts) != 1 || addresses < 3 {
		t.Errorf("nd_spoof starts %v with at most %v addresses: want one attack over the addresses parasite6 took (%d resolved)\n%s",
			starts, addresses, len(addrs), stderr.String())
	}
}
