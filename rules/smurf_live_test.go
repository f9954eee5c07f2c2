//go:build linux

package rules_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/internal/testenv"
	"github.com/icmpids/icmpids/rules"
)

// The live test builds a switched LAN in network namespaces it creates and
// deletes: a bridge (namespace "sw"), reflectors r1..r5 that answer
// broadcast pings, a victim and an attacker. The attacker writes a bounded
// number of echo requests to the directed broadcast 10.9.0.255 with the
// victim's address as source straight onto its wire (AF_PACKET); the
// sensor, libpcap on the victim's interface, must report one smurf attack
// on the victim with both sides seen. Roles run as helper processes (this
// test binary re-executed under "ip netns exec").

const (
	smurfLiveRoleEnv = "ICMPIDS_SMURF_LIVE_ROLE"
	smurfLiveVictim  = "10.9.0.100"
	smurfLiveBcast   = "10.9.0.255"
	smurfLiveReflect = 5
	smurfLiveCount   = 300 // requests sent
	smurfLiveRate    = 150 // requests/s
)

func smurfLiveConfig() rules.SmurfConfig {
	c := rules.DefaultSmurfConfig()
	c.ReplyPPS = 100 // 5 reflectors x 150 requests/s = 750 replies/s
	c.MinReflectors = 4
	c.HomeNetworks = []string{"10.9.0.0/24"}
	return c
}

func TestSmurfLive(t *testing.T) {
	if os.Getenv(smurfLiveRoleEnv) != "" {
		t.Skip("helper process")
	}
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("live test needs root (network namespaces, raw sockets)")
	}
	testenv.Tool(t, "ip")
	pfx := fmt.Sprintf("icmpids-smurf-%d-", os.Getpid())
	ns := func(n string) string { return pfx + n }
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	hosts := []string{"victim", "attacker"}
	addrs := map[string]string{"victim": smurfLiveVictim, "attacker": "10.9.0.66"}
	for i := 1; i <= smurfLiveReflect; i++ {
		h := fmt.Sprintf("r%d", i)
		hosts = append(hosts, h)
		addrs[h] = fmt.Sprintf("10.9.0.%d", i)
	}
	if err := run("netns", "add", ns("sw")); err != nil {
		t.Skipf("cannot create network namespaces here: %v", err)
	}
	t.Cleanup(func() { _ = run("netns", "del", ns("sw")) })
	must := func(args ...string) {
		t.Helper()
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	must("-n", ns("sw"), "link", "add", "br0", "type", "bridge")
	must("-n", ns("sw"), "link", "set", "br0", "up")
	for i, h := range hosts {
		must("netns", "add", ns(h))
		t.Cleanup(func() { _ = run("netns", "del", ns(h)) })
		port := fmt.Sprintf("p%d", i)
		must("-n", ns("sw"), "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns(h))
		must("-n", ns("sw"), "link", "set", port, "master", "br0", "up")
		must("-n", ns(h), "addr", "add", addrs[h]+"/24", "dev", "eth0")
		must("-n", ns(h), "link", "set", "eth0", "up")
		must("-n", ns(h), "link", "set", "lo", "up")
		must("netns", "exec", ns(h), "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_broadcasts=0")
	}

	helper := func(role, nsName string) *exec.Cmd {
		cmd := exec.Command("ip", "netns", "exec", ns(nsName), os.Args[0], "-test.run=^TestSmurfLiveHelper$", "-test.v")
		cmd.Env = append(os.Environ(), smurfLiveRoleEnv+"="+role)
		return cmd
	}
	sensor := helper("sensor", "victim")
	stdin, err := sensor.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sensor.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sensor.Stderr = os.Stderr
	if err := sensor.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sensor.Process.Kill(); _ = sensor.Wait() })
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var events []string
	readUntil := func(prefix string, timeout time.Duration) bool {
		deadline := time.After(timeout)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return false
				}
				if strings.HasPrefix(l, "EVENT ") {
					events = append(events, strings.TrimPrefix(l, "EVENT "))
				}
				if strings.HasPrefix(l, prefix) {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	if !readUntil("READY", 10*time.Second) {
		t.Fatal("sensor did not start")
	}
	// Let ARP and IPv6 chatter settle, then attack.
	time.Sleep(300 * time.Millisecond)
	if out, err := helper("attacker", "attacker").CombinedOutput(); err != nil {
		t.Fatalf("attacker: %v\n%s", err, out)
	}
	time.Sleep(500 * time.Millisecond)
	stdin.Close() // the sensor stops, ends open attacks and reports
	if !readUntil("DONE", 10*time.Second) {
		t.Fatalf("sensor did not finish; events so far: %q", events)
	}
	t.Logf("sensor events: %q", events)
	var starts, ends int
	for _, ev := range events {
		f := strings.Fields(ev) // rule phase target sides reflectors
		if len(f) < 5 || f[0] != "smurf" {
			if len(f) > 0 && f[0] == "icmp_flood" {
				t.Errorf("icmp_flood raised: %s", ev)
			}
			continue
		}
		if f[2] != smurfLiveVictim {
			t.Errorf("smurf target %s, want %s", f[2], smurfLiveVictim)
		}
		switch f[1] {
		case "start":
			starts++
		case "end":
			ends++
			if f[3] != "request+reply" {
				t.Errorf("sides %s, want request+reply", f[3])
			}
			var refl int
			fmt.Sscan(f[4], &refl)
			if refl < smurfLiveReflect-1 || refl > smurfLiveReflect+1 {
				t.Errorf("reflectors %d, want about %d", refl, smurfLiveReflect)
			}
		}
	}
	if starts != 1 || ends != 1 {
		t.Fatalf("smurf: %d starts, %d ends, want 1 each", starts, ends)
	}
}

// TestSmurfLiveHelper is the sensor or the attacker of TestSmurfLive, run in
// a namespace; it does nothing otherwise.
func TestSmurfLiveHelper(t *testing.T) {
	switch os.Getenv(smurfLiveRoleEnv) {
	case "sensor":
		if err := smurfLiveSensor(); err != nil {
			t.Fatal(err)
		}
	case "attacker":
		if err := smurfLiveAttack(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Skip("run by TestSmurfLive")
	}
}

// smurfLiveSensor captures on eth0 until standard input closes (or 30 s),
// printing "EVENT rule phase target sides reflectors" per event.
func smurfLiveSensor() error {
	live, err := capture.OpenLive(capture.LiveConfig{Interface: "eth0", Immediate: true, ReadTimeout: 50 * time.Millisecond})
	if err != nil {
		return err
	}
	defer live.Close()
	s, err := rules.NewSmurf(smurfLiveConfig())
	if err != nil {
		return err
	}
	sink := detector.SinkFunc(func(ev *detector.Event) {
		refl, _ := ev.Extra["reflectors"].(uint64)
		sides, _ := ev.Extra["sides"].(string)
		fmt.Printf("EVENT %s %s %s %s %d\n", ev.Rule.Name, ev.Phase, ev.Target, sides, refl)
	})
	e, err := detector.New(detector.DefaultConfig(), sink, rules.NewFlood(rules.DefaultFloodConfig()), s)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stop) }()
	fmt.Println("READY")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-stop:
			deadline = time.Time{}
			continue
		default:
		}
		fr, err := live.Next()
		switch {
		case errors.Is(err, capture.ErrTimeout):
			e.Advance(time.Now())
			continue
		case err != nil:
			return err
		}
		e.HandleFrame(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length)
	}
	e.Close(detector.EndShutdown)
	fmt.Println("DONE")
	return nil
}

// smurfLiveAttack writes smurfLiveCount spoofed echo requests to the
// directed broadcast onto eth0 at smurfLiveRate.
func smurfLiveAttack() error {
	frames, err := synth.Smurf{Victim: netip.MustParseAddr(smurfLiveVictim), Broadcast: netip.MustParseAddr(smurfLiveBcast),
		Requests: true, Start: time.Now(), Rate: smurfLiveRate, Count: smurfLiveCount, ID: 0x5353}.Frames()
	if err != nil {
		return err
	}
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		return err
	}
	const ethPAll = 0x0300 // htons(ETH_P_ALL)
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, ethPAll)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer syscall.Close(fd)
	to := &syscall.SockaddrLinklayer{Protocol: ethPAll, Ifindex: ifi.Index}
	for _, f := range frames {
		if d := time.Until(f.Time); d > 0 {
			time.Sleep(d)
		}
		if err := syscall.Sendto(fd, f.Data, 0, to); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	return nil
}
