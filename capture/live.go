package capture

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/pcap"
)

// Classified live-capture errors, for errors.Is. The errors OpenLive
// returns wrap one of them when the cause is known, and name the interface
// or the filter.
var (
	// ErrNoSuchInterface: the interface does not exist (bad usage: exit 2).
	ErrNoSuchInterface = errors.New("no such interface")
	// ErrPermission: the process may not capture (no CAP_NET_RAW, or
	// CAP_NET_ADMIN for promiscuous mode): a runtime failure, exit 1.
	ErrPermission = errors.New("permission denied (capturing needs root or CAP_NET_RAW)")
	// ErrBadFilter: the BPF expression does not compile (bad usage: exit 2).
	ErrBadFilter = errors.New("bad BPF filter")
	// ErrTimeout is returned by Live.Next when the read timeout expires
	// with no packet; the caller then ticks the engine with wall-clock time.
	ErrTimeout = errors.New("read timeout: no packet")
)

// LiveConfig configures a live capture.
type LiveConfig struct {
	// Interface is the network interface ("any" captures on all of them,
	// as Linux cooked frames, never in promiscuous mode).
	Interface string
	// SnapLen is the bytes captured of each frame; 0 means 262144. ICMP
	// detection needs the headers only, but fragment tracking wants the
	// IP total length, which is in the header too: 128 is enough for it.
	SnapLen int
	// Promiscuous captures frames not addressed to this host.
	Promiscuous bool
	// Immediate delivers each packet as soon as it arrives instead of
	// batching them until the buffer fills or the timeout expires.
	Immediate bool
	// BufferSize is the kernel ring buffer in bytes; 0 keeps libpcap's
	// default (2 MiB on Linux).
	BufferSize int
	// BPF is the capture filter; "" means DefaultBPF().
	BPF string
	// ReadTimeout bounds how long Next waits before returning ErrTimeout;
	// 0 or less means 250ms. It must be positive so that Close never waits
	// on a blocked read.
	ReadTimeout time.Duration
}

// defaultReadTimeout is the read timeout when LiveConfig.ReadTimeout is unset.
const defaultReadTimeout = 250 * time.Millisecond

// baseBPF keeps IPv4 ICMP, every IPv4 fragment (MF set or non-zero offset)
// and every IPv6 packet whose first next-header is neither TCP nor UDP: that
// is ICMPv6, fragments, and anything behind an extension header, so ICMPv6
// and fragment headers behind hop-by-hop, routing, AH or destination
// options are kept. libpcap's "icmp6" looks no further than one fragment
// header and "ip6 protochain" cannot be combined with "vlan".
const baseBPF = "icmp or (ip[6:2] & 0x3fff != 0) or (ip6 and ip6[6] != 6 and ip6[6] != 17)"

// DefaultBPF is the capture filter used when LiveConfig.BPF is empty:
// DefaultBPFFor the IANA ports of VXLAN (4789), GENEVE (6081) and Teredo
// (3544).
func DefaultBPF() string { return DefaultBPFFor([]int{4789}, []int{6081}, []int{3544}) }

// bpfVLANDepth is how deep in a VLAN tag stack the default filter looks:
// the decoder's default decode.max_vlans. Each level repeats the
// expression behind one more "vlan" (libpcap shifts the offsets).
const bpfVLANDepth = 8

// DefaultBPFFor is the default capture filter for the given UDP
// encapsulation ports: IPv4 ICMP, every IPv4 fragment, every IPv6 packet
// but plain TCP and UDP (so all ICMPv6 and all IPv6 fragments, even behind
// other extension headers), and what the decoder looks into: IP-in-IP,
// 6in4 and GRE (ERSPAN included), UDP to the VXLAN and GENEVE ports and
// from or to the Teredo ports, PPPoE sessions and MPLS — on untagged
// frames and under up to 8 VLAN tags (802.1Q, 802.1ad).
//
// Limits: over-inclusive for IPv6 (TCP/UDP behind an extension header, and
// other protocols such as ESP or SCTP, pass; the decoder ignores them),
// and for tunnels (every packet of a tunnel passes, the decoder keeps its
// ICMP). On links without VLAN support in libpcap (e.g. "any", Linux
// cooked capture) OpenLive drops the VLAN part; Linux hands those frames
// over untagged anyway.
func DefaultBPFFor(vxlanPorts, genevePorts, teredoPorts []int) string {
	x := baseBPF + " or ip proto 4 or ip proto 41 or ip proto 47 or ether proto 0x8864 or ether proto 0x8847 or ether proto 0x8848"
	for _, p := range append(append([]int{}, vxlanPorts...), genevePorts...) {
		x += fmt.Sprintf(" or udp dst port %d", p)
	}
	for _, p := range teredoPorts {
		x += fmt.Sprintf(" or udp port %d", p)
	}
	expr := x
	for i := 1; i < bpfVLANDepth; i++ {
		expr = x + " or (vlan and (" + expr + "))"
	}
	return x + " or (vlan and (" + expr + "))"
}

// Stats are the capture counters of a live handle, as libpcap reports them.
type Stats struct {
	// Received is the number of packets that passed the filter.
	Received uint64
	// KernelDropped is the number dropped because the buffer was full.
	KernelDropped uint64
	// IfDropped is the number the interface or its driver dropped.
	IfDropped uint64
}

// Live captures frames from a network interface through libpcap. Next and
// Stats must be called from one goroutine; Close may be called from
// another, and the pending Next then returns io.EOF within the read
// timeout.
type Live struct {
	h      *pcap.Handle
	closed atomic.Bool
	iface  string
	bpf    string
	link   uint16
}

// OpenLive opens a live capture as cfg says. Errors name the interface or
// the filter and wrap ErrNoSuchInterface, ErrPermission or ErrBadFilter
// when the cause is one of those.
func OpenLive(cfg LiveConfig) (*Live, error) {
	if cfg.Interface == "" {
		return nil, fmt.Errorf("capture: no interface given: %w", ErrNoSuchInterface)
	}
	if cfg.Interface != "any" {
		if _, err := net.InterfaceByName(cfg.Interface); err != nil {
			return nil, fmt.Errorf("interface %q: %w", cfg.Interface, ErrNoSuchInterface)
		}
	}
	snap := cfg.SnapLen
	if snap <= 0 {
		snap = maxSnapLen
	}
	timeout := cfg.ReadTimeout
	if timeout <= 0 {
		timeout = defaultReadTimeout
	}
	promisc := cfg.Promiscuous && cfg.Interface != "any" // libpcap refuses it with a warning

	in, err := pcap.NewInactiveHandle(cfg.Interface)
	if err != nil {
		return nil, liveErr(cfg.Interface, "create handle", err)
	}
	defer in.CleanUp()
	for _, s := range []struct {
		what string
		set  func() error
	}{
		{"snap length", func() error { return in.SetSnapLen(snap) }},
		{"promiscuous mode", func() error { return in.SetPromisc(promisc) }},
		{"immediate mode", func() error { return in.SetImmediateMode(cfg.Immediate) }},
		{"read timeout", func() error { return in.SetTimeout(timeout) }},
		{"buffer size", func() error {
			if cfg.BufferSize <= 0 {
				return nil
			}
			return in.SetBufferSize(cfg.BufferSize)
		}},
	} {
		if err := s.set(); err != nil {
			return nil, fmt.Errorf("interface %q: set %s: %v", cfg.Interface, s.what, err)
		}
	}
	h, err := in.Activate()
	if err != nil {
		return nil, liveErr(cfg.Interface, "activate", err)
	}
	l := &Live{h: h, iface: cfg.Interface, link: liveLinkType(h)}
	if err := l.setFilter(cfg.BPF); err != nil {
		h.Close()
		return nil, err
	}
	return l, nil
}

// setFilter installs expr, or the default filter when expr is empty.
func (l *Live) setFilter(expr string) error {
	if expr == "" {
		expr = DefaultBPF()
		if err := l.h.SetBPFFilter(expr); err == nil {
			l.bpf = expr
			return nil
		}
		expr = baseBPF // this link type has no VLAN support in libpcap
	}
	if err := l.h.SetBPFFilter(expr); err != nil {
		return fmt.Errorf("interface %q: filter %q: %w: %v", l.iface, expr, ErrBadFilter, err)
	}
	l.bpf = expr
	return nil
}

// liveErr classifies an error of pcap_create or pcap_activate. gopacket
// does not export its activation error type: its messages are matched.
func liveErr(iface, op string, err error) error {
	msg := err.Error()
	low := strings.ToLower(msg)
	var class error
	switch {
	case strings.Contains(low, "no such device"):
		class = ErrNoSuchInterface
	case strings.Contains(low, "permission denied"), strings.Contains(low, "operation not permitted"):
		class = ErrPermission
	}
	if class != nil {
		if low == "no such device" || low == "permission denied" { // gopacket's bare status text
			return fmt.Errorf("interface %q: %s: %w", iface, op, class)
		}
		return fmt.Errorf("interface %q: %s: %w (%s)", iface, op, class, msg)
	}
	return fmt.Errorf("interface %q: %s: %v", iface, op, err)
}

// OpenBSD's DLT_ numbers for raw IP and loopback differ from everyone else's.
const (
	dltRaw12   = 12 // DLT_RAW, or DLT_LOOP on OpenBSD
	dltRaw14   = 14 // DLT_RAW on OpenBSD
	linkRaw    = 101
	linkLoop   = 108
	linkSLL2   = 276
	dltLowMask = 0xff
)

// liveLinkType returns the handle's data link as a full LINKTYPE_ value.
// gopacket's Handle.LinkType is a uint8 (pcap_datalink's int cut to its low
// byte), so the full value is recovered from the DLTs the handle offers,
// whose names pcap_datalink_val_to_name gives; DLT_RAW (12 on most
// systems, 14 on OpenBSD) becomes LINKTYPE_RAW as in capture files.
func liveLinkType(h *pcap.Handle) uint16 {
	low := int(h.LinkType())
	dlt := low
	if dls, err := h.ListDataLinks(); err == nil {
		exact := false
		var wide []int
		for _, dl := range dls {
			v := pcap.DatalinkNameToVal(dl.Name)
			switch {
			case v == low:
				exact = true
			case v > dltLowMask && v&dltLowMask == low:
				wide = append(wide, v)
			}
		}
		if !exact && len(wide) == 1 {
			dlt = wide[0]
		}
	}
	return dltToLinkType(dlt, runtime.GOOS)
}

// dltToLinkType maps a DLT_ value to the LINKTYPE_ value files use.
func dltToLinkType(dlt int, goos string) uint16 {
	switch {
	case goos == "openbsd" && dlt == dltRaw12:
		return linkLoop
	case dlt == dltRaw12, dlt == dltRaw14:
		return linkRaw
	}
	return uint16(dlt)
}

// Interface is the interface captured on.
func (l *Live) Interface() string { return l.iface }

// LinkType is the LINKTYPE_ value of the frames Next returns.
func (l *Live) LinkType() uint16 { return l.link }

// Filter is the BPF expression in force.
func (l *Live) Filter() string { return l.bpf }

// Next returns the next frame, ErrTimeout when the read timeout expired
// with no packet, or io.EOF once the handle is closed. The frame's Data
// points into libpcap's buffer and is valid until the next call. It does
// not allocate.
func (l *Live) Next() (Frame, error) {
	data, ci, err := l.h.ZeroCopyReadPacketData()
	if err != nil {
		switch {
		case err == pcap.NextErrorTimeoutExpired:
			return Frame{}, ErrTimeout
		case errors.Is(err, io.EOF):
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("interface %q: read: %w", l.iface, err)
	}
	return Frame{Data: data, Timestamp: ci.Timestamp, CaptureLength: ci.CaptureLength, Length: ci.Length, LinkType: l.link}, nil
}

// Stats returns libpcap's counters for the handle.
func (l *Live) Stats() (Stats, error) {
	if l.closed.Load() {
		return Stats{}, fmt.Errorf("interface %q: stats: capture is closed", l.iface)
	}
	s, err := l.h.Stats()
	if err != nil {
		return Stats{}, fmt.Errorf("interface %q: stats: %w", l.iface, err)
	}
	return Stats{
		Received:      uint64(uint32(s.PacketsReceived)),
		KernelDropped: uint64(uint32(s.PacketsDropped)),
		IfDropped:     uint64(uint32(s.PacketsIfDropped)),
	}, nil
}

// Close stops the capture and releases the handle. It is safe to call more
// than once.
func (l *Live) Close() {
	l.closed.Store(true)
	l.h.Close()
}
