//go:build linux

package capture_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/internal/netnstest"
)

func TestOpenAFPacketErrors(t *testing.T) {
	for _, name := range []string{"icmpids-nope0", ""} {
		_, err := capture.OpenAFPacket(capture.AFPacketConfig{LiveConfig: capture.LiveConfig{Interface: name}})
		if !errors.Is(err, capture.ErrNoSuchInterface) {
			t.Errorf("OpenAFPacket(%q): %v, want ErrNoSuchInterface", name, err)
		}
	}
	if _, err := capture.OpenAFPacket(capture.AFPacketConfig{LiveConfig: capture.LiveConfig{Interface: "any"}}); !errors.Is(err, capture.ErrUnsupportedLink) || !strings.Contains(err.Error(), `"any"`) {
		t.Errorf(`OpenAFPacket("any"): %v, want ErrUnsupportedLink naming it`, err)
	}
	requireRoot(t)
	const bad = "icmp and and"
	a, err := capture.OpenAFPacket(capture.AFPacketConfig{LiveConfig: capture.LiveConfig{Interface: "lo", BPF: bad}})
	if err == nil {
		a.Close()
		t.Fatal("OpenAFPacket accepted a bad filter")
	}
	if !errors.Is(err, capture.ErrBadFilter) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `"lo"`) {
		t.Errorf("error %q: want ErrBadFilter naming lo and the filter", err)
	}
}

// TestAFPacketPermission opens an AF_PACKET capture as user nobody, in a
// child process, and expects ErrPermission.
func TestAFPacketPermission(t *testing.T) {
	out := runAsNobody(t, "TestChildAFPacketPermission", "lo")
	t.Logf("child: %s", out)
	if !strings.Contains(out, "errors.Is(ErrPermission)=true") {
		t.Errorf("child output:\n%s", out)
	}
}

// TestChildAFPacketPermission is run by TestAFPacketPermission as nobody.
func TestChildAFPacketPermission(t *testing.T) {
	iface := os.Getenv(childEnv)
	if iface == "" {
		t.Skip("helper of TestAFPacketPermission")
	}
	_, err := capture.OpenAFPacket(capture.AFPacketConfig{LiveConfig: capture.LiveConfig{Interface: iface}})
	fmt.Printf("err=%v errors.Is(ErrPermission)=%v\n", err, errors.Is(err, capture.ErrPermission))
}

// pingFrom runs a bounded ping in namespace ns.
func pingFrom(t *testing.T, ns string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args = append([]string{"netns", "exec", ns, "ping", "-n", "-q", "-W", "2"}, args...)
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ping %v: %v: %s", args, err, out)
	}
}

// TestAFPacketNetns captures with AF_PACKET on a veth inside a namespace
// while the peer pings it (IPv4, IPv6, and large pings cut to the snap
// length) and sends UDP: the default filter keeps the pings and drops the
// UDP (which a "udp" capture sees), and the statistics count the frames.
func TestAFPacketNetns(t *testing.T) {
	p := newNetnsPair(t)
	var live, udp *capture.AFPacket
	netnstest.Do(t, p.a, func() (err error) {
		cfg := capture.AFPacketConfig{LiveConfig: capture.LiveConfig{Interface: p.vethA, SnapLen: 256, Immediate: true, Promiscuous: true, BufferSize: 8 << 20, ReadTimeout: 100 * time.Millisecond}}
		if live, err = capture.OpenAFPacket(cfg); err != nil {
			return err
		}
		cfg.BPF = "udp"
		udp, err = capture.OpenAFPacket(cfg)
		return err
	})
	defer live.Close()
	defer udp.Close()
	if live.LinkType() != synth.LinkEthernet || live.Filter() != capture.DefaultBPF() || live.Interface() != p.vethA {
		t.Errorf("veth: link type %d, filter %q", live.LinkType(), live.Filter())
	}
	const pings, big = 20, 3
	pingFrom(t, p.b, "-c", fmt.Sprint(pings), "-i", "0.01", p.a4.String())
	pingFrom(t, p.b, "-c", fmt.Sprint(pings), "-i", "0.01", p.a6.String())
	pingFrom(t, p.b, "-c", fmt.Sprint(big), "-i", "0.01", "-s", "1000", p.a4.String())
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

	dec := detector.NewDecoder()
	var pkt detector.Packet
	var req4, req6, rep, cut, udpSeen, frames int
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
		if fr.LinkType != synth.LinkEthernet || fr.CaptureLength != len(fr.Data) || fr.CaptureLength > 256 {
			t.Fatalf("frame: link type %d, %d bytes captured (%d in Data), %d on the wire", fr.LinkType, fr.CaptureLength, len(fr.Data), fr.Length)
		}
		if fr.Length > 1000 && fr.CaptureLength == 256 {
			cut++
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
	t.Logf("%d frames: %d+%d echo requests, %d replies, %d cut to the snap length, %d udp", frames, req4, req6, rep, cut, udpSeen)
	if req4 != pings+big || req6 != pings {
		t.Errorf("captured %d IPv4 and %d IPv6 echo requests, want %d and %d", req4, req6, pings+big, pings)
	}
	if rep < 2*pings+big || cut != 2*big {
		t.Errorf("captured %d echo replies (want at least %d), %d large frames cut to 256 bytes (want %d)", rep, 2*pings+big, cut, 2*big)
	}
	if udpSeen != 0 {
		t.Errorf("default filter let %d UDP datagrams through", udpSeen)
	}
	st, err := live.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// A late neighbour discovery or MLD message may come after the reads.
	if st.Received < uint64(frames) || st.Received > uint64(frames)+10 || st.KernelDropped != 0 {
		t.Errorf("Stats() = %+v, read %d frames", st, frames)
	}
	t.Logf("stats %+v", st)

	udpFrames := 0
	for i := 0; i < 50 && udpFrames < 2; i++ {
		if _, err := udp.Next(); err == nil {
			udpFrames++
		} else if !errors.Is(err, capture.ErrTimeout) {
			t.Fatal(err)
		}
	}
	if udpFrames != 2 {
		t.Errorf("the udp capture saw %d datagrams, want 2", udpFrames)
	}

	// Close from another goroutine ends a pending read with io.EOF.
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := live.Next(); err != nil && !errors.Is(err, capture.ErrTimeout) {
				done <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	live.Close()
	select {
	case err := <-done:
		if err.Error() != "EOF" {
			t.Errorf("read after Close: %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a pending read did not end after Close")
	}
	live.Close()
	if _, err := live.Stats(); err == nil {
		t.Error("Stats after Close did not fail")
	}
}

// TestAFPacketFanout: two sockets in one fanout group, each read by its
// own goroutine, while 12 addresses of the peer namespace ping: every echo
// request arrives exactly once, spread over both sockets, and the summed
// statistics count every frame.
func TestAFPacketFanout(t *testing.T) {
	p := newNetnsPair(t)
	const srcs, pings = 12, 10
	var extra []netip.Addr
	for i := 0; i < srcs; i++ {
		a := p.b4.As4()
		a[3] = byte(10 + i)
		addr := netip.AddrFrom4(a)
		extra = append(extra, addr)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "ip", "-n", p.b, "addr", "add", addr.String()+"/24", "dev", p.vethB).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("ip addr add: %v: %s", err, out)
		}
	}
	var live *capture.AFPacket
	netnstest.Do(t, p.a, func() (err error) {
		live, err = capture.OpenAFPacket(capture.AFPacketConfig{
			LiveConfig: capture.LiveConfig{Interface: p.vethA, SnapLen: 128, Immediate: true, ReadTimeout: 100 * time.Millisecond},
			Fanout:     2,
		})
		return err
	})
	defer live.Close()
	socks := live.Sockets()
	if len(socks) != 2 {
		t.Fatalf("%d sockets, want 2", len(socks))
	}
	type key struct {
		src netip.Addr
		seq uint16
	}
	var mu sync.Mutex
	seen := map[key]int{}
	perSocket := make([]int, len(socks))
	frames := 0
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec := detector.NewDecoder()
			var pkt detector.Packet
			for ctx.Err() == nil {
				fr, err := s.Next()
				if errors.Is(err, capture.ErrTimeout) {
					continue
				}
				if err != nil {
					return
				}
				dec.Decode(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length, &pkt)
				mu.Lock()
				frames++
				if pkt.IsEchoRequest() && pkt.Dst == p.a4 {
					seen[key{pkt.Src, pkt.ICMPSeq}]++
					perSocket[i]++
				}
				mu.Unlock()
			}
		}()
	}
	var pw sync.WaitGroup
	for _, src := range extra {
		pw.Add(1)
		go func() {
			defer pw.Done()
			pingFrom(t, p.b, "-I", src.String(), "-c", fmt.Sprint(pings), "-i", "0.02", p.a4.String())
		}()
	}
	pw.Wait()
	time.Sleep(300 * time.Millisecond) // blocks retire within 1 ms; reads poll every 100 ms
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != srcs*pings {
		t.Errorf("%d distinct echo requests, want %d", len(seen), srcs*pings)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("echo request %v seen %d times", k, n)
		}
	}
	t.Logf("echo requests per socket: %v; %d frames", perSocket, frames)
	if perSocket[0] == 0 || perSocket[1] == 0 {
		t.Errorf("fanout used one socket only: %v", perSocket)
	}
	st, err := live.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// A late neighbour discovery or MLD message may come after the reads.
	if st.Received < uint64(frames) || st.Received > uint64(frames)+10 || st.KernelDropped != 0 {
		t.Errorf("Stats() = %+v, read %d frames", st, frames)
	}
}
