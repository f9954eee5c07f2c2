package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
)

// TestLiveDeepVLANsAndTunnels: a flood behind 3 and 8 VLAN tags, and inside
// GRE, VXLAN and MPLS, is seen by the live sensor with its default filter,
// through libpcap and AF_PACKET: the filter passes what the decoder reads.
// The frames are written onto the sender's end of a veth pair in test
// namespaces (bounded: 5,000 frames each).
func TestLiveDeepVLANsAndTunnels(t *testing.T) {
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	tb := newTestbed(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	victim := netip.MustParseAddr("10.77.0.5")
	bare, err := synth.Flood{Target: victim, Source: netip.MustParseAddr("198.51.100.7"), Start: time.Now(), Rate: 20000, Count: 5000}.Frames()
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"pcap", "afpacket"} {
		for _, kind := range []string{"vlan3", "qinq8", synth.WrapGRE, synth.WrapVXLAN, synth.WrapMPLS} {
			t.Run(method+"/"+kind, func(t *testing.T) {
				var frames []synth.Frame
				switch kind {
				case "vlan3", "qinq8":
					n := map[string]int{"vlan3": 3, "qinq8": 8}[kind]
					for _, f := range bare {
						ids := make([]uint16, n)
						for i := range ids {
							ids[i] = uint16(10 + i)
						}
						d, err := synth.Encap(synth.Link{Type: synth.LinkEthernet, VLANs: ids, QinQ: kind == "qinq8"}, f.Data[14:])
						if err != nil {
							t.Fatal(err)
						}
						frames = append(frames, synth.Frame{Time: f.Time, Data: d})
					}
				default:
					if frames, err = synth.WrapFrames(kind, bare); err != nil {
						t.Fatal(err)
					}
				}
				pcapPath := filepath.Join(t.TempDir(), "flood.pcap")
				if err := synth.WritePcapFile(pcapPath, frames); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				var stdout, stderr syncBuffer
				sensor := startSensor(t, ctx, tb.victim, &stdout, &stderr, []string{"ICMPIDS_ENGINE_HOLD_TIME=1s"},
					"run", "-i", tb.victimIf,
					"--capture-method", method, "--format", "eve", "--stats-interval", "0")
				inject := exec.CommandContext(ctx, "ip", "netns", "exec", string(tb.sender), exe)
				inject.Env = append(os.Environ(), "ICMPIDS_TEST_INJECT="+tb.senderIf+"="+pcapPath)
				if out, err := inject.CombinedOutput(); err != nil {
					t.Fatalf("inject: %v\n%s", err, out)
				}
				waitFor(t, 10*time.Second, func() bool {
					return containsStart(t, stdout.String(), "icmp_flood "+victim.String())
				}, "icmp_flood on the inner victim", &stderr)
				sensor.Process.Signal(syscall.SIGTERM)
				sensor.Wait()
				out := stdout.String()
				switch kind {
				case "vlan3", "qinq8":
					if !strings.Contains(out, `"vlan":[`) {
						t.Errorf("no vlan in the alert: %s", out)
					}
				default:
					if !strings.Contains(out, `"tunnel":{`) && kind != synth.WrapMPLS {
						t.Errorf("no tunnel in the alert: %s", out)
					}
				}
			})
		}
	}
}

// TestLiveKernelVXLAN: a flood sent through the Linux kernel's own VXLAN
// device (not frames the test built) is seen inside the tunnel by the live
// sensor on the underlay, with the tunnel in the alert. (This machine's
// kernel has VXLAN but no GRE, ERSPAN, GENEVE, IP-in-IP or SIT devices:
// those are tested with frames the tests write.) Bounded: 5,000 echo
// requests from hping3.
func TestLiveKernelVXLAN(t *testing.T) {
	if testing.Short() {
		t.Skip("live test skipped in -short mode")
	}
	tb := newTestbed(t)
	needTool(t, "hping3")
	add := exec.Command("ip", "-n", string(tb.sender), "link", "add", "ids-vx0", "type", "vxlan", "id", "42",
		"remote", tb.victimAddr, "dstport", "4789", "dev", tb.senderIf)
	if out, err := add.CombinedOutput(); err != nil {
		// A kernel module, not a package .ci/run could install: skip.
		t.Skipf("no VXLAN in this kernel: %v: %s", err, out)
	}
	sh(t, "ip", "-n", string(tb.sender), "addr", "add", "10.88.0.1/24", "dev", "ids-vx0")
	sh(t, "ip", "-n", string(tb.sender), "link", "set", "ids-vx0", "up")
	sh(t, "ip", "-n", string(tb.sender), "neigh", "add", "10.88.0.5", "lladdr", "02:00:00:00:00:05", "dev", "ids-vx0", "nud", "permanent")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	sensor := startSensor(t, ctx, tb.victim, &stdout, &stderr, []string{"ICMPIDS_ENGINE_HOLD_TIME=1s"},
		"run", "-i", tb.victimIf,
		"--format", "eve", "--stats-interval", "0")
	// hping3, not ping: ping slows down when no reply comes back.
	flood := exec.CommandContext(ctx, "ip", "netns", "exec", string(tb.sender), "timeout", "20", "hping3", "--icmp", "-q", "-i", "u200", "-c", "5000", "10.88.0.5")
	if out, err := flood.CombinedOutput(); err != nil && !strings.Contains(string(out), "5000 packets transmitted") {
		t.Fatalf("hping3 through the VXLAN device: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, func() bool {
		return containsStart(t, stdout.String(), "icmp_flood 10.88.0.5")
	}, "icmp_flood on the host inside the tunnel", &stderr)
	sensor.Process.Signal(syscall.SIGTERM)
	sensor.Wait()
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.Contains(l, `"rule":"icmp_flood"`) && strings.Contains(l, `"target":"10.88.0.5"`) && strings.Contains(l, `"phase":"start"`) {
			want := `"tunnel":{"src_ip":"` + tb.senderAddr + `","dest_ip":"` + tb.victimAddr + `","proto":"UDP","depth":1}`
			if !strings.Contains(l, want) {
				t.Errorf("the alert does not carry the VXLAN underlay %s:\n%s", want, l)
			}
		}
	}
}
