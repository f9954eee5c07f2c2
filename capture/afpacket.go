//go:build linux

package capture

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/afpacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// AF_PACKET ring geometry (see AFPacketConfig).
const (
	afDefaultBuffer   = 2 << 20
	afFrameSize       = 4096 // gopacket's frame unit; TPACKET_V3 packs frames into blocks regardless
	afMinBlock        = 16 << 10
	afMaxBlock        = 4 << 20
	afBlocksWanted    = 1024
	afImmediateRetire = time.Millisecond
	afBatchRetire     = 64 * time.Millisecond
	// afFanoutMode: hash of the flow, and roll over to another socket when
	// the chosen one's ring is filling up (a one-source flood hashes to one
	// socket). Never PACKET_FANOUT_FLAG_DEFRAG: the kernel would reassemble
	// IP fragments before the sockets see them, and fragment attacks
	// (Ping of Death) would be invisible.
	afFanoutMode = afpacket.FanoutType(unix.PACKET_FANOUT_HASH | unix.PACKET_FANOUT_FLAG_ROLLOVER)
)

// AFPacket captures frames from a network interface through one or more
// AF_PACKET sockets with TPACKET_V3 rings (gopacket/afpacket), in one
// fanout group when there are several. Each socket is read by one
// goroutine (Sockets); Next reads the first. Stats and Close may be called
// from another goroutine; Close waits for pending reads (at most the read
// timeout), which then return io.EOF.
type AFPacket struct {
	socks   []*AFPacketSocket
	closed  atomic.Bool
	iface   string
	bpf     string
	link    uint16
	promisc int // the socket holding the promiscuous membership, or -1
	index   int
	ifDrop0 uint64
	statsMu sync.Mutex
}

// AFPacketSocket is one socket of an AFPacket capture. Its Next must be
// called from one goroutine at a time.
type AFPacketSocket struct {
	a     *AFPacket
	mu    sync.Mutex // held while reading: Close waits for it
	tp    *afpacket.TPacket
	since time.Time // frames stamped earlier came before the filter
	base  afpacket.SocketStatsV3
}

// OpenAFPacket opens an AF_PACKET capture as cfg says. Errors name the
// interface or the filter and wrap ErrNoSuchInterface, ErrPermission,
// ErrBadFilter or ErrUnsupportedLink when the cause is one of those.
func OpenAFPacket(cfg AFPacketConfig) (*AFPacket, error) {
	if cfg.Interface == "" {
		return nil, fmt.Errorf("capture: no interface given: %w", ErrNoSuchInterface)
	}
	if cfg.Interface == "any" {
		return nil, fmt.Errorf(`interface "any": frames of every interface, of mixed link types: %w`, ErrUnsupportedLink)
	}
	ifc, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", cfg.Interface, ErrNoSuchInterface)
	}
	link, dlt, err := afLinkType(cfg.Interface)
	if err != nil {
		return nil, err
	}
	snap := cfg.SnapLen
	if snap <= 0 {
		snap = maxSnapLen
	}
	timeout := cfg.ReadTimeout
	if timeout <= 0 {
		timeout = defaultReadTimeout
	}
	retire := afBatchRetire
	if cfg.Immediate {
		retire = afImmediateRetire
	} else if timeout < retire {
		retire = timeout
	}
	if retire < time.Millisecond {
		retire = time.Millisecond
	}
	block, blocks := afRing(cfg.BufferSize, snap)
	a := &AFPacket{iface: cfg.Interface, link: link, promisc: -1}
	prog, err := a.compile(cfg.BPF, dlt, snap)
	if err != nil {
		return nil, err
	}
	n := max(cfg.Fanout, 1)
	for i := 0; i < n; i++ {
		tp, err := afpacket.NewTPacket(
			afpacket.OptInterface(cfg.Interface),
			afpacket.TPacketVersion3,
			afpacket.OptFrameSize(afFrameSize),
			afpacket.OptBlockSize(block),
			afpacket.OptNumBlocks(blocks),
			afpacket.OptBlockTimeout(retire),
			afpacket.OptPollTimeout(timeout),
		)
		if err != nil {
			a.Close()
			return nil, afErr(cfg.Interface, "open socket", err)
		}
		s := &AFPacketSocket{a: a, tp: tp}
		a.socks = append(a.socks, s)
		if err := tp.SetBPF(prog); err != nil {
			a.Close()
			return nil, afErr(cfg.Interface, "attach filter", err)
		}
	}
	if n > 1 {
		if err := a.joinFanout(ifc.Index); err != nil {
			a.Close()
			return nil, err
		}
	}
	if cfg.Promiscuous {
		if err := a.setPromisc(ifc.Index); err != nil {
			a.Close()
			return nil, err
		}
	}
	a.index = ifc.Index
	a.ifDrop0 = ifDropped(cfg.Interface, a.index)
	now := time.Now()
	for _, s := range a.socks {
		// Frames that reached the ring before the filter was attached
		// are skipped by Next, and not counted.
		s.since = now
		if _, st, err := s.tp.SocketStats(); err == nil {
			s.base = st
		}
	}
	return a, nil
}

// afRing picks the TPACKET_V3 block size and count for a buffer of size
// bytes: about 128 blocks, each a whole number of pages, 64 KiB to 4 MiB,
// each able to hold a snap-length frame.
func afRing(size, snap int) (block, blocks int) {
	if size <= 0 {
		size = afDefaultBuffer
	}
	page := max(os.Getpagesize(), afFrameSize)
	block = size / afBlocksWanted
	block = max(block, afMinBlock, snap+afFrameSize)
	block = min(block, max(afMaxBlock, snap+afFrameSize))
	block = (block + page - 1) / page * page
	blocks = max(size/block, 2)
	return block, blocks
}

// afLinkType maps the interface's ARPHRD_ type (SIOCGIFHWADDR, in the
// calling thread's network namespace: sysfs may show another one) to the
// LINKTYPE_ value of its frames and the DLT_ value libpcap compiles
// filters for.
func afLinkType(iface string) (link uint16, dlt layers.LinkType, err error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("interface %q: link type: %v", iface, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(iface)
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr)
	}
	if err != nil {
		return 0, 0, afErr(iface, "link type", err)
	}
	return arphrdLink(iface, int(ifr.Uint16()))
}

// arphrdLink maps an ARPHRD_ type (see afLinkType).
func arphrdLink(iface string, arphrd int) (link uint16, dlt layers.LinkType, err error) {
	switch arphrd {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK: // loopback frames carry an Ethernet header
		return linkEthernet, layers.LinkTypeEthernet, nil
	case unix.ARPHRD_NONE, unix.ARPHRD_RAWIP: // tun and the like: the IP header first
		return linkRaw, layers.LinkType(dltRaw12), nil
	}
	return 0, 0, fmt.Errorf("interface %q: ARPHRD type %d: %w", iface, arphrd, ErrUnsupportedLink)
}

// linkEthernet is LINKTYPE_ETHERNET.
const linkEthernet = 1

// compile compiles expr, or the default filter when expr is empty, for the
// link type, returning at most snap bytes of each frame.
func (a *AFPacket) compile(expr string, dlt layers.LinkType, snap int) ([]bpf.RawInstruction, error) {
	if expr == "" {
		if ins, err := pcap.CompileBPFFilter(dlt, snap, DefaultBPF()); err == nil {
			a.bpf = DefaultBPF()
			return rawBPF(ins), nil
		}
		expr = baseBPF // no VLAN support in libpcap for this link type
	}
	ins, err := pcap.CompileBPFFilter(dlt, snap, expr)
	if err != nil {
		return nil, fmt.Errorf("interface %q: filter %q: %w: %v", a.iface, expr, ErrBadFilter, err)
	}
	a.bpf = expr
	return rawBPF(ins), nil
}

func rawBPF(ins []pcap.BPFInstruction) []bpf.RawInstruction {
	out := make([]bpf.RawInstruction, len(ins))
	for i, in := range ins {
		out[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return out
}

// joinFanout puts every socket in one fanout group. The group id is
// derived from the process id; an id another process holds with other
// settings is skipped.
func (a *AFPacket) joinFanout(ifindex int) error {
	base := uint16(os.Getpid()) ^ uint16(ifindex)<<10
	var err error
	for try := uint16(0); try < 16; try++ {
		id := base + try*4099
		if err = a.socks[0].tp.SetFanout(afFanoutMode, id); err != nil {
			continue
		}
		for _, s := range a.socks[1:] {
			if err := s.tp.SetFanout(afFanoutMode, id); err != nil {
				return afErr(a.iface, "join fanout group", err)
			}
		}
		return nil
	}
	return afErr(a.iface, "create fanout group", err)
}

// setPromisc opens a socket that receives nothing and holds a promiscuous
// membership on the interface until Close.
func (a *AFPacket) setPromisc(ifindex int) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return afErr(a.iface, "promiscuous mode", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		unix.Close(fd)
		return afErr(a.iface, "promiscuous mode", err)
	}
	a.promisc = fd
	return nil
}

// afErr classifies a socket error.
func afErr(iface, op string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("interface %q: %s: %w (%v)", iface, op, ErrPermission, err)
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("interface %q: %s: %w (%v)", iface, op, ErrNoSuchInterface, err)
	}
	return fmt.Errorf("interface %q: AF_PACKET %s: %v", iface, op, err)
}

// ifDropped reads the interface's rx_dropped counter from sysfs, 0 when
// sysfs shows another network namespace (its ifindex differs).
func ifDropped(iface string, index int) uint64 {
	read := func(name string) (uint64, bool) {
		raw, err := os.ReadFile("/sys/class/net/" + iface + "/" + name)
		if err != nil {
			return 0, false
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
		return n, err == nil
	}
	if i, ok := read("ifindex"); !ok || i != uint64(index) {
		return 0
	}
	n, _ := read("statistics/rx_dropped")
	return n
}

// Sockets returns the capture's sockets, one per fanout member, each to be
// read by its own goroutine.
func (a *AFPacket) Sockets() []*AFPacketSocket { return a.socks }

// Interface is the interface captured on.
func (a *AFPacket) Interface() string { return a.iface }

// LinkType is the LINKTYPE_ value of the frames Next returns: Ethernet, or
// raw IP. The kernel strips the outer VLAN tag of received frames (the
// frames arrive untagged; the default filter's untagged part matches them).
func (a *AFPacket) LinkType() uint16 { return a.link }

// Filter is the BPF expression in force.
func (a *AFPacket) Filter() string { return a.bpf }

// Next reads the first socket (see AFPacketSocket.Next).
func (a *AFPacket) Next() (Frame, error) { return a.socks[0].Next() }

// Next returns the socket's next frame, ErrTimeout when the read timeout
// expired with no packet, or io.EOF once the capture is closed. The
// frame's Data points into the ring, and is valid until the next call or
// Close. It does not allocate (except that gopacket records a VLAN tag the
// kernel stripped in a new slice).
func (s *AFPacketSocket) Next() (Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.a.closed.Load() {
			return Frame{}, io.EOF
		}
		data, ci, err := s.tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				return Frame{}, ErrTimeout
			}
			return Frame{}, fmt.Errorf("interface %q: read: %w", s.a.iface, err)
		}
		if ci.Timestamp.Before(s.since) {
			continue
		}
		return Frame{Data: data, Timestamp: ci.Timestamp, CaptureLength: ci.CaptureLength, Length: ci.Length, LinkType: s.a.link}, nil
	}
}

// Stats sums the sockets' kernel counters (PACKET_STATISTICS, TPACKET_V3):
// Received counts the frames that passed the filter, dropped ones
// included, as libpcap does; KernelDropped those that found the ring
// full; IfDropped the interface's rx_dropped since the capture opened.
func (a *AFPacket) Stats() (Stats, error) {
	a.statsMu.Lock()
	defer a.statsMu.Unlock()
	if a.closed.Load() {
		return Stats{}, fmt.Errorf("interface %q: stats: capture is closed", a.iface)
	}
	var st Stats
	for _, s := range a.socks {
		_, v3, err := s.tp.SocketStats()
		if err != nil {
			return Stats{}, fmt.Errorf("interface %q: stats: %w", a.iface, err)
		}
		st.Received += uint64(v3.Packets() - s.base.Packets())
		st.KernelDropped += uint64(v3.Drops() - s.base.Drops())
	}
	if d := ifDropped(a.iface, a.index); d >= a.ifDrop0 {
		st.IfDropped = d - a.ifDrop0
	}
	return st, nil
}

// Close stops the capture: it waits for pending reads (they return
// io.EOF), then releases the rings and sockets and the promiscuous
// membership. It is safe to call more than once.
func (a *AFPacket) Close() {
	if a.closed.Swap(true) {
		return
	}
	a.statsMu.Lock()
	defer a.statsMu.Unlock()
	for _, s := range a.socks {
		s.mu.Lock()
		s.tp.Close()
		s.mu.Unlock()
	}
	if a.promisc >= 0 {
		unix.Close(a.promisc)
		a.promisc = -1
	}
}
