//go:build linux

package capture

import (
	"errors"
	"testing"

	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// TestArphrdLink: Ethernet, loopback and raw IP interfaces map to the link
// types the decoder takes, and the default filter compiles for them; any
// other ARPHRD_ type is ErrUnsupportedLink.
func TestArphrdLink(t *testing.T) {
	for _, c := range []struct {
		name   string
		arphrd int
		link   uint16
	}{
		{"ether", unix.ARPHRD_ETHER, linkEthernet},
		{"loopback", unix.ARPHRD_LOOPBACK, linkEthernet},
		{"tun", unix.ARPHRD_NONE, linkRaw},
		{"rawip", unix.ARPHRD_RAWIP, linkRaw},
		{"ipip", unix.ARPHRD_TUNNEL, 0},
		{"infiniband", unix.ARPHRD_INFINIBAND, 0},
	} {
		link, dlt, err := arphrdLink("x0", c.arphrd)
		if c.link == 0 {
			if !errors.Is(err, ErrUnsupportedLink) {
				t.Errorf("%s: %v, want ErrUnsupportedLink", c.name, err)
			}
			continue
		}
		if err != nil || link != c.link {
			t.Errorf("%s: link %d, %v; want %d", c.name, link, err, c.link)
			continue
		}
		a := &AFPacket{iface: "x0"}
		prog, err := a.compile("", dlt, 128)
		if err != nil || len(prog) == 0 {
			t.Errorf("%s: default filter: %v", c.name, err)
		}
		if want := DefaultBPF(); dlt != layers.LinkTypeEthernet {
			want = baseBPF
			if a.Filter() != want {
				t.Errorf("%s: filter %q, want %q", c.name, a.Filter(), want)
			}
		} else if a.Filter() != want {
			t.Errorf("%s: filter %q, want %q", c.name, a.Filter(), want)
		}
	}
}

// TestAFPacketSnapLenInFilter: the compiled program returns the snap
// length, which is how the kernel truncates frames on an AF_PACKET ring.
func TestAFPacketSnapLenInFilter(t *testing.T) {
	a := &AFPacket{iface: "x0"}
	prog, err := a.compile("icmp", layers.LinkTypeEthernet, 200)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range prog {
		if in.Op == 0x06 && in.K == 200 { // BPF_RET|BPF_K
			found = true
		}
	}
	if !found {
		t.Errorf("no ret #200 in %v", prog)
	}
	if _, err := a.compile("icmp and and", layers.LinkTypeEthernet, 200); !errors.Is(err, ErrBadFilter) {
		t.Errorf("bad filter: %v", err)
	}
}

// TestAFRing: about 128 blocks of whole pages, each holding a snap-length
// frame, the ring as large as asked (at least two blocks).
func TestAFRing(t *testing.T) {
	for _, c := range []struct{ size, snap int }{
		{0, 512}, {32 << 20, 512}, {1 << 20, 262144}, {1 << 30, 512}, {4096, 64},
	} {
		block, blocks := afRing(c.size, c.snap)
		size := c.size
		if size == 0 {
			size = afDefaultBuffer
		}
		if block%4096 != 0 || block < c.snap+afFrameSize || blocks < 2 || (block*blocks > size && blocks > 2) {
			t.Errorf("afRing(%d, %d) = %d x %d", c.size, c.snap, block, blocks)
		}
		t.Logf("afRing(%d, %d) = %d x %d", c.size, c.snap, block, blocks)
	}
}
