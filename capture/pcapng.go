package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"
)

// pcapng block types (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html).
const (
	ngBlockSection     = 0x0a0d0d0a
	ngBlockInterface   = 0x00000001
	ngBlockPacket      = 0x00000002 // obsolete Packet Block
	ngBlockSimple      = 0x00000003
	ngBlockEnhanced    = 0x00000006
	ngByteOrderMagic   = 0x1a2b3c4d
	ngOptEndOfOpt      = 0
	ngOptIfTSResol     = 9
	ngOptIfTSOffset    = 14
	ngMaxMetaBlockSize = 1 << 20 // section / interface blocks we parse, options included
	ngMinBlockSize     = 12      // type, length, trailing length
)

// ngInterface is what the reader keeps of an Interface Description Block.
type ngInterface struct {
	link     uint16
	snapLen  uint32
	unitsSec uint64 // timestamp units per second (if_tsresol)
	offset   int64  // seconds added to every timestamp (if_tsoffset)
}

// ngReader reads pcapng blocks without allocating per packet. Unlike
// pcapgo.NgReader it keeps the full 16-bit link type of every interface,
// reports a file that ends inside a block as io.ErrUnexpectedEOF (pcapgo
// returns io.EOF), and refuses captured lengths beyond maxSnapLen instead of
// allocating whatever a corrupt block claims.
type ngReader struct {
	r       *bufio.Reader
	be      bool // the current section is big-endian
	ifaces  []ngInterface
	hdr     [28]byte
	meta    []byte // scratch for section and interface blocks
	pkt     []byte // packet buffer, reused
	ifIndex int    // interface of the last packet
	// last is the time of the last packet: a Simple Packet Block carries
	// no timestamp and takes it (the Unix epoch before any packet).
	last time.Time
}

func newNgReader(r *bufio.Reader) *ngReader {
	return &ngReader{r: r, pkt: make([]byte, 0, 64<<10)}
}

func (r *ngReader) u16(b []byte) uint16 {
	if r.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *ngReader) u32(b []byte) uint32 {
	if r.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// readFull is io.ReadFull on the buffered reader.
func (r *ngReader) readFull(b []byte) error {
	_, err := io.ReadFull(r.r, b)
	return err
}

// skip discards n bytes; a short file is io.ErrUnexpectedEOF.
func (r *ngReader) skip(n int) error {
	if n <= 0 {
		return nil
	}
	if _, err := r.r.Discard(n); err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// next returns the next packet: data (valid until the next call), capture
// info and the interface's link type. It returns io.EOF exactly at the end of
// a block and io.ErrUnexpectedEOF inside one.
func (r *ngReader) next() (data []byte, ts time.Time, wireLen int, link uint16, err error) {
	for {
		// Block type and total length. EOF before the first byte is the clean end.
		if _, err = io.ReadFull(r.r, r.hdr[:8]); err != nil {
			return nil, ts, 0, 0, err
		}
		typ := r.u32(r.hdr[0:4])
		if typ == ngBlockSection {
			if err = r.section(); err != nil {
				return nil, ts, 0, 0, err
			}
			continue
		}
		total := int(r.u32(r.hdr[4:8]))
		if total < ngMinBlockSize || total%4 != 0 {
			return nil, ts, 0, 0, fmt.Errorf("%w: block type %#x has invalid length %d", ErrMalformed, typ, total)
		}
		body := total - 8 // what follows the 8 header bytes, trailing length included
		switch typ {
		case ngBlockInterface:
			if err = r.iface(body); err != nil {
				return nil, ts, 0, 0, err
			}
		case ngBlockEnhanced, ngBlockPacket:
			if body < 20+4 {
				return nil, ts, 0, 0, fmt.Errorf("%w: packet block of %d bytes is too short", ErrMalformed, total)
			}
			h := r.hdr[8:28]
			if err = r.readFull(h); err != nil {
				return nil, ts, 0, 0, unexpected(err)
			}
			var idx int
			if typ == ngBlockEnhanced {
				idx = int(r.u32(h[0:4]))
			} else {
				idx = int(r.u16(h[0:2]))
			}
			hi, lo := uint64(r.u32(h[4:8])), uint64(r.u32(h[8:12]))
			capLen, origLen := int(r.u32(h[12:16])), int(r.u32(h[16:20]))
			if idx >= len(r.ifaces) {
				return nil, ts, 0, 0, fmt.Errorf("%w: packet refers to interface %d, but the section describes %d", ErrMalformed, idx, len(r.ifaces))
			}
			if capLen > body-20-4 {
				return nil, ts, 0, 0, fmt.Errorf("%w: captured length %d does not fit its %d-byte block", ErrMalformed, capLen, total)
			}
			if data, err = r.readPacket(capLen, body-20); err != nil {
				return nil, ts, 0, 0, err
			}
			in := &r.ifaces[idx]
			r.ifIndex = idx
			if origLen < capLen {
				origLen = capLen
			}
			t := in.time(hi<<32 | lo)
			if t.Year() < 1970 || t.Year() > 2261 {
				// Packet time must fit int64 nanoseconds since 1970
				// (a hostile if_tsoffset or timestamp could wrap it).
				return nil, ts, 0, 0, fmt.Errorf("%w: packet timestamp %s is outside 1970-2261 (if_tsoffset %d s)", ErrMalformed, t.Format(time.RFC3339), in.offset)
			}
			r.last = t
			return data, t, origLen, in.link, nil
		case ngBlockSimple:
			if len(r.ifaces) == 0 {
				return nil, ts, 0, 0, fmt.Errorf("%w: simple packet block before any interface description", ErrMalformed)
			}
			if body < 4+4 {
				return nil, ts, 0, 0, fmt.Errorf("%w: simple packet block of %d bytes is too short", ErrMalformed, total)
			}
			if err = r.readFull(r.hdr[8:12]); err != nil {
				return nil, ts, 0, 0, unexpected(err)
			}
			origLen := int(r.u32(r.hdr[8:12]))
			capLen := min(origLen, body-4-4)
			if sl := int(r.ifaces[0].snapLen); sl > 0 && capLen > sl {
				capLen = sl
			}
			if data, err = r.readPacket(capLen, body-4); err != nil {
				return nil, ts, 0, 0, err
			}
			r.ifIndex = 0
			if r.last.IsZero() {
				r.last = time.Unix(0, 0).UTC()
			}
			return data, r.last, max(origLen, capLen), r.ifaces[0].link, nil
		default: // statistics, name resolution, secrets, custom: not needed
			if err = r.skip(body); err != nil {
				return nil, ts, 0, 0, err
			}
		}
	}
}

// readPacket reads capLen bytes of packet data into the reused buffer and
// discards the rest of a block whose remaining size is rest.
func (r *ngReader) readPacket(capLen, rest int) ([]byte, error) {
	if capLen > maxSnapLen {
		return nil, fmt.Errorf("%w: captured length %d exceeds the maximum %d", ErrMalformed, capLen, maxSnapLen)
	}
	if cap(r.pkt) < capLen {
		r.pkt = make([]byte, 0, max(capLen, 2*cap(r.pkt)))
	}
	data := r.pkt[:capLen]
	if err := r.readFull(data); err != nil {
		return nil, unexpected(err)
	}
	return data, r.skip(rest - capLen)
}

// section handles a Section Header Block whose first 8 bytes are in r.hdr:
// it sets the byte order and forgets the previous section's interfaces.
func (r *ngReader) section() error {
	if err := r.readFull(r.hdr[8:12]); err != nil {
		return unexpected(err)
	}
	switch {
	case binary.BigEndian.Uint32(r.hdr[8:12]) == ngByteOrderMagic:
		r.be = true
	case binary.LittleEndian.Uint32(r.hdr[8:12]) == ngByteOrderMagic:
		r.be = false
	default:
		return fmt.Errorf("%w: section header has no byte-order magic", ErrMalformed)
	}
	total := int(r.u32(r.hdr[4:8]))
	if total < 28 || total%4 != 0 || total > ngMaxMetaBlockSize {
		return fmt.Errorf("%w: section header has invalid length %d", ErrMalformed, total)
	}
	r.ifaces = r.ifaces[:0]
	return r.skip(total - 12) // version, section length, options, trailing length
}

// iface reads an Interface Description Block body of n bytes.
func (r *ngReader) iface(n int) error {
	if n < 8+4 || n > ngMaxMetaBlockSize {
		return fmt.Errorf("%w: interface description of %d bytes", ErrMalformed, n+8)
	}
	if cap(r.meta) < n {
		r.meta = make([]byte, n)
	}
	b := r.meta[:n]
	if err := r.readFull(b); err != nil {
		return unexpected(err)
	}
	in := ngInterface{link: r.u16(b[0:2]), snapLen: r.u32(b[4:8]), unitsSec: 1e6}
	opts := b[8 : n-4]
	for len(opts) >= 4 {
		code, l := r.u16(opts[0:2]), int(r.u16(opts[2:4]))
		if code == ngOptEndOfOpt || 4+l > len(opts) {
			break
		}
		v := opts[4 : 4+l]
		switch {
		case code == ngOptIfTSResol && l >= 1:
			units, ok := tsUnits(v[0])
			if !ok {
				return fmt.Errorf("%w: interface %d has unusable timestamp resolution %#x", ErrMalformed, len(r.ifaces), v[0])
			}
			in.unitsSec = units
		case code == ngOptIfTSOffset && l >= 8:
			if r.be {
				in.offset = int64(binary.BigEndian.Uint64(v))
			} else {
				in.offset = int64(binary.LittleEndian.Uint64(v))
			}
		}
		opts = opts[4+(l+3)&^3:]
	}
	r.ifaces = append(r.ifaces, in)
	return nil
}

// tsUnits decodes if_tsresol: 10^-v seconds, or 2^-(v&0x7f) with the top bit set.
func tsUnits(v byte) (uint64, bool) {
	if v&0x80 != 0 {
		e := v & 0x7f
		if e > 63 {
			return 0, false
		}
		return 1 << e, true
	}
	if v > 19 {
		return 0, false
	}
	u := uint64(1)
	for range v {
		u *= 10
	}
	return u, true
}

// time converts a timestamp in the interface's units to a UTC time.
func (in *ngInterface) time(ts uint64) time.Time {
	sec, frac := ts/in.unitsSec, ts%in.unitsSec
	hi, lo := bits.Mul64(frac, 1e9)
	nsec, _ := bits.Div64(hi, lo, in.unitsSec) // frac < units, so hi < units: no overflow
	return time.Unix(int64(sec)+in.offset, int64(nsec)).UTC()
}

// unexpected turns an EOF inside a block into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
