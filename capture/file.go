package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
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
	// LinkType is the pcap LINKTYPE_ value of the frame's interface.
	LinkType uint16
}

// ErrNotCapture is returned (wrapped, with the file name) for a file that is
// neither pcap nor pcapng, compressed or not.
var ErrNotCapture = errors.New("not a pcap or pcapng file")

// ErrTruncated is returned (wrapped, with the file name and the packet
// count) when a capture file ends in the middle of a record.
var ErrTruncated = errors.New("capture file is truncated")

const linkTypeSLL2Truncated = 276 & 0xff // what gopacket's uint8 LinkType makes of LINKTYPE_LINUX_SLL2

// FileReader reads frames from one capture file.
type FileReader struct {
	name    string
	closer  io.Closer
	pcap    *pcapgo.Reader
	ng      *pcapgo.NgReader
	link    uint16   // pcap: the header's link type, full 16 bits
	ngLinks []uint16 // pcapng: link type per interface index
	frames  uint64
}

// OpenFile opens a pcap or pcapng capture, gzip-compressed or not; path "-"
// reads standard input. Errors name the file.
func OpenFile(path string) (*FileReader, error) {
	var rc io.ReadCloser
	name := path
	if path == "-" {
		rc, name = io.NopCloser(os.Stdin), "standard input"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		if st, err := f.Stat(); err == nil && st.IsDir() {
			f.Close()
			return nil, fmt.Errorf("open %s: is a directory", path)
		}
		rc = f
	}
	r, err := newFileReader(name, rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return r, nil
}

func newFileReader(name string, rc io.ReadCloser) (*FileReader, error) {
	br := bufio.NewReaderSize(rc, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: %w (file is empty or shorter than a header)", name, ErrNotCapture)
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var src io.Reader = br
	if magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		zbr := bufio.NewReaderSize(zr, 1<<20)
		if magic, err = zbr.Peek(4); err != nil {
			return nil, fmt.Errorf("%s: %w (gzip content: %v)", name, ErrNotCapture, err)
		}
		src, br = zbr, zbr
	}
	r := &FileReader{name: name, closer: rc}
	switch binary.LittleEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xa1b23c4d, 0xd4c3b2a1, 0x4d3cb2a1: // pcap, µs or ns, either byte order
		hdr, err := br.Peek(24)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (pcap header cut short)", name, ErrTruncated)
		}
		if binary.LittleEndian.Uint32(magic) == 0xa1b2c3d4 || binary.LittleEndian.Uint32(magic) == 0xa1b23c4d {
			r.link = uint16(binary.LittleEndian.Uint32(hdr[20:24]))
		} else {
			r.link = uint16(binary.BigEndian.Uint32(hdr[20:24]))
		}
		if r.pcap, err = pcapgo.NewReader(src); err != nil {
			return nil, fmt.Errorf("%s: pcap header: %w", name, err)
		}
	case 0x0a0d0d0a: // pcapng section header block
		if r.ng, err = pcapgo.NewNgReader(src, pcapgo.NgReaderOptions{}); err != nil {
			return nil, fmt.Errorf("%s: pcapng: %w", name, err)
		}
	default:
		return nil, fmt.Errorf("%s: %w (magic %02x%02x%02x%02x)", name, ErrNotCapture, magic[0], magic[1], magic[2], magic[3])
	}
	return r, nil
}

// Name is the file's name as given ("standard input" for "-").
func (r *FileReader) Name() string { return r.name }

// Frames is the number of frames read so far.
func (r *FileReader) Frames() uint64 { return r.frames }

// Next returns the next frame, io.EOF at the clean end of the file, or an
// error wrapping ErrTruncated when the file ends inside a record. The
// frame's Data is reused by the next call.
func (r *FileReader) Next() (Frame, error) {
	var fr Frame
	if r.pcap != nil {
		data, ci, err := r.pcap.ZeroCopyReadPacketData()
		if err != nil {
			return fr, r.readErr(err)
		}
		fr = Frame{Data: data, Timestamp: ci.Timestamp, CaptureLength: ci.CaptureLength, Length: ci.Length, LinkType: r.link}
	} else {
		data, ci, err := r.ng.ZeroCopyReadPacketData()
		if err != nil {
			return fr, r.readErr(err)
		}
		fr = Frame{Data: data, Timestamp: ci.Timestamp, CaptureLength: ci.CaptureLength, Length: ci.Length, LinkType: r.ngLink(ci.InterfaceIndex)}
	}
	r.frames++
	return fr, nil
}

func (r *FileReader) ngLink(idx int) uint16 {
	for len(r.ngLinks) <= idx {
		iface, err := r.ng.Interface(len(r.ngLinks))
		lt := uint16(0xffff)
		if err == nil {
			lt = uint16(iface.LinkType)
			if lt == linkTypeSLL2Truncated {
				// gopacket keeps link types in a uint8; 20 is unassigned, 276 is SLL2.
				lt = 276
			}
		}
		r.ngLinks = append(r.ngLinks, lt)
	}
	return r.ngLinks[idx]
}

func (r *FileReader) readErr(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: %w after %d packets", r.name, ErrTruncated, r.frames)
	}
	return fmt.Errorf("%s: after %d packets: %w", r.name, r.frames, err)
}

// Close closes the file.
func (r *FileReader) Close() error { return r.closer.Close() }
