package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/google/gopacket/pcapgo"
)

// Frame is one captured frame. Data is valid until the next call to Next.
type Frame struct {
	Data          []byte
	Timestamp     time.Time
	CaptureLength int
	// Length is the frame's length on the wire.
	Length int
	// LinkType is the pcap LINKTYPE_ value of the frame's interface, all 16
	// bits of it (LINKTYPE_LINUX_SLL2 is 276).
	LinkType uint16
}

// ErrNotCapture is returned (wrapped, with the file name) for a file that is
// neither pcap nor pcapng, compressed or not.
var ErrNotCapture = errors.New("not a pcap or pcapng file")

// ErrTruncated is returned (wrapped, with the file name and the packet
// count) when a capture file ends in the middle of a header or record.
var ErrTruncated = errors.New("capture file is truncated")

// ErrMalformed is returned (wrapped, with the file name, the packet count
// and the defect) for a capture file whose structure is corrupt: a record
// longer than any capture allows, a block with an impossible length, a
// packet on an undeclared interface.
var ErrMalformed = errors.New("capture file is malformed")

// maxSnapLen is the largest captured length accepted in a record: libpcap's
// MAXIMUM_SNAPLEN. Larger lengths in a file are corruption, not packets, and
// are refused rather than allocated.
const maxSnapLen = 262144

// readBufferSize is the read buffer of a capture file: room for a record
// of maxSnapLen and its header, and little more. Measured (1 M-packet mix
// in tmpfs, 2 workers, medians of 11): 1 MiB 226 ms, 512 KiB 195 ms,
// 320 KiB 190 ms — a buffer that stays in the L2 cache between the
// kernel's copy into it and the decoder's reads.
const readBufferSize = 320 << 10

// FileReader reads frames from one capture file: pcap (micro- or
// nanosecond timestamps, either byte order) or pcapng (any number of
// sections and interfaces, each with its own link type and timestamp
// resolution), optionally gzip-compressed. In steady state Next does not
// allocate. A FileReader is not safe for concurrent use.
type FileReader struct {
	name   string
	closer io.Closer
	pcap   *pcapgo.Reader
	br     *bufio.Reader    // pcap: the stream after the file header, records read here
	order  binary.ByteOrder // pcap: the file's byte order
	big    bool             // pcap: order is big-endian (read without an interface call per field)
	nsec   uint32           // pcap: nanoseconds per timestamp fraction unit (1000 or 1)
	// win is the rest of br's buffered bytes past the records handed out
	// (pcap): whole records in it are read from it without a call into br;
	// used is the bytes handed out from br's front and not yet discarded.
	win    []byte
	used   int
	ng     *ngReader
	src    *errMark // the (decompressed) byte stream
	link   uint16   // pcap: the header's link type, full 16 bits
	snap   uint32   // pcap: the header's snap length
	frames uint64
}

// OpenFile opens a pcap or pcapng capture, gzip-compressed or not; path "-"
// reads standard input. Errors are one line naming the file and the cause;
// a file that is no capture wraps ErrNotCapture, one cut short inside its
// header wraps ErrTruncated.
func OpenFile(path string) (*FileReader, error) {
	if path == "-" {
		return newFileReader("standard input", io.NopCloser(os.Stdin))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *fs.PathError: "open PATH: cause"
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.EISDIR}
	}
	return newFileReader(path, f)
}

// newFileReader reads the header of the capture in rc, named name in errors.
// It closes rc when it fails.
func newFileReader(name string, rc io.ReadCloser) (_ *FileReader, err error) {
	defer func() {
		if err != nil {
			rc.Close()
		}
	}()
	r := &FileReader{name: name, closer: rc, src: &errMark{r: rc}}
	br := bufio.NewReaderSize(r.src, readBufferSize)
	magic, err := br.Peek(4)
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(magic) == 0 {
				return nil, fmt.Errorf("%s: %w (the file is empty)", name, ErrNotCapture)
			}
			return nil, fmt.Errorf("%s: %w (only %d bytes)", name, ErrNotCapture, len(magic))
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", name, unexpectedTruncated(err))
		}
		r.src = &errMark{r: zr}
		br = bufio.NewReaderSize(r.src, readBufferSize)
		if magic, err = br.Peek(4); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: %w (gzip content of %d bytes)", name, ErrNotCapture, len(magic))
			}
			return nil, fmt.Errorf("%s: gzip: %w", name, unexpectedTruncated(err))
		}
	}
	switch m := binary.LittleEndian.Uint32(magic); m {
	case 0xa1b2c3d4, 0xa1b23c4d, 0xd4c3b2a1, 0x4d3cb2a1: // pcap, µs or ns, either byte order
		hdr, err := br.Peek(24)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (pcap header of %d bytes, 24 expected)", name, ErrTruncated, len(hdr))
		}
		r.order, r.nsec = binary.ByteOrder(binary.LittleEndian), 1000
		if m == 0xd4c3b2a1 || m == 0x4d3cb2a1 {
			r.order, r.big = binary.BigEndian, true
		}
		if m == 0xa1b23c4d || m == 0x4d3cb2a1 {
			r.nsec = 1
		}
		r.link = uint16(r.order.Uint32(hdr[20:24])) // upper bits: FCS flags
		r.snap = r.order.Uint32(hdr[16:20])
		// br is a *bufio.Reader larger than pcapgo's: pcapgo reads through it
		// without a second buffer.
		if r.pcap, err = pcapgo.NewReader(br); err != nil {
			return nil, fmt.Errorf("%s: %w: pcap header: %v", name, ErrMalformed, err)
		}
		// Accept records up to libpcap's maximum whatever the header's snap
		// length says (some writers get it wrong), and refuse larger ones
		// instead of letting pcapgo allocate what a corrupt header claims.
		r.pcap.SetSnaplen(maxSnapLen)
		r.br = br
	case ngBlockSection:
		r.ng = newNgReader(br)
	default:
		return nil, fmt.Errorf("%s: %w (starts with %02x %02x %02x %02x)", name, ErrNotCapture, magic[0], magic[1], magic[2], magic[3])
	}
	return r, nil
}

// Name is the file's name as given ("standard input" for "-").
func (r *FileReader) Name() string { return r.name }

// Frames is the number of frames read so far.
func (r *FileReader) Frames() uint64 { return r.frames }

// Next returns the next frame, io.EOF at the clean end of the file, an
// error wrapping ErrTruncated when the file ends inside a record, or one
// wrapping ErrMalformed when a record is corrupt. Errors name the file and
// the number of packets read before. The frame's Data is reused by the next
// call.
func (r *FileReader) Next() (Frame, error) {
	var f Frame
	err := r.NextInto(&f)
	return f, err
}

// NextInto is Next writing the frame into *dst field by field, for the
// hot path: a Frame returned by value costs a copy whose 16-byte loads over
// 8-byte stores stall store forwarding on every frame. On an error *dst is
// left as it was.
func (r *FileReader) NextInto(dst *Frame) error {
	if w := r.win; len(w) >= 16 {
		// A pcap record that lies whole in r.win (see nextPcap) is cut
		// from it here.
		capLen, wireLen := int(r.u32(w[8:12])), int(r.u32(w[12:16]))
		if capLen <= wireLen && capLen <= maxSnapLen && capLen <= len(w)-16 {
			sec := r.u32(w[0:4])
			frac := r.u32(w[4:8]) * r.nsec // uint32, as pcapgo computes it
			n := 16 + capLen
			r.win, r.used = w[n:], r.used+n
			r.frames++
			dst.Data = w[16:n:n]
			dst.Timestamp = time.Unix(int64(sec), int64(frac)).UTC()
			dst.CaptureLength, dst.Length, dst.LinkType = capLen, wireLen, r.link
			return nil
		}
	}
	if r.pcap != nil {
		f, err := r.nextPcap()
		if err != nil {
			return r.readErr(err)
		}
		r.frames++
		*dst = f
		return nil
	}
	data, ts, wireLen, link, err := r.ng.next()
	if err != nil {
		return r.readErr(err)
	}
	r.frames++
	dst.Data, dst.Timestamp, dst.CaptureLength, dst.Length, dst.LinkType = data, ts, len(data), wireLen, link
	return nil
}

// nextPcap reads one pcap record as pcapgo's ZeroCopyReadPacketData does
// (same checks, same errors, same timestamps), but hands out the record's
// data where it lies in the read buffer instead of copying it out: the
// buffer (readBufferSize) holds any record up to maxSnapLen. Records that lie whole
// in the bytes already buffered (r.win) are cut from it by Next without
// calling into the bufio.Reader; the rest (a record across the buffer's
// end, a bad record, the end of the file) come here and take the bufio
// path, after the bytes handed out are discarded.
func (r *FileReader) nextPcap() (Frame, error) {
	r.br.Discard(r.used) // at most what is buffered: no read
	r.win, r.used = nil, 0
	hdr, err := r.br.Peek(16)
	if err != nil {
		return Frame{}, fullErr(len(hdr), err)
	}
	sec := r.u32(hdr[0:4])
	frac := r.u32(hdr[4:8]) * r.nsec // uint32, as pcapgo computes it
	capLen := int(r.u32(hdr[8:12]))
	wireLen := int(r.u32(hdr[12:16]))
	r.br.Discard(16)
	if capLen > maxSnapLen {
		return Frame{}, fmt.Errorf("captured length %d exceeds the largest record this reader accepts, %d bytes (libpcap's maximum; the file's header gives a snap length of %d)", capLen, maxSnapLen, r.snap)
	}
	if capLen > wireLen {
		return Frame{}, fmt.Errorf("capture length exceeds original packet length: %d > %d", capLen, wireLen)
	}
	data, err := r.br.Peek(capLen)
	if err != nil {
		return Frame{}, fullErr(len(data), err)
	}
	r.br.Discard(capLen) // data stays valid until the next read
	// The bytes buffered past this record, for the next calls: Peek of
	// no more than Buffered does not read, so data stays where it is.
	r.win, _ = r.br.Peek(r.br.Buffered())
	ts := time.Unix(int64(sec), int64(frac)).UTC()
	return Frame{Data: data, Timestamp: ts, CaptureLength: capLen, Length: wireLen, LinkType: r.link}, nil
}

// u32 reads a 32-bit field of a pcap record header in the file's byte order.
func (r *FileReader) u32(b []byte) uint32 {
	if r.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// fullErr is the error io.ReadFull gives when n bytes of a record were read
// before err: io.EOF when nothing was, io.ErrUnexpectedEOF when part was.
func fullErr(n int, err error) error {
	if err == io.EOF && n > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (r *FileReader) readErr(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: %w after %d packets", r.name, ErrTruncated, r.frames)
	case errors.Is(err, ErrMalformed):
		return fmt.Errorf("%s: after %d packets: %w", r.name, r.frames, err)
	case r.src.err == nil:
		// Not an I/O error: one of pcapgo's record checks (plain errors
		// without a sentinel, e.g. "capture length exceeds snap length").
		return fmt.Errorf("%s: after %d packets: %w: %v", r.name, r.frames, ErrMalformed, err)
	}
	return fmt.Errorf("%s: after %d packets: %w", r.name, r.frames, err)
}

// errMark is an io.Reader that remembers the first error other than io.EOF
// its source returned, so that I/O errors can be told from format errors.
type errMark struct {
	r   io.Reader
	err error
}

func (m *errMark) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF && m.err == nil {
		m.err = err
	}
	return n, err
}

// unexpectedTruncated wraps ErrTruncated around an EOF inside a gzip header.
func unexpectedTruncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %v", ErrTruncated, err)
	}
	return err
}

// Close closes the file.
func (r *FileReader) Close() error { return r.closer.Close() }
