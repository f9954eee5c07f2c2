package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
)

// TestPcapRecordsLikePcapgo: FileReader reads pcap records itself (without
// copying them out of its buffer); for every byte order and resolution,
// and for files cut at every length and with corrupt record lengths, it
// returns what pcapgo's ZeroCopyReadPacketData returns: the same frames
// and timestamps, then the same end (clean EOF, truncation, or the same
// malformed-record message).
func TestPcapRecordsLikePcapgo(t *testing.T) {
	type rec struct {
		sec, frac, capLen, wireLen uint32
	}
	recs := []rec{{1700000000, 999999, 60, 60}, {1700000001, 5, 0, 0}, {1700000001, 4294967, 30, 1500}, {1700000002, 7, 42, 42}}
	build := func(order binary.ByteOrder, magic uint32, recs []rec) []byte {
		var b bytes.Buffer
		h := make([]byte, 24)
		order.PutUint32(h[0:], magic)
		order.PutUint16(h[4:], 2)
		order.PutUint16(h[6:], 4)
		order.PutUint32(h[16:], 65535)
		order.PutUint32(h[20:], 1)
		b.Write(h)
		for i, r := range recs {
			rh := make([]byte, 16)
			order.PutUint32(rh[0:], r.sec)
			order.PutUint32(rh[4:], r.frac)
			order.PutUint32(rh[8:], r.capLen)
			order.PutUint32(rh[12:], r.wireLen)
			b.Write(rh)
			n := min(int(r.capLen), 64)
			b.Write(bytes.Repeat([]byte{byte(i + 1)}, n))
		}
		return b.Bytes()
	}
	type result struct {
		frames []string
		end    string
	}
	viaPcapgo := func(data []byte) result {
		var res result
		pr, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			return result{end: "header"}
		}
		pr.SetSnaplen(maxSnapLen)
		for {
			d, ci, err := pr.ZeroCopyReadPacketData()
			switch {
			case errors.Is(err, io.EOF):
				res.end = "eof"
				return res
			case errors.Is(err, io.ErrUnexpectedEOF):
				res.end = "truncated"
				return res
			case err != nil:
				res.end = err.Error()
				return res
			}
			res.frames = append(res.frames, fmt.Sprintf("%v %d %d %x", ci.Timestamp, ci.CaptureLength, ci.Length, d))
		}
	}
	viaFileReader := func(t *testing.T, data []byte) result {
		var res result
		const path = "f.pcap"
		r, err := newFileReader(path, io.NopCloser(bytes.NewReader(data)))
		if err != nil {
			return result{end: "header"}
		}
		defer r.Close()
		for {
			f, err := r.Next()
			switch {
			case errors.Is(err, io.EOF):
				res.end = "eof"
				return res
			case errors.Is(err, ErrTruncated):
				res.end = "truncated"
				return res
			case errors.Is(err, ErrMalformed):
				res.end = err.Error()[len(fmt.Sprintf("%s: after %d packets: %v: ", path, len(res.frames), ErrMalformed)):]
				return res
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			}
			res.frames = append(res.frames, fmt.Sprintf("%v %d %d %x", f.Timestamp, f.CaptureLength, f.Length, f.Data))
		}
	}
	corrupt := append(append([]rec{}, recs[:2]...), rec{1700000003, 0, maxSnapLen + 1, maxSnapLen + 1})
	longer := append(append([]rec{}, recs[:1]...), rec{1700000003, 0, 50, 40})
	for _, f := range []struct {
		name  string
		order binary.ByteOrder
		magic uint32
	}{
		{"le-us", binary.LittleEndian, 0xa1b2c3d4}, {"be-us", binary.BigEndian, 0xa1b2c3d4},
		{"le-ns", binary.LittleEndian, 0xa1b23c4d}, {"be-ns", binary.BigEndian, 0xa1b23c4d},
	} {
		for _, set := range []struct {
			name string
			recs []rec
		}{{"ok", recs}, {"oversnap", corrupt}, {"caplen>len", longer}} {
			full := build(f.order, f.magic, set.recs)
			for cut := 24; cut <= len(full); cut++ {
				want := viaPcapgo(full[:cut])
				got := viaFileReader(t, full[:cut])
				// Our message for an oversized record names the limit that
				// applies (the reader's) and the header's snap length.
				gs := strings.Replace(fmt.Sprint(got), fmt.Sprintf("captured length %d exceeds the largest record this reader accepts, %d bytes (libpcap's maximum; the file's header gives a snap length of 65535)", maxSnapLen+1, maxSnapLen),
					fmt.Sprintf("capture length exceeds snap length: %d > %d", maxSnapLen+1, maxSnapLen), 1)
				if gs != fmt.Sprint(want) {
					t.Fatalf("%s/%s cut at %d of %d:\n got %v\nwant %v", f.name, set.name, cut, len(full), got, want)
				}
			}
		}
	}
}

// TestPcapLargestRecords: records of libpcap's largest snap length, between
// small ones, are read whole whatever the read buffer's size.
func TestPcapLargestRecords(t *testing.T) {
	var b bytes.Buffer
	w := pcapgo.NewWriterNanos(&b)
	if err := w.WriteFileHeader(maxSnapLen, 1); err != nil {
		t.Fatal(err)
	}
	sizes := []int{60, maxSnapLen, 1500, maxSnapLen, maxSnapLen, 42}
	for i, n := range sizes {
		data := bytes.Repeat([]byte{byte(i + 1)}, n)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(i), 0), CaptureLength: n, Length: n}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	r, err := newFileReader("big.pcap", io.NopCloser(bytes.NewReader(b.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, n := range sizes {
		f, err := r.Next()
		if err != nil {
			t.Fatalf("record %d (%d bytes): %v", i, n, err)
		}
		if len(f.Data) != n || f.Data[0] != byte(i+1) || f.Data[n-1] != byte(i+1) {
			t.Fatalf("record %d: %d bytes starting %x, want %d of %x", i, len(f.Data), f.Data[:1], n, i+1)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last record: %v, want EOF", err)
	}
}
