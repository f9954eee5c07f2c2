package synth

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Datagram is an IP datagram to cut into fragments by hand, so that trains
// no stack would send — a Ping of Death, overlaps, tiny or conflicting
// fragments — can be built. Payload is the fragmentable part (the upper-
// layer header included) and may be longer than 65,535 bytes.
type Datagram struct {
	Src, Dst netip.Addr
	// ID is the IPv6 identification; IPv4 uses its low 16 bits.
	ID uint32
	// Proto is the upper-layer protocol (IPv4 protocol, IPv6 fragment
	// header next header); 0 means ICMP (1) or ICMPv6 (58).
	Proto   uint8
	Payload []byte
	TTL     uint8
	// Options is the number of IPv4 option bytes (NOPs, a multiple of 4,
	// at most 40) the first fragment carries: its IHL grows by Options/4.
	Options int
}

// Piece is one fragment of a Datagram: Len bytes at Offset (a multiple of
// 8) of its payload, with the MF flag More. Data, when set, replaces the
// payload bytes (to build conflicting fragments); bytes past the end of
// Payload are zero.
type Piece struct {
	Offset, Len int
	More        bool
	Data        []byte
}

// Split cuts total payload bytes into pieces of size bytes (rounded down
// to a multiple of 8), the last without MF.
func Split(total, size int) []Piece {
	size &^= 7
	if size <= 0 {
		size = 8
	}
	var out []Piece
	for off := 0; off < total; off += size {
		n := min(size, total-off)
		out = append(out, Piece{Offset: off, Len: n, More: off+n < total})
	}
	return out
}

// EchoMessage returns an ICMP (src IPv4) or ICMPv6 echo request of size
// bytes, header included (size >= 8), with a valid checksum even beyond
// 65,535 bytes.
func EchoMessage(src, dst netip.Addr, id, seq uint16, size int) []byte {
	size = max(size, 8)
	b := make([]byte, size)
	b[0] = 8
	if !src.Is4() {
		b[0] = 128
	}
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	for i := 8; i < size; i++ {
		b[i] = byte(i)
	}
	var sum uint32
	if !src.Is4() { // ICMPv6 pseudo-header
		s, d := src.As16(), dst.As16()
		for i := 0; i < 16; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(s[i:])) + uint32(binary.BigEndian.Uint16(d[i:]))
		}
		sum += uint32(size>>16) + uint32(size&0xffff) + 58
	}
	binary.BigEndian.PutUint16(b[2:4], checksum(b, sum))
	return b
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
		sum = sum&0xffff + sum>>16
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Packet returns the IP packet (no link header) for piece pc.
func (d Datagram) Packet(pc Piece) ([]byte, error) {
	if pc.Offset%8 != 0 || pc.Offset < 0 || pc.Offset/8 > 0x1fff {
		return nil, fmt.Errorf("fragment offset %d is not a multiple of 8 in [0, 65528]", pc.Offset)
	}
	if pc.Len < 0 {
		return nil, fmt.Errorf("fragment length %d is negative", pc.Len)
	}
	data := pc.Data
	if data == nil {
		data = make([]byte, pc.Len)
		if pc.Offset < len(d.Payload) {
			copy(data, d.Payload[pc.Offset:])
		}
	}
	ttl := d.TTL
	if ttl == 0 {
		ttl = 64
	}
	proto := d.Proto
	if d.Src.Is4() {
		if proto == 0 {
			proto = 1
		}
		opts := 0
		if pc.Offset == 0 {
			opts = d.Options
		}
		if opts%4 != 0 || opts > 40 {
			return nil, fmt.Errorf("ipv4 options length %d is not a multiple of 4 up to 40", opts)
		}
		hl := 20 + opts
		total := hl + len(data)
		if total > 0xffff {
			return nil, fmt.Errorf("ipv4 fragment of %d bytes exceeds the total length field", total)
		}
		b := make([]byte, total)
		b[0] = 0x40 | byte(hl/4)
		binary.BigEndian.PutUint16(b[2:4], uint16(total))
		binary.BigEndian.PutUint16(b[4:6], uint16(d.ID))
		ff := uint16(pc.Offset / 8)
		if pc.More {
			ff |= 0x2000
		}
		binary.BigEndian.PutUint16(b[6:8], ff)
		b[8], b[9] = ttl, proto
		s, dst := d.Src.As4(), d.Dst.As4()
		copy(b[12:16], s[:])
		copy(b[16:20], dst[:])
		for i := 20; i < hl; i++ {
			b[i] = 1 // NOP
		}
		binary.BigEndian.PutUint16(b[10:12], checksum(b[:hl], 0))
		copy(b[hl:], data)
		return b, nil
	}
	if proto == 0 {
		proto = 58
	}
	if 8+len(data) > 0xffff {
		return nil, fmt.Errorf("ipv6 fragment of %d bytes exceeds the payload length field", 8+len(data))
	}
	b := make([]byte, 48+len(data))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:6], uint16(8+len(data)))
	b[6], b[7] = 44, ttl
	s, dst := d.Src.As16(), d.Dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], dst[:])
	b[40] = proto
	fo := uint16(pc.Offset)
	if pc.More {
		fo |= 1
	}
	binary.BigEndian.PutUint16(b[42:44], fo)
	binary.BigEndian.PutUint32(b[44:48], d.ID)
	copy(b[48:], data)
	return b, nil
}

// Frame returns the Ethernet frame for piece pc.
func (d Datagram) Frame(pc Piece) ([]byte, error) {
	ip, err := d.Packet(pc)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 14+len(ip))
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	if d.Src.Is4() {
		b[12], b[13] = 0x08, 0x00
	} else {
		b[12], b[13] = 0x86, 0xdd
	}
	copy(b[14:], ip)
	return b, nil
}

// Frames returns the Ethernet frames for pieces, in the order given, the
// first at start and each next one step later.
func (d Datagram) Frames(pieces []Piece, start time.Time, step time.Duration) ([]Frame, error) {
	out := make([]Frame, 0, len(pieces))
	for i, pc := range pieces {
		b, err := d.Frame(pc)
		if err != nil {
			return nil, fmt.Errorf("fragment %d: %w", i, err)
		}
		out = append(out, Frame{Time: start.Add(time.Duration(i) * step), Data: b})
	}
	return out, nil
}

// PingTrain returns an echo request datagram whose reassembled size is
// size bytes — the IPv4 total length (20-byte header + ICMP message) or
// the IPv6 payload length (ICMPv6 message) — and its pieces of at most
// fragData bytes each (1480 for a 1500-byte MTU over IPv4, 1232 for IPv6's
// 1280 minimum). A size above 65,535 is a Ping of Death.
func PingTrain(src, dst netip.Addr, id uint32, size, fragData int) (Datagram, []Piece) {
	msg := size
	if src.Is4() {
		msg -= 20
	}
	d := Datagram{Src: src, Dst: dst, ID: id, Payload: EchoMessage(src, dst, uint16(id), 1, msg)}
	return d, Split(msg, fragData)
}

// FragmentFrame cuts the IP packet of the untagged Ethernet frame f
// (IPv4, or IPv6: everything after its fixed header is the fragmentable
// part, extension headers included) into fragments of at most size data
// bytes (rounded down to a multiple of 8), as a router on a smaller path
// would, and returns their frames, each with f's Ethernet header. id is
// the fragments' identification (IPv4: its low 16 bits).
func FragmentFrame(f []byte, size int, id uint32) ([][]byte, error) {
	if len(f) < 14+20 {
		return nil, fmt.Errorf("fragment frame: %d bytes", len(f))
	}
	eth, ip := f[:14], f[14:]
	var hdr, payload []byte
	v6 := binary.BigEndian.Uint16(f[12:14]) == ethTypeIPv6
	if v6 {
		if len(ip) < 40 {
			return nil, fmt.Errorf("fragment frame: IPv6 packet of %d bytes", len(ip))
		}
		hdr, payload = ip[:40], ip[40:]
	} else {
		hl := int(ip[0]&0x0f) * 4
		if hl < 20 || hl > len(ip) {
			return nil, fmt.Errorf("fragment frame: IPv4 header length %d", hl)
		}
		hdr, payload = ip[:hl], ip[hl:]
	}
	var out [][]byte
	for _, pc := range Split(len(payload), size) {
		b := append([]byte{}, eth...)
		data := payload[pc.Offset : pc.Offset+pc.Len]
		if v6 {
			h := append([]byte{}, hdr...)
			binary.BigEndian.PutUint16(h[4:6], uint16(8+len(data)))
			next := h[6]
			h[6] = 44
			fo := uint16(pc.Offset)
			if pc.More {
				fo |= 1
			}
			h = append(h, next, 0)
			h = binary.BigEndian.AppendUint16(h, fo)
			h = binary.BigEndian.AppendUint32(h, id)
			b = append(append(b, h...), data...)
		} else {
			h := append([]byte{}, hdr...)
			binary.BigEndian.PutUint16(h[2:4], uint16(len(h)+len(data)))
			binary.BigEndian.PutUint16(h[4:6], uint16(id))
			ff := uint16(pc.Offset / 8)
			if pc.More {
				ff |= 0x2000
			}
			binary.BigEndian.PutUint16(h[6:8], ff)
			binary.BigEndian.PutUint16(h[10:12], 0)
			binary.BigEndian.PutUint16(h[10:12], checksum(h, 0))
			b = append(append(b, h...), data...)
		}
		out = append(out, b)
	}
	return out, nil
}

// DestOptsN returns a destination-options header of n bytes (a multiple
// of 8, at least 8) of padding: THC's -D puts a long one in front of an
// RA so that the ICMPv6 header lands in a later fragment.
func DestOptsN(n int) IPv6Ext {
	n = max(n&^7, 8)
	b := make([]byte, n-1)
	b[0] = byte(n/8 - 1)
	// PadN options of at most 257 bytes each fill the rest.
	for i := 1; i < len(b); {
		left := len(b) - i
		switch {
		case left == 1:
			b[i] = 0 // Pad1
			i++
		default:
			l := min(left-2, 255)
			b[i], b[i+1] = 1, byte(l)
			i += 2 + l
		}
	}
	return IPv6Ext{Proto: 60, Body: b}
}
