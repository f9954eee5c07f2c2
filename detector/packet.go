package detector

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/icmpids/icmpids/detector/frag"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/sketch"
)

// IP protocol numbers the engine cares about: gopacket's values, as the
// uint8 a Packet's Proto is.
const (
	ProtoICMPv4 = uint8(layers.IPProtocolICMPv4)
	ProtoICMPv6 = uint8(layers.IPProtocolICMPv6)
)

// ICMP type numbers of the echo messages (gopacket's constants), which
// the Packet's own methods test.
const (
	ICMPv4EchoReply   = layers.ICMPv4TypeEchoReply
	ICMPv4EchoRequest = layers.ICMPv4TypeEchoRequest
	ICMPv6EchoRequest = layers.ICMPv6TypeEchoRequest
	ICMPv6EchoReply   = layers.ICMPv6TypeEchoReply
)

// Packet is one decoded frame: a flat value the decoder fills in place and
// the rules read. It holds no reference to the capture buffer, so it stays
// valid after the buffer is reused.
type Packet struct {
	// Time is the packet's capture timestamp (packet time).
	Time time.Time
	// TimeNs is Time in Unix nanoseconds, set by the engine before the
	// rules run (from Time, clamped like it to the engine's clock): rules
	// and the engine compare and bucket it instead of calling time.Time
	// methods per packet. Events keep time.Time values.
	TimeNs int64
	// WireLen is the frame's length on the wire; CapLen what was captured.
	WireLen, CapLen int

	// SrcMAC is the frame's Ethernet source address when HasSrcMAC is set
	// (Ethernet frames only): the rules that learn which link-layer
	// address an IP address speaks from (routers, neighbors) read it.
	SrcMAC    [6]byte
	HasSrcMAC bool

	// VLANs are the frame's 802.1Q/802.1ad VLAN ids, outermost first (the
	// first maxVLANsKept of NVLAN).
	VLANs [maxVLANsKept]uint16
	NVLAN uint8
	// Tunnel describes the outermost IP layer when the packet arrived
	// encapsulated (Tunnel.Depth > 0): the rules see the inner packet.
	Tunnel Tunnel

	// L2Broadcast is set when the Ethernet destination is ff:ff:ff:ff:ff:ff;
	// L2Multicast when it is any group address (broadcast included).
	L2Broadcast, L2Multicast bool

	// IPv6 tells the address family; Src and Dst are the IP addresses.
	IPv6     bool
	Src, Dst netip.Addr
	// TTL is the IPv4 TTL or the IPv6 hop limit.
	TTL uint8
	// Proto is the upper-layer protocol after any IPv6 extension headers.
	Proto uint8
	// IPLen is the IP datagram length the header claims (IPv4 total length,
	// IPv6 40 + payload length); HeaderLen the bytes of IP header before the
	// fragmentable part (IPv4 IHL*4; IPv6 40 plus the unfragmentable
	// extension headers that precede the fragment header).
	IPLen, HeaderLen int

	// Fragment is set for any fragment (IPv4 MF or offset, or an IPv6
	// fragment header). FragID is the IPv4 id or IPv6 identification,
	// FragOffset the offset in bytes, FragLen the fragment's data length
	// (by the header's length fields), MoreFragments the MF flag.
	Fragment      bool
	MoreFragments bool
	FragID        uint32
	FragOffset    int
	FragLen       int

	// --- fragment tracking ---
	// FragSum is a CRC-32C (Castagnoli, the SSE4.2 instruction on amd64)
	// of the fragment's captured data (fragments only): the tracker tells
	// an exact duplicate from conflicting data by it, without copying the
	// data. FragUpperOff is, in an IPv6 first
	// fragment, the bytes of extension headers between the fragment header
	// and the upper-layer header (0 otherwise).
	FragSum      uint32
	FragUpperOff int
	// FragChainIncomplete is set for an IPv6 first fragment whose
	// extension-header chain runs on into the next fragment (RFC 7112
	// forbids it; evasion uses it): its upper-layer header is not in it.
	FragChainIncomplete bool
	// Reassembled is set on a packet the engine reassembled from its
	// fragments (a neighbor-discovery message, or a tunnel carrier whose
	// inner packet this is) after the fragments themselves were handled:
	// the rules judge it as if it had arrived whole.
	Reassembled bool
	// GaveUp says why the decoder gave up on the frame (AnomalyNone when
	// it did not); such a frame has no IP header for the rules (Src is
	// invalid) except for an AnomalyObserver.
	GaveUp Anomaly
	// Frag is the fragment tracker's verdict on this fragment, filled by
	// the engine before the rules run (zero for non-fragments).
	Frag frag.Verdict
	// --- end fragment tracking ---

	// HasICMP is set when an ICMPv4 or ICMPv6 header was decoded (a
	// fragmented ICMP message carries it in its first fragment only).
	HasICMP  bool
	ICMPType uint8
	ICMPCode uint8
	// ICMPID and ICMPSeq are the echo identifier and sequence number
	// (echo request and reply only).
	ICMPID, ICMPSeq uint16
	// ICMPData is the whole ICMP/ICMPv6 message as captured, from its type
	// byte, bounded by the IP length (nil without an ICMP header). It
	// points into the frame being handled: it is valid only while the
	// engine handles the packet (Classify and Observe), and a rule that
	// needs something of it later keeps a value it computed, never the
	// slice. Package icmpmsg reads the fields of the messages in it.
	ICMPData []byte

	// SourceRemote is set when several engines share the work
	// (detector/shard) and the packet's source belongs to another engine:
	// rules keyed by the source (a sweep's scanner, a tunnel's client)
	// leave the packet to that engine's SourceObserver call. It is false
	// with one engine.
	SourceRemote bool
	// LinkRemote is set, with several engines, on a packet whose
	// link-scope learning another engine (the link's) does: a
	// LinkObserver leaves it to its ObserveLink there. False with one
	// engine.
	LinkRemote bool

	// Class is the classification step's verdict (see Classifier), set
	// before the rules observe the packet.
	Class Class

	// nd is NDOptions' value once ndDone is set (the engine clears it for
	// each packet).
	nd     icmpmsg.ND
	ndDone bool

	// srcHash and dstHash are SrcHash's and DstHash's values once
	// srcHashed and dstHashed are set (the engine clears them for each
	// packet).
	srcHash, dstHash     uint64
	srcHashed, dstHashed bool
}

// DstHash is sketch.HashAddr(p.Dst), computed at most once per packet
// however many rules ask for it.
func (p *Packet) DstHash() uint64 {
	if !p.dstHashed {
		p.dstHash, p.dstHashed = sketch.HashAddr(p.Dst), true
	}
	return p.dstHash
}

// NDOptions is what the options of an ICMPv6 neighbor-discovery message
// (router advertisement, neighbor solicitation or advertisement,
// redirect) hold, read in one bounded walk (icmpmsg.ParseND) at most once
// per packet however many rules ask; for any other packet it reports no
// option. Its prefixes are read from p.ICMPData (ND.Prefix), so, like
// ICMPData, it is valid only while the engine handles the packet.
func (p *Packet) NDOptions() *icmpmsg.ND {
	if !p.ndDone {
		p.ndDone = true
		if off := ndOptionsAt(p); off > 0 {
			p.nd = icmpmsg.ParseND(p.ICMPData, off)
		} else {
			p.nd = icmpmsg.ND{}
		}
	}
	return &p.nd
}

// ndOptionsAt is where the options of p's neighbor-discovery message
// begin, 0 when p is not one.
func ndOptionsAt(p *Packet) int {
	if !p.IPv6 || !p.HasICMP {
		return 0
	}
	switch p.ICMPType {
	case icmpmsg.V6RouterAdvert:
		return icmpmsg.RouterAdvertOptions
	case icmpmsg.V6NeighSolicit, icmpmsg.V6NeighAdvert:
		return icmpmsg.NeighborOptions
	case icmpmsg.V6Redirect:
		return icmpmsg.RedirectOptions
	}
	return 0
}

// SrcHash is sketch.HashAddr(p.Src), computed at most once per packet
// however many rules and the attack tracker ask for it.
func (p *Packet) SrcHash() uint64 {
	if !p.srcHashed {
		p.srcHash, p.srcHashed = sketch.HashAddr(p.Src), true
	}
	return p.srcHash
}

// DstMulticast is p.Dst.IsMulticast() in a few instructions, inlined: the
// 16-byte form is ff00::/8, or ::ffff:224.0.0.0/100 (an IPv4 group, and
// one mapped into IPv6).
func (p *Packet) DstMulticast() bool {
	b := p.Dst.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	return hi>>56 == 0xff || hi == 0 && lo>>28 == 0xffffe
}

// IsICMP tells whether the packet belongs to ICMP or ICMPv6 (a non-first
// fragment of an ICMP message included).
func (p *Packet) IsICMP() bool {
	return p.Proto == ProtoICMPv4 || p.Proto == ProtoICMPv6
}

// IsEchoRequest tells whether the packet carries an ICMP/ICMPv6 echo request header.
func (p *Packet) IsEchoRequest() bool {
	if !p.HasICMP || p.ICMPCode != 0 {
		return false
	}
	if p.IPv6 {
		return p.ICMPType == ICMPv6EchoRequest
	}
	return p.ICMPType == ICMPv4EchoRequest
}

// IsEchoReply tells whether the packet carries an ICMP/ICMPv6 echo reply header.
func (p *Packet) IsEchoReply() bool {
	if !p.HasICMP || p.ICMPCode != 0 {
		return false
	}
	if p.IPv6 {
		return p.ICMPType == ICMPv6EchoReply
	}
	return p.ICMPType == ICMPv4EchoReply
}

// ProtoName is the EVE "proto" value for the packet: "ICMP", "IPv6-ICMP",
// or the IANA protocol number for anything else.
func (p *Packet) ProtoName() string {
	return ProtoName(p.Proto)
}
