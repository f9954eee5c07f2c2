package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLivePathMTUDiscovery is icmp_error_abuse's benign twin, live: real
// path-MTU discovery. The sender namespace becomes a router to a third
// namespace, a server, over a link whose MTU on the router's side is 1492,
// then 1400, then 1280; the victim, a client, sends 300 kB over TCP to the
// server on IPv4 and IPv6 with its 1500-byte MTU and DF each time. The
// router's kernel answers with fragmentation-needed and Packet Too Big
// (the link's MTU), the client's kernel lowers its path MTU, the transfers
// complete. The sensor on the client's
// interface sees those errors and must raise nothing. The test checks that
// PMTUD did happen (the client's route cache holds the link's MTU for
// both families), so it cannot pass by the errors never being sent.
func TestLivePathMTUDiscovery(t *testing.T) {
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	tb := newToolbed(t)
	needTool(t, "nc")
	id := os.Getpid()%200 + 20
	server := netns(fmt.Sprintf("icmpids-tsrv%d", id))
	routerIf, serverIf := fmt.Sprintf("ids-rs%d", id), fmt.Sprintf("ids-sr%d", id)
	server4, router4 := fmt.Sprintf("10.236.%d.2", id), fmt.Sprintf("10.236.%d.1", id)
	server6, router6 := fmt.Sprintf("2001:db9:%x::2", id), fmt.Sprintf("2001:db9:%x::1", id)
	sh(t, "ip", "netns", "add", string(server))
	t.Cleanup(func() { exec.Command("ip", "netns", "del", string(server)).Run() })
	sh(t, "ip", "link", "add", routerIf, "netns", string(tb.sender), "type", "veth", "peer", "name", serverIf, "netns", string(server))
	for _, k := range []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"} {
		sh(t, "ip", "netns", "exec", string(tb.sender), "sysctl", "-qw", k)
	}
	sh(t, "ip", "netns", "exec", string(server), "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
	sh(t, "ip", "-n", string(tb.sender), "addr", "add", router4+"/24", "dev", routerIf)
	sh(t, "ip", "-n", string(tb.sender), "addr", "add", router6+"/64", "dev", routerIf, "nodad")
	sh(t, "ip", "-n", string(tb.sender), "link", "set", routerIf, "up")
	sh(t, "ip", "-n", string(server), "addr", "add", server4+"/24", "dev", serverIf)
	sh(t, "ip", "-n", string(server), "addr", "add", server6+"/64", "dev", serverIf, "nodad")
	sh(t, "ip", "-n", string(server), "link", "set", serverIf, "up")
	sh(t, "ip", "-n", string(server), "link", "set", "lo", "up")
	sh(t, "ip", "-n", string(server), "route", "add", "default", "via", router4)
	sh(t, "ip", "-n", string(server), "-6", "route", "add", "default", "via", router6)
	sh(t, "ip", "-n", string(tb.victim), "route", "add", fmt.Sprintf("10.236.%d.0/24", id), "via", tb.senderAddr)
	sh(t, "ip", "-n", string(tb.victim), "-6", "route", "add", fmt.Sprintf("2001:db9:%x::/64", id), "via", tb.sender6)
	time.Sleep(300 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	sensor := startSensor(t, ctx, tb.victim, &stdout, &stderr, []string{"ICMPIDS_ENGINE_HOLD_TIME=2s"},
		"run", "-i", tb.victimIf, "--format", "eve", "--stats-interval", "0")

	// Path MTUs only shrink in the client's cache: each link MTU below the
	// last makes the router send new errors.
	port := 5000
	for _, mtu := range []string{"1492", "1400", "1280"} {
		sh(t, "ip", "-n", string(tb.sender), "link", "set", routerIf, "mtu", mtu)
		for _, c := range []struct{ family, addr string }{{"-4", server4}, {"-6", server6}} {
			port++
			listen := exec.CommandContext(ctx, "ip", "netns", "exec", string(server), "timeout", "15", "nc", c.family, "-l", c.addr, fmt.Sprint(port))
			if err := listen.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			send := exec.CommandContext(ctx, "ip", "netns", "exec", string(tb.victim), "sh", "-c",
				fmt.Sprintf("head -c 300000 /dev/urandom | timeout 10 nc %s -q 1 %s %d", c.family, c.addr, port))
			if out, err := send.CombinedOutput(); err != nil {
				t.Fatalf("TCP transfer %s to %s: %v\n%s", c.family, c.addr, err, out)
			}
			listen.Wait()
			route, err := exec.Command("ip", "-n", string(tb.victim), c.family, "route", "get", c.addr).CombinedOutput()
			if err != nil {
				t.Fatalf("ip route get %s: %v\n%s", c.addr, err, route)
			}
			if !strings.Contains(string(route), "mtu "+mtu) {
				t.Fatalf("no path-MTU discovery to %s happened at link MTU %s (the router sent no error the sensor could judge): %s", c.addr, mtu, route)
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	sensor.Process.Signal(syscall.SIGTERM)
	sensor.Wait()
	if evs := summary(parseEVE(t, stdout.String())); len(evs) > 0 {
		t.Errorf("genuine path-MTU discovery raised %v", evs)
	}
}
