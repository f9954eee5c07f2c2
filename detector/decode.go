package detector

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// LinkType is a pcap LINKTYPE_/DLT_ value. gopacket's layers.LinkType is a
// uint8 and cannot hold LINKTYPE_LINUX_SLL2 (276), hence this type.
type LinkType uint16

// Link types the decoder understands.
const (
	LinkNull      LinkType = 0   // BSD loopback, host byte order
	LinkEthernet  LinkType = 1   // Ethernet, with 802.1Q / QinQ tags
	LinkRawDLT12  LinkType = 12  // raw IP as libpcap reports it on Linux
	LinkRawDLT14  LinkType = 14  // raw IP as libpcap reports it on some BSDs
	LinkRaw       LinkType = 101 // raw IPv4 or IPv6
	LinkLoop      LinkType = 108 // OpenBSD loopback, network byte order
	LinkLinuxSLL  LinkType = 113 // Linux cooked capture v1
	LinkIPv4      LinkType = 228 // raw IPv4
	LinkIPv6      LinkType = 229 // raw IPv6
	LinkLinuxSLL2 LinkType = 276 // Linux cooked capture v2
)

// Supported tells whether the decoder handles frames of link type lt.
func (lt LinkType) Supported() bool {
	switch lt {
	case LinkNull, LinkEthernet, LinkRawDLT12, LinkRawDLT14, LinkRaw, LinkLoop,
		LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkLinuxSLL2:
		return true
	}
	return false
}

// Reason says why a frame was not (fully) decoded. The hot path counts
// reasons; it never formats or logs a per-packet error.
type Reason uint8

// Decode outcomes.
const (
	ReasonOK                  Reason = iota // decoded
	ReasonNotIP                             // a frame without IP (ARP, LLDP, ...): skipped, not an error
	ReasonUnsupportedLink                   // link type the decoder does not handle
	ReasonTruncated                         // captured bytes end inside a header
	ReasonMalformedLink                     // link-layer header invalid
	ReasonMalformedIP                       // IPv4/IPv6 header invalid (version, IHL, length)
	ReasonMalformedICMP                     // ICMP header invalid
	ReasonIPLengthZero                      // IPv4 total length 0 (TSO on the capturing host, or forged): decoded by the captured bytes
	ReasonIPLengthBeyondFrame               // IPv4 total length larger than the frame on the wire
	ReasonICMPMissing                       // IPv4 protocol 1 with no ICMP header at all
	ReasonTunnelDepth                       // more encapsulation layers or VLAN tags than decode.max_depth / max_vlans
	ReasonTunnelMalformed                   // an encapsulation header invalid (VXLAN without its I flag, MPLS without a bottom of stack, ...)
	ReasonTunnelUnsupported                 // an encapsulation the decoder does not follow (GRE version 1, GENEVE of another protocol)
	NumReasons                              // number of reasons, for counter arrays
)

var reasonNames = [NumReasons]string{
	ReasonOK:                  "ok",
	ReasonNotIP:               "not_ip",
	ReasonUnsupportedLink:     "unsupported_link",
	ReasonTruncated:           "truncated",
	ReasonMalformedLink:       "malformed_link",
	ReasonMalformedIP:         "malformed_ip",
	ReasonMalformedICMP:       "malformed_icmp",
	ReasonIPLengthZero:        "ip_length_zero",
	ReasonIPLengthBeyondFrame: "ip_length_beyond_frame",
	ReasonICMPMissing:         "icmp_missing",
	ReasonTunnelDepth:         "tunnel_depth",
	ReasonTunnelMalformed:     "tunnel_malformed",
	ReasonTunnelUnsupported:   "tunnel_unsupported",
}

// String returns the reason's stable snake_case name (used in stats output).
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Decoder turns raw frames into Packets with preallocated
// gopacket.DecodingLayerParsers, one per possible first layer, all sharing
// the same layer values. It does not allocate per frame. A Decoder is not
// safe for concurrent use: give each capture goroutine its own.
type Decoder struct {
	eth       layers.Ethernet
	dot1q     layers.Dot1Q
	sll       layers.LinuxSLL
	loop      layers.Loopback
	ip4       layers.IPv4
	ip6       ipv6Layer
	icmp4     layers.ICMPv4
	icmp6     layers.ICMPv6
	icmp6echo layers.ICMPv6Echo

	fromEthernet, fromSLL, fromLoop, fromIPv4, fromIPv6, fromDot1Q *gopacket.DecodingLayerParser
	decoded                                                        []gopacket.LayerType

	enc encap        // the encapsulation decoders (DecodeConfig)
	crc *crc32.Table // CRC-32C, for the fragments' sums (fragSum)
	unw unwrapped    // unwrap's result, reused
	// lenCheck is decodeLayers' verdict on the IPv4 total length.
	lenCheck Reason
	// frag is the last frame when it decoded as a fragment (the engine
	// reassembles some trains: reassemble.go); stale otherwise.
	frag fragFrame
}

// fragFrame is a frame that decoded as a fragment: its link type, its
// bytes, and where its outermost IP header begins (-1: behind a tunnel,
// or not known).
type fragFrame struct {
	lt   LinkType
	data []byte
	ipAt int
}

// NewDecoder returns a Decoder with every encapsulation decoder on
// (DefaultDecodeConfig).
func NewDecoder() *Decoder { return NewDecoderConfig(DefaultDecodeConfig()) }

// NewDecoderConfig returns a Decoder that follows the encapsulations cfg
// enables; cfg must be valid.
func NewDecoderConfig(cfg DecodeConfig) *Decoder {
	d := &Decoder{decoded: make([]gopacket.LayerType, 0, 16), enc: newEncap(cfg), crc: crc32.MakeTable(crc32.Castagnoli)}
	// gopacket's layers behind guards that turn short and malformed
	// headers into sentinel errors before gopacket allocates one.
	all := []gopacket.DecodingLayer{
		guarded{&d.eth, minLen(14)},
		guarded{&d.dot1q, minLen(4)},
		guarded{&d.sll, minLen(16)},
		guarded{&d.loop, checkLoopback},
		guarded{&d.ip4, checkIPv4},
		&d.ip6,
		guarded{&d.icmp4, minLen(8)},
		guarded{&d.icmp6, minLen(4)},
		guarded{&d.icmp6echo, minLen(4)},
	}
	mk := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first)
		// A sparse array indexed by layer type beats the default map.
		var dlc gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
		for _, l := range all {
			dlc = dlc.Put(l)
		}
		p.SetDecodingLayerContainer(dlc)
		p.IgnoreUnsupported = true // TCP, UDP, fragment data...: stop there, no error
		return p
	}
	d.fromEthernet = mk(layers.LayerTypeEthernet)
	d.fromSLL = mk(layers.LayerTypeLinuxSLL)
	d.fromLoop = mk(layers.LayerTypeLoopback)
	d.fromIPv4 = mk(layers.LayerTypeIPv4)
	d.fromIPv6 = mk(layers.LayerTypeIPv6)
	d.fromDot1Q = mk(layers.LayerTypeDot1Q)
	return d
}

// sll2HeaderLen is the size of a LINKTYPE_LINUX_SLL2 header.
const sll2HeaderLen = 20

// Decode fills p from one frame of link type lt captured at ts; wireLen is
// the frame's length on the wire. It returns ReasonOK when an IP header was
// decoded. p holds the IP fields (p.Src is valid) whenever an IP header
// decoded, even when the reason reports a problem above it (truncated or
// malformed ICMP); its ICMP fields are set only when HasICMP is. data may be reused by the caller after Decode returns.
func (d *Decoder) Decode(lt LinkType, data []byte, ts time.Time, wireLen int, p *Packet) Reason {
	// Cleared in place, then set field by field: a composite literal is
	// built on the stack and copied in 16-byte moves over its 8-byte
	// stores, a store-forwarding stall on every frame.
	*p = Packet{}
	p.Time, p.WireLen, p.CapLen = ts, wireLen, len(data)
	if wireLen < len(data) {
		p.WireLen = len(data)
	}
	if d.fast(lt, data, p) { // plain TCP, UDP, ICMP: see fast.go
		if p.Fragment {
			// The fast path's IP header follows the Ethernet header and
			// its tags, or starts the frame.
			d.keepFragment(lt, data, fastIPAt(p))
		}
		return ReasonOK
	}
	r, ipAt := d.slow(lt, data, p)
	if p.Fragment {
		d.keepFragment(lt, data, ipAt)
	}
	return r
}

// keepFragment records the frame of a fragment (d.frag).
func (d *Decoder) keepFragment(lt LinkType, data []byte, ipAt int) {
	d.frag.lt, d.frag.data, d.frag.ipAt = lt, data, ipAt
}

// fastIPAt is where the IP header of a packet the fast path decoded
// begins: after the Ethernet header and its tags, or at the frame's start.
func fastIPAt(p *Packet) int {
	if p.HasSrcMAC {
		return 14 + 4*int(p.NVLAN)
	}
	return 0
}

// slow is Decode for the frames the fast path declines; it also returns
// where the outermost IP header begins (-1: behind a tunnel, or none).
func (d *Decoder) slow(lt LinkType, data []byte, p *Packet) (Reason, int) {
	ipAt := -1
	// Encapsulations (tunnels, mirror formats, label stacks, deep VLAN
	// stacks): the innermost IP packet is the packet.
	u := &d.unw
	d.enc.unwrap(lt, data, u)
	if u.ip != nil && u.depth == 0 {
		ipAt = len(data) - len(u.ip) // unwrap only cuts from the front until a carrier
	}
	if !u.peeled && u.nvlan <= 2 && u.reason != ReasonTunnelDepth {
		return d.decodeLayers(lt, data, p), ipAt
	}
	reason := u.reason
	if u.ip == nil {
		if reason == ReasonOK {
			reason = ReasonNotIP
		}
	} else if reason = ReasonOK; !d.fastInner(u.ip, p) {
		reason = d.decodeLayers(LinkRaw, u.ip, p)
	}
	u.setTunnel(&p.Tunnel)
	p.VLANs, p.NVLAN = u.vlans, u.nvlan
	p.GaveUp = u.gaveUp
	if u.ip != nil {
		d.innerLink(u, p)
	}
	return reason, ipAt
}

// fastInner is fast for the innermost packet unwrap found, raw IP: the
// fast IP decoders at once (the link-layer fields are innerLink's).
func (d *Decoder) fastInner(b []byte, p *Packet) bool {
	if len(b) == 0 {
		return false
	}
	switch b[0] >> 4 {
	case 4:
		return fastIPv4(b, p, d)
	case 6:
		return fastIPv6(b, p, d)
	}
	return false
}

// vlanIDs records the VLAN tags of an Ethernet frame in p (gopacket's
// parser reuses one Dot1Q layer for every tag, keeping only the last).
func vlanIDs(f []byte, p *Packet) {
	if len(f) < 14 {
		return
	}
	et, b := binary.BigEndian.Uint16(f[12:14]), f[14:]
	for (et == etherDot1Q || et == etherQinQ) && len(b) >= 4 {
		if p.NVLAN < maxVLANsKept {
			p.VLANs[p.NVLAN] = binary.BigEndian.Uint16(b[0:2]) & 0x0fff
		}
		if p.NVLAN < 255 {
			p.NVLAN++
		}
		et, b = binary.BigEndian.Uint16(b[2:4]), b[4:]
	}
}

// innerLink sets p's link-layer fields from the innermost link layer
// unwrap saw (the mirrored frame's own Ethernet header, not the
// carrier's).
func (d *Decoder) innerLink(u *unwrapped, p *Packet) {
	p.L2Broadcast, p.L2Multicast, p.HasSrcMAC = false, false, false
	switch {
	case u.l2 != nil:
		dst := u.l2[0:6]
		if dst[0]&1 != 0 {
			p.L2Multicast = true
			p.L2Broadcast = dst[0] == 0xff && dst[1] == 0xff && dst[2] == 0xff && dst[3] == 0xff && dst[4] == 0xff && dst[5] == 0xff
		}
		p.SrcMAC, p.HasSrcMAC = [6]byte(u.l2[6:12]), true
	case u.sllType == 1:
		p.L2Broadcast, p.L2Multicast = true, true
	case u.sllType == 2:
		p.L2Multicast = true
	}
}

// decodeLayers is Decode's gopacket path, for what the fast path declines.
func (d *Decoder) decodeLayers(lt LinkType, data []byte, p *Packet) Reason {
	d.lenCheck = ReasonOK
	r := d.decodeLayersInner(lt, data, p)
	if r != ReasonOK || !p.Src.IsValid() || p.IPv6 {
		return r
	}
	if d.lenCheck != ReasonOK {
		return d.lenCheck
	}
	// Protocol 1 with no ICMP header at all (not cut by the capture, not
	// a later fragment).
	if p.Proto == ProtoICMPv4 && !p.HasICMP && !p.Fragment && p.CapLen >= p.WireLen {
		return ReasonICMPMissing
	}
	return r
}

// ipv4Length checks an IPv4 total length against the bytes the packet had
// on the wire. Such packets still reach the rules (their addresses are
// sound, and a flood of them costs the victim all the same); the reason
// counts them.
func ipv4Length(total uint16, onWire int) Reason {
	switch {
	case total == 0:
		return ReasonIPLengthZero
	case int(total) > onWire:
		return ReasonIPLengthBeyondFrame
	}
	return ReasonOK
}

// decodeLayersInner is decodeLayers without the IPv4 length checks.
func (d *Decoder) decodeLayersInner(lt LinkType, data []byte, p *Packet) Reason {
	var parser *gopacket.DecodingLayerParser
	switch lt {
	case LinkEthernet:
		parser = d.fromEthernet
	case LinkLinuxSLL:
		parser = d.fromSLL
	case LinkNull, LinkLoop:
		parser = d.fromLoop
	case LinkIPv4:
		parser = d.fromIPv4
	case LinkIPv6:
		parser = d.fromIPv6
	case LinkRaw, LinkRawDLT12, LinkRawDLT14:
		if len(data) == 0 {
			return ReasonTruncated
		}
		switch data[0] >> 4 {
		case 4:
			parser = d.fromIPv4
		case 6:
			parser = d.fromIPv6
		default:
			return ReasonMalformedIP
		}
	case LinkLinuxSLL2:
		if len(data) < sll2HeaderLen {
			return ReasonTruncated
		}
		switch pktType := data[10]; pktType {
		case 1: // broadcast
			p.L2Broadcast, p.L2Multicast = true, true
		case 2: // multicast
			p.L2Multicast = true
		}
		switch layers.EthernetType(binary.BigEndian.Uint16(data[0:2])) {
		case layers.EthernetTypeIPv4:
			parser = d.fromIPv4
		case layers.EthernetTypeIPv6:
			parser = d.fromIPv6
		case layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ:
			parser = d.fromDot1Q
		default:
			return ReasonNotIP
		}
		data = data[sll2HeaderLen:]
	default:
		return ReasonUnsupportedLink
	}

	if lt == LinkEthernet {
		vlanIDs(data, p)
	}
	err := parser.DecodeLayers(data, &d.decoded)
	reason := ReasonOK
	var sawIP bool
	var ip4Payload []byte // the IPv4 payload (fragment data) as captured
	for _, typ := range d.decoded {
		switch typ {
		case layers.LayerTypeEthernet:
			if len(d.eth.SrcMAC) == 6 {
				p.SrcMAC, p.HasSrcMAC = [6]byte(d.eth.SrcMAC), true
			}
			dst := d.eth.DstMAC
			if len(dst) == 6 && dst[0]&1 != 0 {
				p.L2Multicast = true
				p.L2Broadcast = dst[0] == 0xff && dst[1] == 0xff && dst[2] == 0xff &&
					dst[3] == 0xff && dst[4] == 0xff && dst[5] == 0xff
			}
		case layers.LayerTypeLinuxSLL:
			switch d.sll.PacketType {
			case layers.LinuxSLLPacketTypeBroadcast:
				p.L2Broadcast, p.L2Multicast = true, true
			case layers.LinuxSLLPacketTypeMulticast:
				p.L2Multicast = true
			}
		case layers.LayerTypeIPv4:
			sawIP = true
			d.fillIPv4(p)
			ip4Payload = d.ip4.Payload
			if c := d.ip4.Contents; len(c) >= 4 && cap(data) >= cap(c) {
				// The IP header's place in the frame gives the bytes the
				// packet had on the wire.
				d.lenCheck = ipv4Length(binary.BigEndian.Uint16(c[2:4]), p.WireLen-(p.CapLen-len(data))-(cap(data)-cap(c)))
			}
		case layers.LayerTypeIPv6:
			sawIP = true
			d.fillIPv6(p)
		case layers.LayerTypeICMPv4:
			p.HasICMP = true
			p.ICMPType, p.ICMPCode = d.icmp4.TypeCode.Type(), d.icmp4.TypeCode.Code()
			p.ICMPID, p.ICMPSeq = d.icmp4.Id, d.icmp4.Seq
			p.ICMPData = whole(d.icmp4.Contents, d.icmp4.Payload)
		case layers.LayerTypeICMPv6:
			p.HasICMP = true
			p.ICMPType, p.ICMPCode = d.icmp6.TypeCode.Type(), d.icmp6.TypeCode.Code()
			p.ICMPData = whole(d.icmp6.Contents, d.icmp6.Payload)
		case layers.LayerTypeICMPv6Echo:
			p.ICMPID, p.ICMPSeq = d.icmp6echo.Identifier, d.icmp6echo.SeqNumber
		}
	}
	if !sawIP {
		if err == nil {
			return ReasonNotIP
		}
		switch {
		case parser.Truncated:
			reason = ReasonTruncated
		case len(d.decoded) == 0:
			reason = ReasonMalformedLink
		default:
			reason = ReasonMalformedIP
		}
		// gopacket rejects an IPv4 header whose options are malformed or
		// whose total length runs past the captured bytes; the fixed
		// header fields are still sound, and fragment attacks live there.
		pl, ok := fallbackIPv4(d.ipv4Bytes(parser, data), p)
		if !ok {
			return reason
		}
		ip4Payload = pl
	} else if err != nil {
		// The IP header decoded; what failed lies above it.
		if parser.Truncated {
			reason = ReasonTruncated
		} else {
			reason = ReasonMalformedICMP
		}
		if last := d.decoded[len(d.decoded)-1]; last != layers.LayerTypeIPv4 && last != layers.LayerTypeIPv6 {
			reason = ReasonOK // e.g. an ICMPv6 echo body cut short after the type/code
		}
	}
	// IPv4 first fragments stop at LayerTypeFragment in gopacket: read the
	// ICMP header they carry here, so a fragmented ping is still a ping.
	if !p.HasICMP && !p.IPv6 && p.Fragment && p.FragOffset == 0 && p.Proto == ProtoICMPv4 {
		if pl := ip4Payload; len(pl) >= 8 {
			p.HasICMP = true
			p.ICMPType, p.ICMPCode = pl[0], pl[1]
			p.ICMPID = binary.BigEndian.Uint16(pl[4:6])
			p.ICMPSeq = binary.BigEndian.Uint16(pl[6:8])
			p.ICMPData = pl
		}
	}
	if p.Fragment {
		d.fragData(p, ip4Payload)
	}
	return reason
}

// --- fragment tracking ---

// fragSum is the sum of a fragment's captured data (Packet.FragSum):
// CRC-32C, which hash/crc32 computes with the SSE4.2 crc32 instruction on
// amd64 (about half the time of the IEEE polynomial's carry-less
// multiplications on a 700-byte fragment).
func fragSum(tab *crc32.Table, data []byte) uint32 { return crc32.Checksum(data, tab) }

// fragData sets p.FragSum, the sum of the fragment's captured data, and
// for an IPv6 first fragment p.FragUpperOff.
func (d *Decoder) fragData(p *Packet, ip4Payload []byte) {
	if !p.IPv6 {
		p.FragSum = fragSum(d.crc, ip4Payload)
		return
	}
	c := d.ip6.Contents
	b := c[:len(c)+len(d.ip6.Payload)] // the IPv6 packet, up to its length or the capture's end
	start := p.IPLen - p.FragLen       // where the fragment data begins
	if start < 0 || start > len(b) {
		return
	}
	p.FragSum = fragSum(d.crc, b[start:])
	if p.FragOffset == 0 && len(c) > start {
		p.FragUpperOff = len(c) - start
	}
}

// ipv4Bytes returns the bytes where the parser expected an IPv4 header
// when it failed there, or nil.
func (d *Decoder) ipv4Bytes(parser *gopacket.DecodingLayerParser, data []byte) []byte {
	if len(d.decoded) == 0 {
		if parser == d.fromIPv4 {
			return data
		}
		return nil
	}
	var l gopacket.DecodingLayer
	switch d.decoded[len(d.decoded)-1] {
	case layers.LayerTypeEthernet:
		l = &d.eth
	case layers.LayerTypeDot1Q:
		l = &d.dot1q
	case layers.LayerTypeLinuxSLL:
		l = &d.sll
	case layers.LayerTypeLoopback:
		l = &d.loop
	default:
		return nil
	}
	if l.NextLayerType() != layers.LayerTypeIPv4 {
		return nil
	}
	return l.LayerPayload()
}

// fallbackIPv4 fills p from the fixed 20-byte IPv4 header in b when
// gopacket rejected the header for its options or its length. It refuses
// a header that is not IPv4 or whose IHL or total length cannot hold it.
// It returns the payload as captured.
func fallbackIPv4(b []byte, p *Packet) ([]byte, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil, false
	}
	hl := int(b[0]&0x0f) * 4
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if hl < 20 || length < hl {
		return nil, false
	}
	ff := binary.BigEndian.Uint16(b[6:8])
	p.IPv6 = false
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.TTL = b[8]
	p.Proto = b[9]
	p.IPLen = length
	p.HeaderLen = hl
	p.MoreFragments = ff&0x2000 != 0
	p.FragOffset = int(ff&0x1fff) * 8
	p.Fragment = p.MoreFragments || p.FragOffset != 0
	p.FragID = uint32(binary.BigEndian.Uint16(b[4:6]))
	p.FragLen = length - hl
	p.HasICMP, p.ICMPType, p.ICMPCode, p.ICMPID, p.ICMPSeq, p.ICMPData = false, 0, 0, 0, 0, nil
	end := min(length, len(b))
	return b[min(hl, end):end], true
}

func (d *Decoder) fillIPv4(p *Packet) {
	ip := &d.ip4
	p.IPv6 = false
	p.Src = addr4(ip.SrcIP)
	p.Dst = addr4(ip.DstIP)
	p.TTL = ip.TTL
	p.Proto = uint8(ip.Protocol)
	p.IPLen = int(ip.Length)
	p.HeaderLen = int(ip.IHL) * 4
	p.Fragment = ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0
	p.MoreFragments = ip.Flags&layers.IPv4MoreFragments != 0
	p.FragID = uint32(ip.Id)
	p.FragOffset = int(ip.FragOffset) * 8
	p.FragLen = p.IPLen - p.HeaderLen
	// A packet decoded after an outer one (IP-in-IP) replaces its ICMP view.
	p.HasICMP, p.ICMPType, p.ICMPCode, p.ICMPID, p.ICMPSeq, p.ICMPData = false, 0, 0, 0, 0, nil
}

func (d *Decoder) fillIPv6(p *Packet) {
	ip := &d.ip6
	p.IPv6 = true
	p.Src = netip.AddrFrom16(ip.src)
	p.Dst = netip.AddrFrom16(ip.dst)
	p.TTL = ip.hopLimit
	p.Proto = ip.next
	p.IPLen = ip.ipLen
	p.HeaderLen = ip.headerLen
	p.Fragment = ip.fragment
	p.MoreFragments = ip.more
	p.FragID = ip.fragID
	p.FragOffset = ip.fragOffset
	p.FragLen = ip.fragLen
	p.FragChainIncomplete = ip.chainIncomplete
	p.HasICMP, p.ICMPType, p.ICMPCode, p.ICMPID, p.ICMPSeq, p.ICMPData = false, 0, 0, 0, 0, nil
}

// whole is a layer's header and payload as one slice: gopacket cuts both
// from the same bytes, the payload right after the header.
func whole(contents, payload []byte) []byte {
	if len(payload) > 0 && cap(contents) >= len(contents)+len(payload) {
		return contents[:len(contents)+len(payload)]
	}
	return contents
}

func addr4(b []byte) netip.Addr {
	if len(b) < 4 {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte{b[0], b[1], b[2], b[3]})
}
