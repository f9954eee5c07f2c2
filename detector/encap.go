package detector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// DecodeConfig configures the decoding of encapsulations: the tunnels and
// mirror formats a sensor is handed (the configuration's decode: block).
// Every rule sees the innermost IP packet, as if it had arrived bare.
type DecodeConfig struct {
	// MaxDepth bounds the encapsulation layers peeled off one frame (VLAN
	// tags excepted): a tunnel bomb costs a bounded amount of work and is
	// counted as ReasonTunnelDepth.
	MaxDepth int `mapstructure:"max_depth"`
	// MaxVLANs bounds the 802.1Q/802.1ad tags of one frame.
	MaxVLANs int `mapstructure:"max_vlans"`
	// Each decoder can be switched off; a frame of a disabled kind is
	// decoded as its outer packet (a GRE packet is then GRE, not its
	// inner IP).
	MPLS   bool `mapstructure:"mpls"`
	PPPoE  bool `mapstructure:"pppoe"`
	GRE    bool `mapstructure:"gre"`
	ERSPAN bool `mapstructure:"erspan"`
	IPinIP bool `mapstructure:"ipip"`
	VXLAN  bool `mapstructure:"vxlan"`
	GENEVE bool `mapstructure:"geneve"`
	Teredo bool `mapstructure:"teredo"`
	// UDP ports of the UDP encapsulations (destination port; Teredo:
	// either port).
	VXLANPorts  []int `mapstructure:"vxlan_ports"`
	GENEVEPorts []int `mapstructure:"geneve_ports"`
	TeredoPorts []int `mapstructure:"teredo_ports"`
}

// DefaultDecodeConfig returns every decoder on, the IANA ports, 4 layers.
func DefaultDecodeConfig() DecodeConfig {
	return DecodeConfig{
		MaxDepth: 4, MaxVLANs: 8,
		MPLS: true, PPPoE: true, GRE: true, ERSPAN: true, IPinIP: true, VXLAN: true, GENEVE: true, Teredo: true,
		VXLANPorts: []int{4789}, GENEVEPorts: []int{6081}, TeredoPorts: []int{3544},
	}
}

// Validate checks the settings; errors name the key.
func (c DecodeConfig) Validate() error {
	var errs []error
	if c.MaxDepth < 0 || c.MaxDepth > 16 {
		errs = append(errs, fmt.Errorf("decode.max_depth: %d is out of range [0, 16]", c.MaxDepth))
	}
	if c.MaxVLANs < 2 || c.MaxVLANs > 16 {
		errs = append(errs, fmt.Errorf("decode.max_vlans: %d is out of range [2, 16]", c.MaxVLANs))
	}
	for _, ports := range []struct {
		key string
		v   []int
	}{{"vxlan_ports", c.VXLANPorts}, {"geneve_ports", c.GENEVEPorts}, {"teredo_ports", c.TeredoPorts}} {
		if len(ports.v) > maxTunnelPorts {
			errs = append(errs, fmt.Errorf("decode.%s: %d ports, at most %d", ports.key, len(ports.v), maxTunnelPorts))
		}
		for i, p := range ports.v {
			if p < 1 || p > 65535 {
				errs = append(errs, fmt.Errorf("decode.%s[%d]: %d is not a port (1-65535)", ports.key, i, p))
			}
		}
	}
	return errors.Join(errs...)
}

// maxTunnelPorts bounds each port list (the fast path compares each).
const maxTunnelPorts = 4

// Tunnel describes the outermost IP layer of a tunnelled packet, as
// Suricata's EVE "tunnel" object does.
type Tunnel struct {
	Src, Dst netip.Addr
	Proto    uint8
	// Depth is the number of IP-level encapsulations peeled off (GRE,
	// IP-in-IP, VXLAN, ...); 0 when the packet was not tunnelled.
	Depth uint8
}

// maxVLANsKept is how many VLAN ids a Packet keeps for the alert.
const maxVLANsKept = 4

// encap is the decoder's encapsulation state: the configuration in the
// form the per-frame path reads.
type encap struct {
	cfg                      DecodeConfig
	vxlan, geneve, teredo    [maxTunnelPorts]uint16
	nVXLAN, nGENEVE, nTeredo int
	anyUDP                   bool // some UDP encapsulation is on
}

func newEncap(cfg DecodeConfig) encap {
	e := encap{cfg: cfg}
	set := func(dst *[maxTunnelPorts]uint16, n *int, on bool, ports []int) {
		if !on {
			return
		}
		for _, p := range ports[:min(len(ports), maxTunnelPorts)] {
			dst[*n] = uint16(p)
			*n++
		}
	}
	set(&e.vxlan, &e.nVXLAN, cfg.VXLAN, cfg.VXLANPorts)
	set(&e.geneve, &e.nGENEVE, cfg.GENEVE, cfg.GENEVEPorts)
	set(&e.teredo, &e.nTeredo, cfg.Teredo, cfg.TeredoPorts)
	e.anyUDP = e.nVXLAN+e.nGENEVE+e.nTeredo > 0
	return e
}

// udpTunnel tells whether a UDP datagram between sport and dport is one of
// the configured UDP encapsulations (the fast path declines those).
func (e *encap) udpTunnel(sport, dport uint16) bool {
	for _, p := range e.vxlan[:e.nVXLAN] {
		if dport == p {
			return true
		}
	}
	for _, p := range e.geneve[:e.nGENEVE] {
		if dport == p {
			return true
		}
	}
	for _, p := range e.teredo[:e.nTeredo] {
		if dport == p || sport == p {
			return true
		}
	}
	return false
}

// Protocol numbers and EtherTypes of the encapsulations.
const (
	protoIPIP     = 4
	protoIPv6     = 41
	protoGRE      = 47
	etherMPLS     = 0x8847
	etherMPLSMc   = 0x8848
	etherPPPoE    = 0x8864
	etherTEB      = 0x6558 // transparent Ethernet bridging (Ethernet in GRE)
	etherERSPAN2  = 0x88be // ERSPAN type I and II (GRE protocol type)
	etherERSPAN3  = 0x22eb
	etherQinQ9100 = 0x9100
	pppIPv4       = 0x0021
	pppIPv6       = 0x0057
)

// unwrapped is what unwrap found: the innermost IP packet and where it
// came from.
type unwrapped struct {
	ip      []byte // the innermost IP packet (nil: none)
	tunnel  Tunnel
	l2      []byte // the innermost Ethernet header (nil: none)
	vlans   [maxVLANsKept]uint16
	nvlan   uint8
	peeled  bool // an encapsulation beyond the link layer was peeled
	reason  Reason
	sllType int // SLL/SLL2 packet type (broadcast, multicast), -1 if none
	// gaveUp says why unwrap gave up on the frame (tunnel or VLAN depth,
	// a malformed encapsulation), and last what it knew then of the
	// innermost IP header: where the frame was heading.
	gaveUp Anomaly
	last   ipAddrs
}

// ipAddrs are an IP header's addresses and protocol.
type ipAddrs struct {
	src, dst netip.Addr
	proto    uint8
}

// peekIP reads the addresses and protocol of the IP header (EtherType et)
// at the start of b, if b holds one.
func peekIP(b []byte, et uint16) (ipAddrs, bool) {
	switch {
	case et == etherIPv4 && len(b) >= 20 && b[0]>>4 == 4:
		return ipAddrs{netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), b[9]}, true
	case et == etherIPv6 && len(b) >= 40 && b[0]>>4 == 6:
		return ipAddrs{netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), b[6]}, true
	}
	return ipAddrs{}, false
}

// giveUp records that unwrap stops at this frame with reason r, for kind
// a.
func (u *unwrapped) giveUp(r Reason, a Anomaly) {
	u.reason, u.gaveUp = r, a
}

// unwrap walks a frame's link layer, VLAN tags and encapsulations to the
// innermost IP packet. It reads in place, allocates nothing, and stops
// after the configured depth; a frame it cannot follow gives a reason
// (ReasonOK with ip nil: not IP). An IP packet that is a tunnel's carrier
// but a fragment is not reassembled: it is the packet (its fragments are
// tracked as the outer protocol's).
func (e *encap) unwrap(lt LinkType, data []byte, u *unwrapped) {
	*u = unwrapped{sllType: -1}
	var et uint16
	switch lt {
	case LinkEthernet:
		if len(data) < 14 {
			u.reason = ReasonTruncated
			return
		}
		u.l2 = data[:14]
		et, data = binary.BigEndian.Uint16(data[12:14]), data[14:]
	case LinkLinuxSLL:
		if len(data) < 16 {
			u.reason = ReasonTruncated
			return
		}
		u.sllType = int(binary.BigEndian.Uint16(data[0:2]))
		et, data = binary.BigEndian.Uint16(data[14:16]), data[16:]
	case LinkLinuxSLL2:
		if len(data) < sll2HeaderLen {
			u.reason = ReasonTruncated
			return
		}
		u.sllType = int(data[10])
		et, data = binary.BigEndian.Uint16(data[0:2]), data[sll2HeaderLen:]
	case LinkRaw, LinkRawDLT12, LinkRawDLT14, LinkIPv4, LinkIPv6:
		et = etherOfIP(data)
	case LinkNull, LinkLoop:
		if len(data) < 4 {
			u.reason = ReasonTruncated
			return
		}
		data = data[4:]
		et = etherOfIP(data)
	default:
		u.reason = ReasonUnsupportedLink
		return
	}
	depth := 0
	for {
		// VLAN tags, any stack of 802.1Q / 802.1ad / 0x9100.
		for et == etherDot1Q || et == etherQinQ || et == etherQinQ9100 {
			if int(u.nvlan) >= e.cfg.MaxVLANs {
				u.giveUp(ReasonTunnelDepth, AnomalyVLANDepth)
				// Where was it heading? Skip the other tags (bounded by
				// the frame) to the IP header, reading no further.
				for (et == etherDot1Q || et == etherQinQ || et == etherQinQ9100) && len(data) >= 4 {
					et, data = binary.BigEndian.Uint16(data[2:4]), data[4:]
				}
				if a, ok := peekIP(data, et); ok {
					u.last = a
				}
				return
			}
			if len(data) < 4 {
				u.reason = ReasonTruncated
				return
			}
			if u.nvlan < maxVLANsKept {
				u.vlans[u.nvlan] = binary.BigEndian.Uint16(data[0:2]) & 0x0fff
			}
			u.nvlan++
			et, data = binary.BigEndian.Uint16(data[2:4]), data[4:]
		}
		switch et {
		case etherIPv4, etherIPv6:
			inner, next, ok := e.carrier(data, et == etherIPv6, u)
			if !ok {
				u.ip = data
				return
			}
			if depth++; depth > e.cfg.MaxDepth {
				u.giveUp(ReasonTunnelDepth, AnomalyTunnelDepth)
				if a, ok := peekIP(inner, next); ok {
					u.last = a // the packet one layer further in
				}
				return
			}
			u.peeled = true
			if u.reason != ReasonOK {
				if u.reason == ReasonTunnelMalformed {
					u.gaveUp = AnomalyMalformed
				}
				return
			}
			et, data = next, inner
			if et == etherEthernetInner {
				if !e.ethernet(&data, &et, u) {
					return
				}
			}
		case etherMPLS, etherMPLSMc:
			if !e.cfg.MPLS {
				return // not IP as far as the rules go
			}
			if depth++; depth > e.cfg.MaxDepth {
				u.giveUp(ReasonTunnelDepth, AnomalyTunnelDepth)
				return
			}
			u.peeled = true
			if !e.mpls(&data, &et, u) {
				if u.reason == ReasonTunnelMalformed {
					u.gaveUp = AnomalyMalformed
				}
				return
			}
		case etherPPPoE:
			if !e.cfg.PPPoE {
				return
			}
			if len(data) < 8 {
				u.reason = ReasonTruncated
				return
			}
			if data[0] != 0x11 || data[1] != 0 { // version 1, type 1, session data
				u.giveUp(ReasonTunnelMalformed, AnomalyMalformed)
				return
			}
			switch binary.BigEndian.Uint16(data[6:8]) {
			case pppIPv4:
				et = etherIPv4
			case pppIPv6:
				et = etherIPv6
			default:
				return // LCP, IPCP, ...: not IP
			}
			data = data[8:]
			u.peeled = true
		default:
			return // not IP (ARP, LLDP, ...)
		}
	}
}

// etherEthernetInner marks, as the "next EtherType", an inner Ethernet
// frame (VXLAN, GENEVE, GRE bridging, ERSPAN, an MPLS pseudowire).
const etherEthernetInner = 0xffff

// ethernet reads an inner Ethernet header off *data, recording it as the
// innermost link layer, and sets *et to its EtherType.
func (e *encap) ethernet(data *[]byte, et *uint16, u *unwrapped) bool {
	d := *data
	if len(d) < 14 {
		u.reason = ReasonTruncated
		return false
	}
	u.l2 = d[:14]
	*et, *data = binary.BigEndian.Uint16(d[12:14]), d[14:]
	return true
}

// etherOfIP returns the EtherType of a raw IP packet by its version.
func etherOfIP(b []byte) uint16 {
	if len(b) == 0 {
		return 0
	}
	switch b[0] >> 4 {
	case 4:
		return etherIPv4
	case 6:
		return etherIPv6
	}
	return 0
}

// carrier tells whether the IP packet in b carries an encapsulation the
// decoder peels, and returns its payload and what it holds (an EtherType,
// or etherEthernetInner). It records the outermost IP layer in u.tunnel.
// A fragment never is one: its fragments are tracked as they are.
func (e *encap) carrier(b []byte, v6 bool, u *unwrapped) (inner []byte, next uint16, ok bool) {
	var proto uint8
	var payload []byte
	var src, dst netip.Addr
	if !v6 {
		if len(b) < 20 || b[0]>>4 != 4 {
			return nil, 0, false
		}
		hl, length := int(b[0]&0x0f)*4, int(binary.BigEndian.Uint16(b[2:4]))
		if hl < 20 || length < hl || binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 {
			return nil, 0, false // malformed (the IP decoder says why) or a fragment
		}
		proto = b[9]
		payload = b[min(hl, len(b)):min(length, len(b))]
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
	} else {
		if len(b) < 40 || b[0]>>4 != 6 {
			return nil, 0, false
		}
		proto = b[6]
		payload = b[40:min(40+int(binary.BigEndian.Uint16(b[4:6])), len(b))]
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	}
	switch proto {
	case protoIPIP:
		if !e.cfg.IPinIP {
			return nil, 0, false
		}
		inner, next = payload, etherIPv4
	case protoIPv6:
		if !e.cfg.IPinIP {
			return nil, 0, false
		}
		inner, next = payload, etherIPv6
	case protoGRE:
		if !e.cfg.GRE {
			return nil, 0, false
		}
		inner, next, ok = e.gre(payload, u)
		if !ok {
			return nil, 0, false
		}
	case protoUDP:
		if !e.anyUDP || len(payload) < 8 {
			return nil, 0, false
		}
		sport, dport := binary.BigEndian.Uint16(payload[0:2]), binary.BigEndian.Uint16(payload[2:4])
		if !e.udpTunnel(sport, dport) {
			return nil, 0, false
		}
		inner, next = e.udp(payload[8:], sport, dport, u)
	default:
		return nil, 0, false
	}
	if u.tunnel.Depth == 0 {
		u.tunnel.Src, u.tunnel.Dst, u.tunnel.Proto = src, dst, proto
	}
	u.last = ipAddrs{src, dst, proto}
	u.tunnel.Depth++
	return inner, next, true
}

// gre peels a GRE header (RFC 2784/2890; ERSPAN I/II/III inside). A GRE
// packet that is not one the decoder follows (version 1: PPTP) is counted
// and decoded as GRE.
func (e *encap) gre(b []byte, u *unwrapped) ([]byte, uint16, bool) {
	if len(b) < 4 {
		u.reason = ReasonTruncated
		return nil, 0, true
	}
	flags, proto := binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
	if flags&7 != 0 {
		u.reason = ReasonTunnelUnsupported // GRE version 1 (PPTP's enhanced GRE)
		return nil, 0, true
	}
	n := 4
	if flags&0x8000 != 0 { // checksum present
		n += 4
	}
	if flags&0x2000 != 0 { // key present
		n += 4
	}
	seq := flags&0x1000 != 0
	if seq {
		n += 4
	}
	if len(b) < n {
		u.reason = ReasonTruncated
		return nil, 0, true
	}
	b = b[n:]
	switch proto {
	case etherIPv4, etherIPv6:
		return b, proto, true
	case etherTEB:
		return b, etherEthernetInner, true
	case etherERSPAN2:
		if !e.cfg.ERSPAN {
			return nil, 0, false
		}
		if !seq { // type I: no header, Ethernet at once
			return b, etherEthernetInner, true
		}
		if len(b) < 8 {
			u.reason = ReasonTruncated
			return nil, 0, true
		}
		if b[0]>>4 != 1 { // type II's version
			u.reason = ReasonTunnelMalformed
			return nil, 0, true
		}
		return b[8:], etherEthernetInner, true
	case etherERSPAN3:
		if !e.cfg.ERSPAN {
			return nil, 0, false
		}
		if len(b) < 12 {
			u.reason = ReasonTruncated
			return nil, 0, true
		}
		if b[0]>>4 != 2 { // type III's version
			u.reason = ReasonTunnelMalformed
			return nil, 0, true
		}
		n := 12
		if b[11]&1 != 0 { // O: an 8-byte platform-specific sub-header follows
			n += 8
		}
		if len(b) < n {
			u.reason = ReasonTruncated
			return nil, 0, true
		}
		return b[n:], etherEthernetInner, true
	case etherMPLS, etherMPLSMc:
		return b, proto, true
	}
	return nil, 0, false // another protocol in GRE: decoded as GRE
}

// udp peels a VXLAN, GENEVE or Teredo payload.
func (e *encap) udp(b []byte, sport, dport uint16, u *unwrapped) ([]byte, uint16) {
	for _, p := range e.vxlan[:e.nVXLAN] {
		if dport == p {
			if len(b) < 8 {
				u.reason = ReasonTruncated
				return nil, 0
			}
			if b[0]&0x08 == 0 { // I flag: a valid VNI
				u.reason = ReasonTunnelMalformed
				return nil, 0
			}
			return b[8:], etherEthernetInner
		}
	}
	for _, p := range e.geneve[:e.nGENEVE] {
		if dport == p {
			if len(b) < 8 {
				u.reason = ReasonTruncated
				return nil, 0
			}
			if b[0]>>6 != 0 {
				u.reason = ReasonTunnelMalformed // unknown version
				return nil, 0
			}
			n := 8 + int(b[0]&0x3f)*4
			if len(b) < n {
				u.reason = ReasonTruncated
				return nil, 0
			}
			switch pt := binary.BigEndian.Uint16(b[2:4]); pt {
			case etherTEB:
				return b[n:], etherEthernetInner
			case etherIPv4, etherIPv6:
				return b[n:], pt
			}
			u.reason = ReasonTunnelUnsupported
			return nil, 0
		}
	}
	// Teredo (RFC 4380): IPv6, after an optional authentication and an
	// optional origin indication.
	if len(b) >= 2 && b[0] == 0 && b[1] == 1 { // authentication
		if len(b) < 4 {
			u.reason = ReasonTruncated
			return nil, 0
		}
		n := 4 + int(b[2]) + int(b[3]) + 8 + 1
		if len(b) < n {
			u.reason = ReasonTruncated
			return nil, 0
		}
		b = b[n:]
	}
	if len(b) >= 2 && b[0] == 0 && b[1] == 0 { // origin indication
		if len(b) < 8 {
			u.reason = ReasonTruncated
			return nil, 0
		}
		b = b[8:]
	}
	if len(b) == 0 || b[0]>>4 != 6 {
		u.reason = ReasonTunnelMalformed
		return nil, 0
	}
	return b, etherIPv6
}

// mpls pops an MPLS label stack of any depth (4 bytes a label: the frame
// bounds the work) and sets *et to what follows the bottom of stack: IPv4
// or IPv6 by the first nibble, or, after an Ethernet pseudowire control
// word (first nibble 0), inner Ethernet.
func (e *encap) mpls(data *[]byte, et *uint16, u *unwrapped) bool {
	b := *data
	for {
		if len(b) < 4 {
			u.reason = ReasonTunnelMalformed // no bottom of stack in the frame
			return false
		}
		bos := b[2]&1 != 0
		b = b[4:]
		if bos {
			break
		}
	}
	if len(b) == 0 {
		u.reason = ReasonTruncated
		return false
	}
	switch b[0] >> 4 {
	case 4:
		*et = etherIPv4
	case 6:
		*et = etherIPv6
	case 0: // pseudowire control word (RFC 4385), then Ethernet
		if len(b) < 4 {
			u.reason = ReasonTruncated
			return false
		}
		b = b[4:]
		if !e.ethernet(&b, et, u) {
			return false
		}
	default:
		u.reason = ReasonTunnelMalformed
		return false
	}
	*data = b
	return true
}
