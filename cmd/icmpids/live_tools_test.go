package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icmpids/icmpids/internal/testenv"
)

// toolbed is two test namespaces on a veth pair with IPv4 and IPv6: the
// attacker runs real attack tools, the victim runs the sensor.
type toolbed struct {
	testbed
	sender6, victim6 string // global IPv6 addresses
	victimLL         string // the victim's link-local (EUI-64) address
	senderLL         string // the sender's link-local (EUI-64) address: radvd's RAs come from it
	senderMAC        string
	sweepNet         string // an IPv4 /24 routed through the victim
}

func newToolbed(t *testing.T) toolbed {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live tool test needs root (network namespaces, raw capture)")
	}
	id := os.Getpid()%200 + 20
	tb := testbed{
		sender: netns(fmt.Sprintf("icmpids-ts%d", id)), victim: netns(fmt.Sprintf("icmpids-tv%d", id)),
		senderIf: fmt.Sprintf("ids-ts%d", id), victimIf: fmt.Sprintf("ids-tv%d", id),
		senderAddr: fmt.Sprintf("10.234.%d.1", id), victimAddr: fmt.Sprintf("10.234.%d.2", id),
	}
	for _, ns := range []netns{tb.sender, tb.victim} {
		sh(t, "ip", "netns", "add", string(ns))
		ns := ns
		t.Cleanup(func() { exec.Command("ip", "netns", "del", string(ns)).Run() })
		// No duplicate address detection: addresses usable at once.
		for _, k := range []string{"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.disable_ipv6=0"} {
			sh(t, "ip", "netns", "exec", string(ns), "sysctl", "-qw", k)
		}
	}
	sh(t, "ip", "link", "add", tb.senderIf, "netns", string(tb.sender), "type", "veth", "peer", "name", tb.victimIf, "netns", string(tb.victim))
	tt := toolbed{testbed: tb,
		sender6: fmt.Sprintf("2001:db8:%x::1", id), victim6: fmt.Sprintf("2001:db8:%x::2", id),
		sweepNet: fmt.Sprintf("10.235.%d.0/24", id)}
	for _, side := range []struct {
		ns          netns
		ifc, a4, a6 string
	}{{tb.sender, tb.senderIf, tb.senderAddr, tt.sender6}, {tb.victim, tb.victimIf, tb.victimAddr, tt.victim6}} {
		sh(t, "ip", "-n", string(side.ns), "addr", "add", side.a4+"/24", "dev", side.ifc)
		sh(t, "ip", "-n", string(side.ns), "addr", "add", side.a6+"/64", "dev", side.ifc, "nodad")
		sh(t, "ip", "-n", string(side.ns), "link", "set", side.ifc, "up")
		sh(t, "ip", "-n", string(side.ns), "link", "set", "lo", "up")
	}
	// The sweep's /24 is routed through the victim, so the sensor on the
	// victim's interface sees every probe (no ARP for absent hosts).
	sh(t, "ip", "-n", string(tb.sender), "route", "add", tt.sweepNet, "via", tb.victimAddr)
	for _, side := range []struct {
		ns     netns
		ifc    string
		ll, hw *string
	}{{tb.victim, tb.victimIf, &tt.victimLL, nil}, {tb.sender, tb.senderIf, &tt.senderLL, &tt.senderMAC}} {
		out, err := exec.Command("ip", "netns", "exec", string(side.ns), "cat", "/sys/class/net/"+side.ifc+"/address").Output()
		if err != nil {
			t.Fatal(err)
		}
		mac, err := net.ParseMAC(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatal(err)
		}
		*side.ll = eui64LinkLocal(mac).String()
		if side.hw != nil {
			*side.hw = mac.String()
		}
	}
	time.Sleep(300 * time.Millisecond) // link-local addresses come up
	return tt
}

// eui64LinkLocal is the modified EUI-64 link-local address of mac.
func eui64LinkLocal(mac net.HardwareAddr) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 8: mac[0] ^ 2, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe, 13: mac[3], 14: mac[4], 15: mac[5]})
}

// TestLiveAttackTools runs real attack tools from Debian (hping3, nmap,
// THC-IPv6) in a test namespace against a live sensor in another, and
// checks each raises its rule on its target, and that ordinary tools
// (ping) raise nothing. Every traffic command is bounded by a count and a
// timeout, and only the namespaces' own addresses are used.
func TestLiveAttackTools(t *testing.T) {
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	tb := newToolbed(t)
	sweepBase := strings.TrimSuffix(tb.sweepNet, "0/24")
	// radvd is the legitimate router of the benign twin: periodic RAs
	// every 3-4 s with a prefix, as a real IPv6 LAN has.
	radvdDir := t.TempDir()
	radvdConf := filepath.Join(radvdDir, "radvd.conf")
	prefix6 := strings.TrimSuffix(tb.sender6, "1") + "/64"
	if err := os.WriteFile(radvdConf, []byte(fmt.Sprintf(`interface %s {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	prefix %s { AdvOnLink on; AdvAutonomous on; };
};
`, tb.senderIf, prefix6)), 0o644); err != nil {
		t.Fatal(err)
	}
	// radvdFor runs radvd for secs seconds; radvdThen runs radvd and,
	// once its first RAs are out, cmd.
	radvdFor := func(secs int) string {
		return fmt.Sprintf("sysctl -qw net.ipv6.conf.all.forwarding=1; timeout %d radvd -n -m stderr -C %s -p %s; sysctl -qw net.ipv6.conf.all.forwarding=0",
			secs, radvdConf, filepath.Join(radvdDir, "radvd.pid"))
	}
	radvdThen := func(cmd string) []string {
		return []string{"sh", "-c", fmt.Sprintf("(%s) & sleep 1.1; %s; wait", radvdFor(7), cmd)}
	}
	const rogueMAC = "02:00:00:00:66:66"
	tests := []struct {
		name   string
		tool   string   // needed on PATH
		config string   // extra YAML under rules:
		before []string // commands in the victim namespace first (background), if any
		run    []string // the command in the sender namespace
		want   string   // "rule target [reason]" that must start; "" = nothing may
	}{
		{"hping3 BlackNurse (3/3 at 25k pps)", "hping3", "", nil,
			[]string{"timeout", "8", "hping3", "--icmp", "-C", "3", "-K", "3", "-i", "u40", "-c", "30000", "-q", tb.victimAddr},
			"blacknurse " + tb.victimAddr},
		{"hping3 redirect to gateway 0.0.0.0", "hping3", "", nil,
			[]string{"timeout", "5", "hping3", "--icmp", "-C", "5", "-K", "1", "--icmp-gw", "0.0.0.0", "-c", "3", "-i", "u200000", tb.victimAddr},
			"icmp_redirect " + tb.victimAddr},
		{"hping3 source quench (default embedded header)", "hping3", "", nil,
			[]string{"timeout", "5", "hping3", "--icmp", "-C", "4", "-c", "2", "-i", "u200000", tb.victimAddr},
			"icmp_error_abuse " + tb.victimAddr},
		{"hping3 time exceeded x3 (a quote the victim never sent)", "hping3", "", nil,
			[]string{"timeout", "5", "hping3", "--icmp", "-C", "11", "-c", "3", "-i", "u200000", tb.victimAddr},
			"icmp_error_abuse " + tb.victimAddr},
		// hping3 3.0 cannot send type 12 ("Unsupported icmp type!"): scapy
		// forges parameter problems the way hping3 forges the others, with
		// a quote of a packet the victim never sent.
		{"scapy parameter problem x3 (a quote the victim never sent)", "/usr/bin/python3", "", nil,
			[]string{"/usr/bin/python3", "-c", fmt.Sprintf("from scapy.all import *; send(IP(src='%[1]s',dst='%[2]s')/ICMP(type=12,code=0,ptr=20)/IP(src='192.0.2.99',dst='%[1]s')/UDP(sport=1234,dport=53),count=3,inter=0.2,verbose=0)", tb.senderAddr, tb.victimAddr)},
			"icmp_error_abuse " + tb.victimAddr + " quote_mismatch"},
		{"nmap -sn -PE sweep of a /24", "nmap", "", nil,
			[]string{"timeout", "30", "nmap", "-sn", "-PE", "--send-ip", "-n", "--max-retries", "0", "--max-rtt-timeout", "50ms", "-T5", tb.sweepNet},
			"icmp_sweep " + tb.senderAddr},
		{"nmap -sn -PP (timestamp) sweep", "nmap", "", nil,
			[]string{"timeout", "30", "nmap", "-sn", "-PP", "--send-ip", "-n", "--max-retries", "0", "--max-rtt-timeout", "50ms", "-T5", sweepBase + "0/26"},
			"icmp_sweep " + tb.senderAddr},
		{"THC flood_router26", "atk6-flood_router26", "", nil,
			[]string{"timeout", "3", "atk6-flood_router26", tb.senderIf},
			"ra_flood ff02::1"},
		{"THC flood_router26 -f (RA-Guard bypass: atomic fragments)", "atk6-flood_router26", "", nil,
			[]string{"timeout", "3", "atk6-flood_router26", "-f", tb.senderIf},
			"ra_flood ff02::1"},
		{"THC fake_router26 (routers configured)", "atk6-fake_router26", "  rogue_ra:\n    routers: [fe80::1]\n", nil,
			[]string{"timeout", "3", "atk6-fake_router26", "-A", "2001:db8:bad::/64", tb.senderIf},
			"rogue_ra ff02::1"},
		// radvd is the link's router (learned); a second router in the
		// sender's namespace from another MAC. With radvd's own address
		// and MAC in the option, the frame's source gives it away.
		{"THC fake_router26 lifetime 0 in radvd's name and MAC, from another MAC", "atk6-fake_router26", "", nil,
			radvdThen(fmt.Sprintf("timeout 5 atk6-fake_router26 -s %s -S %s -f %s -l 0 -i 1 -n 3 %s", tb.senderLL, tb.senderMAC, rogueMAC, tb.senderIf)),
			"rogue_ra ff02::1 slla_mismatch"},
		// Learning is not trust: a router that appears while radvd is
		// known, announcing a prefix radvd does not with a higher
		// preference, is rogue within the learning minute.
		{"THC fake_router26 -A -p high while radvd is known (default learning)", "atk6-fake_router26", "  rogue_ra:\n    learning: 60s\n", nil,
			radvdThen(fmt.Sprintf("timeout 5 atk6-fake_router26 -A 2001:db8:bad::/64 -p high -s fe80::bad -S %[1]s -f %[1]s -i 1 -n 3 %[2]s", rogueMAC, tb.senderIf)),
			"rogue_ra ff02::1 new_prefix"},
		// The rogue is running before the real router is heard (a sensor
		// started or restarted into an attack under way).
		{"THC fake_router26 -A -p high already running when radvd is first heard", "atk6-fake_router26", "  rogue_ra:\n    learning: 60s\n", nil,
			[]string{"sh", "-c", fmt.Sprintf(`timeout 8 atk6-fake_router26 -A 2001:db8:bad::/64 -p high -s fe80::bad -S %[1]s -f %[1]s -i 1 -n 6 %[2]s & sleep 1.5
%[3]s; wait`, rogueMAC, tb.senderIf, radvdFor(4))},
			"rogue_ra ff02::1 preference"},
		{"THC kill_router6 in the victim's name", "atk6-kill_router6", "", nil,
			[]string{"timeout", "3", "atk6-kill_router6", tb.senderIf, tb.victimLL},
			"rogue_ra ff02::1"},
		// Every solicitation asks for the victim's address: its cache is
		// the one filling.
		{"THC flood_solicitate6 for the victim's address", "atk6-flood_solicitate6", "", nil,
			[]string{"timeout", "3", "atk6-flood_solicitate6", tb.senderIf, tb.victim6},
			"nd_flood " + tb.victim6},
		{"THC flood_advertise6", "atk6-flood_advertise6", "", nil,
			[]string{"timeout", "3", "atk6-flood_advertise6", tb.senderIf},
			"nd_flood ff02::1"},
		{"THC parasite6 against the victim's solicitations", "atk6-parasite6", "",
			[]string{"sh", "-c", fmt.Sprintf("sleep 1; for i in 1 2 3 4 5; do ip neigh flush dev %s; ping -6 -c 1 -W 1 %s >/dev/null; sleep 0.3; done", tb.victimIf, tb.sender6)},
			[]string{"timeout", "6", "atk6-parasite6", tb.senderIf, "02:00:00:00:66:66"},
			"nd_spoof " + tb.sender6},
		{"THC toobig6 with MTU 1200", "atk6-toobig6", "", nil,
			[]string{"timeout", "5", "atk6-toobig6", tb.senderIf, tb.victim6, tb.sender6, "1200"},
			"icmp_error_abuse " + tb.victim6},
		// The same tool with an MTU above IPv6's minimum quotes a packet
		// larger than the MTU: a Packet Too Big a router could have sent.
		{"THC toobig6 with MTU 1400", "atk6-toobig6", "", nil,
			[]string{"timeout", "5", "atk6-toobig6", tb.senderIf, tb.victim6, tb.sender6, "1400"},
			""},
		// A frag-needed with next-hop MTU 68 forged (scapy) against a real
		// TCP connection of the victim: the quote is the victim's own
		// segment (its port read off the server's socket), so only the MTU
		// gives it away.
		{"scapy frag-needed MTU 68 quoting a real connection", "/usr/bin/python3", "",
			[]string{"sh", "-c", fmt.Sprintf("sleep 1; sleep 6 | timeout 8 nc %s 5003", tb.senderAddr)},
			[]string{"sh", "-c", fmt.Sprintf(`timeout 10 nc -l %[1]s 5003 >/dev/null & sleep 3
port=$(ss -Htn state established '( sport = :5003 )' | awk '{print $4}' | sed 's/.*://' | head -1)
[ -n "$port" ] || { echo "no connection to quote"; exit 3; }
/usr/bin/python3 -c "from scapy.all import *; send(IP(src='%[1]s',dst='%[2]s')/ICMP(type=3,code=4,nexthopmtu=68)/IP(src='%[2]s',dst='%[1]s',flags='DF',len=1500)/TCP(sport=$port,dport=5003,flags='A'),verbose=0)"
kill %%1; wait`, tb.senderAddr, tb.victimAddr)},
			"icmp_error_abuse " + tb.victimAddr + " mtu_below_minimum"},
		// ptunnel-ng carries a TCP stream (200 kB of random bytes) in echo
		// payloads: the proxy in the victim's namespace forwards it to a
		// listener there.
		{"ptunnel-ng TCP over ICMP", "ptunnel-ng", "",
			[]string{"sh", "-c", "timeout 14 nc -l 127.0.0.1 2222 >/dev/null & timeout 14 ptunnel-ng -r127.0.0.1 -R2222 -v -1 >/dev/null 2>&1; wait"},
			[]string{"sh", "-c", fmt.Sprintf("sleep 1; timeout 12 ptunnel-ng -p%s -l4000 -r127.0.0.1 -R2222 -v -1 >/dev/null 2>&1 & sleep 1; head -c 200000 /dev/urandom | timeout 8 nc -q 1 127.0.0.1 4000; kill %%1; wait", tb.victimAddr)},
			"icmp_tunnel " + tb.senderAddr},
		{"radvd, a legitimate router (periodic RAs)", "radvd", "", nil,
			[]string{"sh", "-c", fmt.Sprintf("sysctl -qw net.ipv6.conf.all.forwarding=1; timeout 9 radvd -n -m stderr -C %s -p %s; sysctl -qw net.ipv6.conf.all.forwarding=0",
				radvdConf, filepath.Join(radvdDir, "radvd.pid"))},
			""},
		{"ping", "ping", "", nil, []string{"timeout", "5", "ping", "-c", "5", "-i", "0.2", tb.victimAddr}, ""},
		{"ping -s 1400 and ping -p ff", "ping", "", nil, []string{"sh", "-c",
			fmt.Sprintf("timeout 5 ping -c 3 -i 0.2 -s 1400 %s; timeout 5 ping -c 3 -i 0.2 -p ff %s; timeout 5 ping -6 -c 3 -i 0.2 %s", tb.victimAddr, tb.victimAddr, tb.victim6)}, ""},
		{"hping3 -1 -d 120", "hping3", "", nil, []string{"timeout", "5", "hping3", "-1", "-d", "120", "-c", "20", "-i", "u20000", tb.victimAddr}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			needTool(t, tc.tool)
			dir := t.TempDir()
			cfg := filepath.Join(dir, "icmpids.yaml")
			yaml := "engine:\n  hold_time: 2s\nrules:\n  rogue_ra:\n    learning: 1s\n"
			if tc.config != "" {
				yaml = "engine:\n  hold_time: 2s\nrules:\n" + tc.config
			}
			if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var stdout, stderr syncBuffer
			sensor := startSensor(t, ctx, tb.victim, &stdout, &stderr, nil,
				"run", "-i", tb.victimIf, "--config", cfg, "--format", "eve", "--stats-interval", "0")
			var bg *exec.Cmd
			if tc.before != nil {
				bg = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", string(tb.victim)}, tc.before...)...)
				if err := bg.Start(); err != nil {
					t.Fatal(err)
				}
			}
			attack := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", string(tb.sender)}, tc.run...)...)
			out, err := attack.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); err != nil && !(ok && (ee.ExitCode() == 124 || ee.ExitCode() == 1 || ee.ExitCode() == 0)) {
				t.Fatalf("%s: %v\n%s", strings.Join(tc.run, " "), err, out)
			}
			if bg != nil {
				bg.Process.Kill()
				bg.Wait()
			}
			if tc.want != "" {
				waitFor(t, 10*time.Second, func() bool {
					return containsStart(t, stdout.String(), tc.want)
				}, tc.want, &stderr)
			} else {
				time.Sleep(500 * time.Millisecond)
			}
			sensor.Process.Signal(syscall.SIGTERM)
			sensor.Wait()
			starts := map[string]bool{}
			for _, s := range summary(parseEVE(t, stdout.String())) {
				if rule, rest, ok := strings.Cut(s, " start "); ok {
					starts[rule+" "+rest] = true
				}
			}
			if tc.want == "" && len(starts) > 0 {
				t.Errorf("a benign tool raised %v", starts)
			}
			if want := strings.Fields(tc.want); len(want) > 1 && !starts[want[0]+" "+want[1]] {
				t.Errorf("starts %v, want %s\ntool output:\n%s", starts, tc.want, out)
			}
		})
	}
}

// containsStart tells whether EVE output out holds a start of "rule
// target", or of "rule target reason" with that reason in its context.
func containsStart(t *testing.T, out, want string) bool {
	f := strings.Fields(want)
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"phase":"start"`) &&
			strings.Contains(l, `"rule":"`+f[0]+`"`) && strings.Contains(l, `"target":"`+f[1]+`"`) &&
			(len(f) < 3 || strings.Contains(l, `"`+f[2]+`":`)) {
			return true
		}
	}
	return false
}

// needTool skips the test when a tool it runs is not installed, except in
// CI, where .ci/run installs it: there it fails (internal/testenv). The
// scapy tests need Debian's python3 with python3-scapy.
func needTool(t *testing.T, tool string) {
	t.Helper()
	testenv.Tool(t, tool)
	if tool == "/usr/bin/python3" {
		if out, err := exec.Command(tool, "-c", "import scapy").CombinedOutput(); err != nil {
			testenv.Missing(t, "python3-scapy is not installed (apt-get install python3-scapy): %v: %s", err, out)
		}
	}
}
