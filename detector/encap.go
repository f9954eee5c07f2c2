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
// came from. The IP headers it names (the outermost carrier's, the last
// one read) are offsets into the frame, read into addresses only when
// asked (tunnel, lastAddrs): a tunnel's layers cost no address each.
type unwrapped struct {
	frame []byte // the frame unwrapped
	ip    []byte // the innermost IP packet (nil: none)
	l2    []byte // the innermost Ethernet header (nil: none)
	// outerAt is where the outermost carrier's IP header begins in frame
	// (when depth > 0); depth is the number of IP-level encapsulations
	// peeled (Tunnel.Depth).
	outerAt int
	depth   uint8
	vlans   [maxVLANsKept]uint16
	nvlan   uint8
	peeled  bool // an encapsulation beyond the link layer was peeled
	reason  Reason
	sllType int // SLL/SLL2 packet type (broadcast, multicast), -1 if none
	// gaveUp says why unwrap gave up on the frame (tunnel or VLAN depth,
	// a malformed encapsulation), and lastAt and lastEt what it knew then
	// of the innermost IP header (lastAddrs): where the frame was heading
	// (lastEt 0: nothing).
	gaveUp Anomaly
	lastEt uint16
	lastAt int
}

// ipAddrs are an IP header's addresses and protocol.
type ipAddrs struct {
	src, dst netip.Addr
	proto    uint8
}

// isIPHeader tells whether b begins with an IP header of EtherType et
// (its fixed part whole, its version the EtherType's).
func isIPHeader(b []byte, et uint16) bool {
	switch et {
	case etherIPv4:
		return len(b) >= 20 && b[0]>>4 == 4
	case etherIPv6:
		return len(b) >= 40 && b[0]>>4 == 6
	}
	return false
}

// peekIP reads the addresses and protocol of the IP header (EtherType et)
// at the start of b, if b holds one.
func peekIP(b []byte, et uint16) (ipAddrs, bool) {
	if !isIPHeader(b, et) {
		return ipAddrs{}, false
	}
	if et == etherIPv4 {
		return ipAddrs{netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), b[9]}, true
	}
	return ipAddrs{netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), b[6]}, true
}

// at is where b, a part of the frame cut from its front, begins in it.
func (u *unwrapped) at(b []byte) int { return cap(u.frame) - cap(b) }

// setLast records the IP header b (EtherType et), if it is one, as the
// innermost one read (lastAddrs).
func (u *unwrapped) setLast(b []byte, et uint16) {
	if isIPHeader(b, et) {
		u.lastEt, u.lastAt = et, u.at(b)
	}
}

// lastAddrs is what unwrap knew of the innermost IP header when it gave
// up (the zero value: nothing).
func (u *unwrapped) lastAddrs() ipAddrs {
	if u.lastEt == 0 {
		return ipAddrs{}
	}
	a, _ := peekIP(u.frame[u.lastAt:], u.lastEt)
	return a
}

// setTunnel writes into t (Packet.Tunnel) the outermost carrier, when
// something was peeled: field by field, not a 56-byte value returned and
// copied.
func (u *unwrapped) setTunnel(t *Tunnel) {
	if u.depth == 0 {
		return
	}
	b := u.frame[u.outerAt:]
	if b[0]>>4 == 4 {
		t.Src, t.Dst, t.Proto = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), b[9]
	} else {
		t.Src, t.Dst, t.Proto = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), b[6]
	}
	t.Depth = u.depth
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
	*u = unwrapped{}
	u.frame, u.sllType = data, -1
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
	depth, maxDepth, maxVLANs := 0, e.cfg.MaxDepth, e.cfg.MaxVLANs
	for {
		// VLAN tags, any stack of 802.1Q / 802.1ad / 0x9100.
		for et == etherDot1Q || et == etherQinQ || et == etherQinQ9100 {
			if int(u.nvlan) >= maxVLANs {
				u.giveUp(ReasonTunnelDepth, AnomalyVLANDepth)
				// Where was it heading? Skip the other tags (bounded by
				// the frame) to the IP header, reading no further.
				for (et == etherDot1Q || et == etherQinQ || et == etherQinQ9100) && len(data) >= 4 {
					et, data = binary.BigEndian.Uint16(data[2:4]), data[4:]
				}
				u.setLast(data, et)
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
			// A carrier? Read here, in the loop, not in a call per layer:
			// IP-in-IP costs a few instructions a layer, GRE and the UDP
			// encapsulations a call to carried. A fragment never is one:
			// its fragments are tracked as they are.
			var proto uint8
			var payload []byte
			if et == etherIPv4 {
				if len(data) < 20 {
					u.ip = data
					return
				}
				vhl := data[0]
				hl, length := int(vhl&0x0f)<<2, int(data[2])<<8|int(data[3])
				if proto = data[9]; vhl>>4 != 4 || !carrierProto(proto) || hl < 20 || length < hl || data[6]&0x3f != 0 || data[7] != 0 {
					u.ip = data // the innermost packet; malformed (the IP decoder says why); a fragment
					return
				}
				end := min(length, len(data))
				payload = data[min(hl, end):end]
			} else {
				if len(data) < 40 || data[0]>>4 != 6 {
					u.ip = data
					return
				}
				if proto = data[6]; !carrierProto(proto) {
					u.ip = data
					return
				}
				payload = data[40:min(40+int(binary.BigEndian.Uint16(data[4:6])), len(data))]
			}
			var inner []byte
			var next uint16
			if proto == protoIPIP || proto == protoIPv6 {
				if !e.cfg.IPinIP {
					u.ip = data
					return
				}
				inner, next = payload, etherIPv4
				if proto == protoIPv6 {
					next = etherIPv6
				}
			} else {
				var ok bool
				if inner, next, ok = e.carried(payload, proto, u); !ok {
					u.ip = data
					return
				}
			}
			// The outermost carrier (setTunnel) and the last (lastAddrs),
			// by where they begin in the frame.
			at := u.at(data)
			if u.depth == 0 {
				u.outerAt = at
			}
			u.lastEt, u.lastAt = et, at
			u.depth++
			if depth++; depth > maxDepth {
				u.giveUp(ReasonTunnelDepth, AnomalyTunnelDepth)
				u.setLast(inner, next) // the packet one layer further in
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
				var ok bool
				if data, et, ok = u.ethernet(data); !ok {
					return
				}
			}
		case etherMPLS, etherMPLSMc:
			if !e.cfg.MPLS {
				return // not IP as far as the rules go
			}
			if depth++; depth > maxDepth {
				u.giveUp(ReasonTunnelDepth, AnomalyTunnelDepth)
				return
			}
			u.peeled = true
			var ok bool
			if data, et, ok = u.mpls(data); !ok {
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

// ethernet reads an inner Ethernet header off b, recording it as the
// innermost link layer, and returns what follows and its EtherType.
// (Values returned, not pointers to the caller's: a slice whose address
// is taken lives in memory, and unwrap's every step paid for it.)
func (u *unwrapped) ethernet(b []byte) ([]byte, uint16, bool) {
	if len(b) < 14 {
		u.reason = ReasonTruncated
		return b, 0, false
	}
	u.l2 = b[:14]
	return b[14:], binary.BigEndian.Uint16(b[12:14]), true
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

// carried peels the GRE or UDP encapsulation (protocol proto) in payload,
// an IP packet's, for unwrap: it returns what the encapsulation holds (an
// EtherType, or etherEthernetInner), or false when the packet carries
// none the decoder follows.
func (e *encap) carried(payload []byte, proto uint8, u *unwrapped) (inner []byte, next uint16, ok bool) {
	switch proto {
	case protoGRE:
		if !e.cfg.GRE {
			return nil, 0, false
		}
		return e.gre(payload, u)
	case protoUDP:
		if !e.anyUDP || len(payload) < 8 {
			return nil, 0, false
		}
		sport, dport := binary.BigEndian.Uint16(payload[0:2]), binary.BigEndian.Uint16(payload[2:4])
		if !e.udpTunnel(sport, dport) {
			return nil, 0, false
		}
		inner, next = e.udp(payload[8:], sport, dport, u)
		return inner, next, true
	}
	return nil, 0, false
}

// carrierProto tells whether an IP packet of protocol proto may carry an
// encapsulation the decoder peels (IP-in-IP, IPv6-in-IP, GRE, UDP).
func carrierProto(proto uint8) bool {
	return proto == protoIPIP || proto == protoIPv6 || proto == protoGRE || proto == protoUDP
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
// bounds the work) off b and returns what follows the bottom of stack and
// its EtherType: IPv4
// or IPv6 by the first nibble, or, after an Ethernet pseudowire control
// word (first nibble 0), inner Ethernet.
func (u *unwrapped) mpls(b []byte) ([]byte, uint16, bool) {
	for {
		if len(b) < 4 {
			u.reason = ReasonTunnelMalformed // no bottom of stack in the frame
			return b, 0, false
		}
		bos := b[2]&1 != 0
		b = b[4:]
		if bos {
			break
		}
	}
	if len(b) == 0 {
		u.reason = ReasonTruncated
		return b, 0, false
	}
	switch b[0] >> 4 {
	case 4:
		return b, etherIPv4, true
	case 6:
		return b, etherIPv6, true
	case 0: // pseudowire control word (RFC 4385), then Ethernet
		if len(b) < 4 {
			u.reason = ReasonTruncated
			return b, 0, false
		}
		return u.ethernet(b[4:])
	}
	u.reason = ReasonTunnelMalformed
	return b, 0, false
}
