package detector

import (
	"encoding/binary"
	"errors"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// IPv6 extension header numbers walked by ipv6Layer.
const (
	ipv6HopByHop    = 0
	ipv6Routing     = 43
	ipv6Fragment    = 44
	ipv6AH          = 51
	ipv6NoNext      = 59
	ipv6DestOpts    = 60
	ipv6Mobility    = 135
	ipv6HIP         = 139
	ipv6Shim6       = 140
	ipv6HeaderBytes = 40
)

// Sentinel decode errors: the hot path returns these, never a formatted error.
var (
	errIPv6Truncated = errors.New("ipv6 header truncated")
	errIPv6Version   = errors.New("ipv6 header: version is not 6")
	errIPv6ExtHeader = errors.New("ipv6 extension header runs past the packet")
)

// ipv6Layer decodes the IPv6 header and walks its whole extension-header
// chain (hop-by-hop, routing, destination options, AH, fragment, mobility,
// HIP, shim6) without allocating, which layers.IPv6 and the gopacket
// extension layers do not: they allocate TLV options and have no
// DecodingLayer for the fragment, routing and AH headers. It stops at the
// upper-layer protocol, or at a non-first fragment's data.
type ipv6Layer struct {
	layers.BaseLayer
	src, dst   [16]byte
	hopLimit   uint8
	next       uint8 // upper-layer protocol after the extension headers
	ipLen      int   // 40 + payload length
	headerLen  int   // 40 + the extension headers before the fragment header
	fragment   bool
	more       bool
	fragOffset int
	fragID     uint32
	fragLen    int // fragmentable bytes in this fragment, by the length field
	// chainIncomplete: in a first fragment, an extension header after the
	// fragment header runs past the fragment's data (by the length
	// fields): the header chain continues in the next fragment, which RFC
	// 7112 forbids and evasion uses. next is then that header's type.
	chainIncomplete bool
}

// chainCut tells whether, in a first fragment, an extension header of n
// bytes at off would run past the fragment (the chain goes on in the next
// fragment), and marks the chain incomplete if so.
func (l *ipv6Layer) chainCut(off, n int) bool {
	if l.fragment && l.fragOffset == 0 && off+n > l.ipLen {
		l.chainIncomplete = true
		return true
	}
	return false
}

// LayerType implements gopacket.DecodingLayer.
func (l *ipv6Layer) LayerType() gopacket.LayerType { return layers.LayerTypeIPv6 }

// CanDecode implements gopacket.DecodingLayer.
func (l *ipv6Layer) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6 }

// NextLayerType implements gopacket.DecodingLayer: the upper-layer protocol,
// or gopacket.LayerTypeFragment for the data of a non-first fragment, for
// a first fragment whose header chain goes on in the next fragment, and
// for the first fragment of an IP-in-IPv6 carrier.
func (l *ipv6Layer) NextLayerType() gopacket.LayerType {
	if l.fragment && (l.fragOffset != 0 || l.chainIncomplete) {
		return gopacket.LayerTypeFragment
	}
	if l.fragment && l.more && (l.next == protoIPIP || l.next == protoIPv6) {
		// The first fragment of a carrier: its inner packet is not whole
		// (the engine reassembles the train, see reassemble.go).
		return gopacket.LayerTypeFragment
	}
	return layers.IPProtocol(l.next).LayerType()
}

// DecodeFromBytes implements gopacket.DecodingLayer.
func (l *ipv6Layer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < ipv6HeaderBytes {
		df.SetTruncated()
		return errIPv6Truncated
	}
	if data[0]>>4 != 6 {
		return errIPv6Version
	}
	copy(l.src[:], data[8:24])
	copy(l.dst[:], data[24:40])
	l.hopLimit = data[7]
	payloadLen := int(binary.BigEndian.Uint16(data[4:6]))
	if payloadLen == 0 { // jumbogram or a TSO capture: take what is there
		payloadLen = len(data) - ipv6HeaderBytes
	}
	l.ipLen = ipv6HeaderBytes + payloadLen
	l.fragment, l.more, l.fragOffset, l.fragID, l.fragLen = false, false, 0, 0, 0
	l.chainIncomplete = false
	next := data[6]
	off := ipv6HeaderBytes
	l.headerLen = off
walk:
	for {
		var hlen int
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts, ipv6Mobility, ipv6HIP, ipv6Shim6:
			if l.chainCut(off, 2) {
				break walk
			}
			if len(data) < off+2 {
				df.SetTruncated()
				return errIPv6ExtHeader
			}
			hlen = (int(data[off+1]) + 1) * 8
		case ipv6AH:
			if l.chainCut(off, 2) {
				break walk
			}
			if len(data) < off+2 {
				df.SetTruncated()
				return errIPv6ExtHeader
			}
			hlen = (int(data[off+1]) + 2) * 4
		case ipv6Fragment:
			if len(data) < off+8 {
				df.SetTruncated()
				return errIPv6ExtHeader
			}
			if !l.fragment {
				l.headerLen = off
			}
			l.fragment = true
			l.fragOffset = int(binary.BigEndian.Uint16(data[off+2:off+4]) &^ 7)
			l.more = data[off+3]&1 != 0
			l.fragID = binary.BigEndian.Uint32(data[off+4 : off+8])
			l.fragLen = l.ipLen - (off + 8)
			next = data[off]
			off += 8
			if l.fragOffset != 0 {
				break walk // the rest is fragment data, not headers
			}
			continue
		default:
			break walk
		}
		if l.chainCut(off, hlen) {
			break walk
		}
		if len(data) < off+hlen {
			df.SetTruncated()
			return errIPv6ExtHeader
		}
		next = data[off]
		off += hlen
		if !l.fragment {
			l.headerLen = off
		}
	}
	l.next = next
	end := l.ipLen
	if end > len(data) {
		df.SetTruncated()
		end = len(data)
	}
	if off > end {
		off = end
	}
	l.Contents = data[:off]
	l.Payload = data[off:end]
	return nil
}
