package capture_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture"
)

// ngBlock appends a little-endian pcapng block of type typ with body.
func ngBlock(b []byte, typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	total := uint32(12 + len(body))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = binary.LittleEndian.AppendUint32(b, total)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, total)
}

func ngSHB() []byte {
	body := binary.LittleEndian.AppendUint32(nil, 0x1a2b3c4d)
	body = binary.LittleEndian.AppendUint16(body, 1)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint64(body, ^uint64(0))
	return ngBlock(nil, 0x0a0d0d0a, body)
}

// ngIDB is an interface of link type 101 (raw IP), with an if_tsoffset
// option when offset is not 0.
func ngIDB(offset int64) []byte {
	body := binary.LittleEndian.AppendUint16(nil, 101)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint32(body, 0) // snaplen: none
	if offset != 0 {
		body = binary.LittleEndian.AppendUint16(body, 14) // if_tsoffset
		body = binary.LittleEndian.AppendUint16(body, 8)
		body = binary.LittleEndian.AppendUint64(body, uint64(offset))
		body = binary.LittleEndian.AppendUint32(body, 0) // opt_endofopt
	}
	return ngBlock(nil, 1, body)
}

var rawEcho = []byte{0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
	8, 0, 0xf7, 0xff, 0, 0, 0, 0}

func ngEPB(ts time.Time) []byte {
	us := uint64(ts.UnixMicro())
	body := binary.LittleEndian.AppendUint32(nil, 0)
	body = binary.LittleEndian.AppendUint32(body, uint32(us>>32))
	body = binary.LittleEndian.AppendUint32(body, uint32(us))
	body = binary.LittleEndian.AppendUint32(body, uint32(len(rawEcho)))
	body = binary.LittleEndian.AppendUint32(body, uint32(len(rawEcho)))
	return ngBlock(nil, 6, append(body, rawEcho...))
}

func ngSPB() []byte {
	body := binary.LittleEndian.AppendUint32(nil, uint32(len(rawEcho)))
	return ngBlock(nil, 3, append(body, rawEcho...))
}

// TestPcapngPacketTimes: a Simple Packet Block (no timestamp) takes the
// previous packet's time (the epoch before any), and a timestamp pushed
// outside 1970-2261 by if_tsoffset is malformed, named, not wrapped.
func TestPcapngPacketTimes(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var spb bytes.Buffer
	spb.Write(ngSHB())
	spb.Write(ngIDB(0))
	spb.Write(ngSPB())
	spb.Write(ngEPB(t0))
	spb.Write(ngSPB())
	dir := t.TempDir()
	path := filepath.Join(dir, "spb.pcapng")
	if err := os.WriteFile(path, spb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	for {
		fr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, fr.Timestamp)
	}
	r.Close()
	want := []time.Time{time.Unix(0, 0).UTC(), t0, t0}
	if len(times) != len(want) {
		t.Fatalf("times %v, want %v", times, want)
	}
	for i := range want {
		if !times[i].Equal(want[i]) {
			t.Fatalf("times %v, want %v", times, want)
		}
	}

	var bad bytes.Buffer
	bad.Write(ngSHB())
	bad.Write(ngIDB(-4_000_000_000)) // 127 years before the epoch
	bad.Write(ngEPB(t0))
	path = filepath.Join(dir, "tsoffset.pcapng")
	if err := os.WriteFile(path, bad.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(); !errors.Is(err, capture.ErrMalformed) {
		t.Fatalf("timestamp before 1970: %v, want ErrMalformed", err)
	}
}
