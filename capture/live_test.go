package capture_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/internal/netnstest"
	"github.com/icmpids/icmpids/internal/testenv"
)

// childEnv marks a test binary run as an unprivileged child by runAsNobody.
const childEnv = "ICMPIDS_CAPTURE_TEST_CHILD"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (live capture, network namespaces)")
	}
}

// TestDefaultBPF runs the default filter, compiled by libpcap for
// Ethernet, over frames it must keep and frames it must drop.
func TestDefaultBPF(t *testing.T) {
	bpf, err := pcap.NewBPF(layers.LinkTypeEthernet, 262144, capture.DefaultBPF())
	if err != nil {
		t.Fatalf("DefaultBPF does not compile: %v", err)
	}
	udp := []byte{0x30, 0x39, 0, 9, 0, 12, 0, 0, 'h', 'i', '!', '!'}
	tcp := make([]byte, 20)
	tcp[12] = 5 << 4
	mld := synth.ICMPEcho(true, 131, 0, 0, 16)
	ips := []struct {
		name string
		ip   []byte
		keep bool
	}{
		{"ipv4 echo", echo4(1, 1).ip, true},
		{"ipv4 icmp error", synth.IPv4(synth.IPv4Header{Src: dst4, Dst: src4, Proto: 1}, synth.ICMPEcho(false, 3, 0, 0, 28)), true},
		{"ipv4 udp", synth.IPv4(synth.IPv4Header{Src: src4, Dst: dst4, Proto: 17}, udp), false},
		{"ipv4 tcp", synth.IPv4(synth.IPv4Header{Src: src4, Dst: dst4, Proto: 6, DF: true}, tcp), false},
		{"ipv4 udp first fragment", synth.IPv4(synth.IPv4Header{Src: src4, Dst: dst4, Proto: 17, MF: true}, udp[:8]), true},
		{"ipv4 udp last fragment", synth.IPv4(synth.IPv4Header{Src: src4, Dst: dst4, Proto: 17, FragOffset: 8}, udp[8:]), true},
		{"ipv6 echo", echo6(1, 1).ip, true},
		{"ipv6 udp", synth.IPv6(src6, dst6, nil, 17, udp), false},
		{"ipv6 tcp", synth.IPv6(src6, dst6, nil, 6, tcp), false},
		{"ipv6 mld behind hop-by-hop", synth.IPv6(src6, dst6, []synth.IPv6Ext{synth.HopByHop()}, 58, mld), true},
		{"ipv6 echo behind hbh+ah+dstopts", extraPackets()[3].ip, true},
		{"ipv6 udp fragment", synth.IPv6(src6, dst6, []synth.IPv6Ext{synth.FragmentHeader(0, true, 7)}, 17, udp), true},
		{"ipv6 udp fragment behind dstopts", synth.IPv6(src6, dst6, []synth.IPv6Ext{synth.DestOpts(), synth.FragmentHeader(8, false, 7)}, 17, udp), true},
		{"ipv6 udp fragment behind hop-by-hop", synth.IPv6(src6, dst6, []synth.IPv6Ext{synth.HopByHop(), synth.FragmentHeader(8, false, 7)}, 17, udp), true},
	}
	links := []struct {
		name string
		link synth.Link
	}{
		{"untagged", synth.Link{Type: synth.LinkEthernet}},
		{"802.1Q", synth.Link{Type: synth.LinkEthernet, VLANs: []uint16{42}}},
		{"QinQ 88a8+8100", synth.Link{Type: synth.LinkEthernet, VLANs: []uint16{42, 43}, QinQ: true}},
		{"double 8100", synth.Link{Type: synth.LinkEthernet, VLANs: []uint16{42, 43}}},
		{"three tags", synth.Link{Type: synth.LinkEthernet, VLANs: []uint16{42, 43, 44}}},
		{"eight tags, 88a8 outermost", synth.Link{Type: synth.LinkEthernet, VLANs: []uint16{1, 2, 3, 4, 5, 6, 7, 8}, QinQ: true}},
	}
	for _, l := range links {
		for _, c := range ips {
			frame, err := synth.Encap(l.link, c.ip)
			if err != nil {
				t.Fatal(err)
			}
			ci := gopacket.CaptureInfo{CaptureLength: len(frame), Length: len(frame)}
			if got := bpf.Matches(ci, frame); got != c.keep {
				t.Errorf("%s %s: kept=%v, want %v", l.name, c.name, got, c.keep)
			}
		}
	}
	// Every encapsulation the decoder looks into passes, whatever it
	// carries (the decoder keeps the ICMP).
	for _, kind := range synth.Wraps {
		for _, c := range ips[:2] {
			frame, err := synth.Encap(synth.Link{Type: synth.LinkEthernet}, c.ip)
			if err != nil {
				t.Fatal(err)
			}
			if kind == synth.WrapTeredo {
				frame, _ = synth.Encap(synth.Link{Type: synth.LinkEthernet}, ips[6].ip) // IPv6 echo
			}
			w, err := synth.Wrap(kind, frame)
			if err != nil {
				t.Fatal(err)
			}
			if !bpf.Matches(gopacket.CaptureInfo{CaptureLength: len(w), Length: len(w)}, w) {
				t.Errorf("%s carrying %s: dropped", kind, c.name)
			}
		}
	}
	arp := append(make([]byte, 12), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	if bpf.Matches(gopacket.CaptureInfo{CaptureLength: len(arp), Length: len(arp)}, arp) {
		t.Error("ARP kept")
	}
	// Linux cooked capture ("any") has no VLAN support in libpcap: OpenLive
	// falls back to the untagged part, which must compile there.
	if _, err := pcap.NewBPF(layers.LinkTypeLinuxSLL, 262144, capture.DefaultBPF()); err == nil {
		t.Log("libpcap now compiles vlan for Linux SLL; the fallback in OpenLive is unused")
	}
}

// TestOpenLiveNoSuchInterface needs no privileges.
func TestOpenLiveNoSuchInterface(t *testing.T) {
	for _, name := range []string{"icmpids-nope0", ""} {
		_, err := capture.OpenLive(capture.LiveConfig{Interface: name})
		if !errors.Is(err, capture.ErrNoSuchInterface) {
			t.Errorf("OpenLive(%q): %v, want ErrNoSuchInterface", name, err)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) && name != "" {
			t.Errorf("error %q does not name the interface", err)
		}
	}
}

func TestOpenLiveBadFilter(t *testing.T) {
	requireRoot(t)
	const bad = "icmp and and"
	l, err := capture.OpenLive(capture.LiveConfig{Interface: "lo", BPF: bad})
	if err == nil {
		l.Close()
		t.Fatal("OpenLive accepted a bad filter")
	}
	if !errors.Is(err, capture.ErrBadFilter) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `"lo"`) {
		t.Errorf("error %q: want ErrBadFilter naming lo and the filter", err)
	}
}

// TestLivePermission opens a live capture as user nobody, in a child
// process, and expects ErrPermission.
func TestLivePermission(t *testing.T) {
	out := runAsNobody(t, "TestChildLivePermission", "lo")
	t.Logf("child: %s", out)
	if !strings.Contains(out, "errors.Is(ErrPermission)=true") {
		t.Errorf("child output:\n%s", out)
	}
}

// TestChildLivePermission is run by TestLivePermission as nobody.
func TestChildLivePermission(t *testing.T) {
	iface := os.Getenv(childEnv)
	if iface == "" {
		t.Skip("helper of TestLivePermission")
	}
	_, err := capture.OpenLive(capture.LiveConfig{Interface: iface})
	fmt.Printf("err=%v errors.Is(ErrPermission)=%v\n", err, errors.Is(err, capture.ErrPermission))
}

// TestFileUnreadable opens a file its owner may not read, as nobody.
func TestFileUnreadable(t *testing.T) {
	dir := shareableDir(t)
	path := filepath.Join(dir, "secret.pcap")
	frames, _ := linkCases()[0].packets(t)
	writePcapgo(t, path, synth.LinkEthernet, frames)
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	out := runAsNobody(t, "TestChildOpenFile", path)
	if !strings.Contains(out, "open "+path+": permission denied") || !strings.Contains(out, "ErrPermission=true") {
		t.Errorf("child output:\n%s", out)
	}
}

// TestChildOpenFile is run by TestFileUnreadable as nobody.
func TestChildOpenFile(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("helper of TestFileUnreadable")
	}
	_, err := capture.OpenFile(path)
	fmt.Printf("err=%v ErrPermission=%v\n", err, errors.Is(err, os.ErrPermission))
}

// shareableDir is a temporary directory other users may enter.
func shareableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "icmpids-capture-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runAsNobody runs test of this test binary as user nobody (uid 65534)
// with arg in childEnv and returns its output. It skips unless root.
func runAsNobody(t *testing.T, test, arg string) string {
	t.Helper()
	requireRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary: %v", err)
	}
	bin := filepath.Join(shareableDir(t), "capture.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run", "^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+arg)
	cmd.Dir = filepath.Dir(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("cannot run the test binary as nobody (%v): %s", err, out)
	}
	return string(out)
}

// netnsPair is two network namespaces joined by a veth pair: A (10.N.M.1,
// fd00:N:M::1 on vethA) and B (.2 on vethB). Nothing is configured in the
// test's own namespace.
type netnsPair struct {
	a, b           string // namespace names
	vethA, vethB   string
	a4, b4, a6, b6 netip.Addr
}

func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	requireRoot(t)
	testenv.Tools(t, "ip", "ping") // every test of a pair pings across it
	n, m := rand.IntN(250)+1, rand.IntN(250)+1
	id := fmt.Sprintf("%d%03d", os.Getpid()%10000, rand.IntN(1000))
	p := &netnsPair{
		a: "icmpids-a-" + id, b: "icmpids-b-" + id,
		vethA: "icva" + id, vethB: "icvb" + id,
		a4: netip.AddrFrom4([4]byte{10, byte(n), byte(m), 1}), b4: netip.AddrFrom4([4]byte{10, byte(n), byte(m), 2}),
		a6: netip.MustParseAddr(fmt.Sprintf("fd00:%x:%x::1", n, m)), b6: netip.MustParseAddr(fmt.Sprintf("fd00:%x:%x::2", n, m)),
	}
	ip := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Skipf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", p.a)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", p.a).Run() })
	ip("netns", "add", p.b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", p.b).Run() })
	// Created straight inside the namespaces; deleting them deletes the pair.
	ip("link", "add", p.vethA, "netns", p.a, "type", "veth", "peer", "name", p.vethB, "netns", p.b)
	for _, s := range []struct {
		ns, dev string
		v4, v6  netip.Addr
	}{{p.a, p.vethA, p.a4, p.a6}, {p.b, p.vethB, p.b4, p.b6}} {
		ip("-n", s.ns, "addr", "add", s.v4.String()+"/24", "dev", s.dev)
		ip("-n", s.ns, "-6", "addr", "add", s.v6.String()+"/64", "dev", s.dev, "nodad")
		ip("-n", s.ns, "link", "set", "lo", "up")
		ip("-n", s.ns, "link", "set", s.dev, "up")
	}
	return p
}

// TestLiveNetns captures on a veth inside a namespace while the peer
// namespace pings it (IPv4 and IPv6) and sends UDP datagrams: the default
// filter keeps the pings and drops the UDP, which a "udp" handle sees.
func TestLiveNetns(t *testing.T) {
	p := newNetnsPair(t)
	var live, udp, any *capture.Live
	netnstest.Do(t, p.a, func() (err error) {
		cfg := capture.LiveConfig{Interface: p.vethA, SnapLen: 256, Immediate: true, Promiscuous: true, ReadTimeout: 100 * time.Millisecond}
		if live, err = capture.OpenLive(cfg); err != nil {
			return err
		}
		cfg.BPF = "udp"
		if udp, err = capture.OpenLive(cfg); err != nil {
			return err
		}
		any, err = capture.OpenLive(capture.LiveConfig{Interface: "any", Promiscuous: true, ReadTimeout: 50 * time.Millisecond})
		return err
	})
	defer live.Close()
	defer udp.Close()
	defer any.Close()

	if live.LinkType() != synth.LinkEthernet || live.Filter() != capture.DefaultBPF() {
		t.Errorf("veth: link type %d, filter %q", live.LinkType(), live.Filter())
	}
	if any.LinkType() != synth.LinkLinuxSLL || strings.Contains(any.Filter(), "vlan") {
		t.Errorf(`"any": link type %d (want 113, Linux SLL), filter %q (want no vlan part)`, any.LinkType(), any.Filter())
	}

	// Traffic from B, bounded in count and time.
	const pings = 20
	for _, dst := range []netip.Addr{p.a4, p.a6} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", p.b, "ping", "-n", "-q",
			"-c", fmt.Sprint(pings), "-i", "0.01", "-W", "2", dst.String()).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("ping %v: %v: %s", dst, err, out)
		}
	}
	netnstest.Do(t, p.b, func() error {
		for _, dst := range []netip.Addr{p.a4, p.a6} {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
			if err != nil {
				return err
			}
			_, err = c.Write([]byte("not icmp"))
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})

	// Read what the default filter let through.
	dec := detector.NewDecoder()
	var pkt detector.Packet
	var req4, req6, rep, udpSeen, frames int
	deadline := time.Now().Add(10 * time.Second)
	for timeouts := 0; timeouts < 3 && frames < 10000 && time.Now().Before(deadline); {
		fr, err := live.Next()
		if errors.Is(err, capture.ErrTimeout) {
			timeouts++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		timeouts = 0
		frames++
		if fr.LinkType != synth.LinkEthernet {
			t.Fatalf("frame of link type %d", fr.LinkType)
		}
		dec.Decode(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length, &pkt)
		switch {
		case pkt.Proto == 17 && !pkt.Fragment:
			udpSeen++
		case pkt.IsEchoRequest() && pkt.Src == p.b4 && pkt.Dst == p.a4:
			req4++
		case pkt.IsEchoRequest() && pkt.Src == p.b6 && pkt.Dst == p.a6:
			req6++
		case pkt.IsEchoReply():
			rep++
		}
		if d := time.Since(fr.Timestamp); d < -time.Minute || d > time.Minute {
			t.Errorf("frame time %v is not now", fr.Timestamp)
		}
	}
	t.Logf("%d frames: %d+%d echo requests, %d replies, %d udp", frames, req4, req6, rep, udpSeen)
	if req4 != pings || req6 != pings {
		t.Errorf("captured %d IPv4 and %d IPv6 echo requests, want %d each", req4, req6, pings)
	}
	if rep < pings {
		t.Errorf("captured %d echo replies, want at least %d", rep, pings)
	}
	if udpSeen != 0 {
		t.Errorf("default filter let %d UDP datagrams through", udpSeen)
	}
	st, err := live.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Received < uint64(frames) {
		t.Errorf("Stats().Received = %d, read %d frames", st.Received, frames)
	}
	t.Logf("stats %+v", st)

	// The UDP datagrams were on the wire: the "udp" handle saw both.
	udpFrames := 0
	for i := 0; i < 50 && udpFrames < 2; i++ {
		if _, err := udp.Next(); err == nil {
			udpFrames++
		} else if !errors.Is(err, capture.ErrTimeout) {
			t.Fatal(err)
		}
	}
	if udpFrames != 2 {
		t.Errorf(`the "udp" handle saw %d datagrams, want 2`, udpFrames)
	}

	// Nothing more comes: ErrTimeout after about the read timeout.
	start := time.Now()
	if _, err := udp.Next(); !errors.Is(err, capture.ErrTimeout) {
		t.Errorf("idle Next: %v, want ErrTimeout", err)
	} else if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ErrTimeout after %v, read timeout is 100ms", d)
	}

	// Close from another goroutine ends a pending Next with io.EOF.
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := udp.Next(); !errors.Is(err, capture.ErrTimeout) {
				done <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	udp.Close()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Errorf("Next after Close: %v, want io.EOF", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Next still blocked 3s after Close")
	}
	if _, err := udp.Stats(); err == nil {
		t.Error("Stats after Close succeeded")
	}
}
