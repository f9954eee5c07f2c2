package reasm

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

var (
	src4, dst4 = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	src6, dst6 = netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::1")
)

// ipv4Header is a 20-byte IPv4 header of protocol proto, as the first
// fragment of a train carries it (MF set, lengths of the fragment).
func ipv4Header(proto uint8) []byte {
	h := make([]byte, 20)
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[6:8], 0x2000)
	s, d := src4.As4(), dst4.As4()
	copy(h[12:16], s[:])
	copy(h[16:20], d[:])
	return h
}

// ipv6Header is an IPv6 header followed by a hop-by-hop header (when hbh)
// and a fragment header whose next header is next.
func ipv6Header(hbh bool, next uint8) []byte {
	h := make([]byte, 40)
	h[0], h[7] = 0x60, 255
	s, d := src6.As16(), dst6.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	h[6] = 44
	if hbh {
		h[6] = 0
		h = append(h, 44, 0, 5, 2, 0, 0, 1, 0)
	}
	return append(h, next, 0, 0, 1, 0, 0, 0, 9)
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// piece is a fragment of a train for the table below.
type piece struct {
	off, n int
	more   bool
	data   []byte // replaces the payload's bytes when set
	at     time.Duration
}

func TestPool(t *testing.T) {
	const link = 14
	eth := make([]byte, link)
	tests := []struct {
		name   string
		v6     bool
		hbh    bool
		pieces []piece
		size   int    // the payload's size
		want   bool   // reassembled at the last piece
		stat   string // the counter that must have moved when not
	}{
		{"two in order", false, false, []piece{{0, 1480, true, nil, 0}, {1480, 20, false, nil, 0}}, 1500, true, ""},
		{"last first", false, false, []piece{{1480, 20, false, nil, 0}, {0, 1480, true, nil, 0}}, 1500, true, ""},
		{"three, middle last, a duplicate", false, false, []piece{{0, 16, true, nil, 0}, {32, 8, false, nil, 0}, {0, 16, true, nil, 0}, {16, 16, true, nil, 0}}, 40, true, ""},
		{"ipv6", true, false, []piece{{0, 32, true, nil, 0}, {32, 24, false, nil, 0}}, 56, true, ""},
		{"ipv6 behind a hop-by-hop header", true, true, []piece{{32, 24, false, nil, 0}, {0, 32, true, nil, 0}}, 56, true, ""},
		{"overlap with other bytes", false, false, []piece{{0, 16, true, nil, 0}, {8, 16, false, make([]byte, 16), 0}}, 24, false, "conflicts"},
		{"same range, other bytes", true, false, []piece{{0, 16, true, nil, 0}, {0, 16, true, make([]byte, 16), 0}, {16, 8, false, nil, 0}}, 24, false, "conflicts"},
		{"data past the last fragment's end", false, false, []piece{{16, 8, false, nil, 0}, {24, 8, true, nil, 0}}, 32, false, "conflicts"},
		{"too big", false, false, []piece{{0, 1480, true, nil, 0}, {4096, 8, false, nil, 0}}, 4104, false, "too_big"},
		{"too slow", false, false, []piece{{0, 16, true, nil, 0}, {16, 8, false, nil, 6 * time.Second}}, 24, false, "timeouts"},
		{"a hole", false, false, []piece{{0, 16, true, nil, 0}, {24, 8, false, nil, 0}}, 32, false, "held"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(DefaultConfig())
			data := payload(tc.size)
			var hdr []byte
			var next uint8 = 58
			if tc.v6 {
				hdr = append(append([]byte{}, eth...), ipv6Header(tc.hbh, next)...)
			} else {
				hdr = append(append([]byte{}, eth...), ipv4Header(47)...)
			}
			var out []byte
			for i, pc := range tc.pieces {
				f := Fragment{Time: int64(pc.at), IPv6: tc.v6, Src: src4, Dst: dst4, ID: 9, Proto: 47, Offset: pc.off, More: pc.more}
				if tc.v6 {
					f.Src, f.Dst, f.Proto = src6, dst6, 58
				}
				f.Data = data[pc.off:min(pc.off+pc.n, len(data))]
				if pc.data != nil {
					f.Data = pc.data
				}
				if pc.off == 0 {
					f.Header, f.LinkLen = hdr, link
				}
				out = p.Add(&f)
				if out != nil && i != len(tc.pieces)-1 {
					t.Fatalf("reassembled at piece %d", i)
				}
			}
			st := p.Stats()
			if !tc.want {
				if out != nil {
					t.Fatalf("reassembled %d bytes", len(out))
				}
				moved := map[string]bool{"conflicts": st.Conflicts > 0, "too_big": st.TooBig > 0, "timeouts": st.Timeouts > 0, "held": st.Len == 1}
				if !moved[tc.stat] {
					t.Fatalf("%s did not move: %+v", tc.stat, st)
				}
				return
			}
			if out == nil {
				t.Fatalf("not reassembled: %+v", st)
			}
			if st.Completed != 1 || st.Len != 0 {
				t.Fatalf("stats %+v", st)
			}
			ip := out[link:]
			if !bytes.Equal(out[:link], eth) {
				t.Fatalf("link header %x", out[:link])
			}
			if !tc.v6 {
				if n := int(binary.BigEndian.Uint16(ip[2:4])); n != 20+tc.size || len(ip) != n {
					t.Fatalf("total length %d, %d bytes, want %d", n, len(ip), 20+tc.size)
				}
				if ff := binary.BigEndian.Uint16(ip[6:8]); ff&0x3fff != 0 {
					t.Fatalf("fragment field %#x", ff)
				}
				if checksum(ip[:20]) != 0 {
					t.Fatalf("header checksum wrong")
				}
				if !bytes.Equal(ip[20:], data) {
					t.Fatalf("data differs")
				}
				return
			}
			unfrag := 40
			if tc.hbh {
				unfrag = 48
				if ip[6] != 0 || ip[40] != next {
					t.Fatalf("next headers %d, %d; want 0, %d", ip[6], ip[40], next)
				}
			} else if ip[6] != next {
				t.Fatalf("next header %d, want %d", ip[6], next)
			}
			if n := int(binary.BigEndian.Uint16(ip[4:6])); n != unfrag-40+tc.size || len(ip) != unfrag+tc.size {
				t.Fatalf("payload length %d, %d bytes", n, len(ip))
			}
			if !bytes.Equal(ip[unfrag:], data) {
				t.Fatalf("data differs")
			}
		})
	}
}

// TestPoolBounded: more open trains than buffers evict the oldest,
// counted; the pool never holds more than its cap.
func TestPoolBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Buffers = 8
	p := New(cfg)
	for i := 0; i < 100; i++ {
		p.Add(&Fragment{Time: int64(i), Src: src4, Dst: dst4, ID: uint32(i), Proto: 47, Offset: 8, Data: payload(8), More: true})
	}
	st := p.Stats()
	if st.Len != 8 || st.Cap != 8 || st.Evicted != 92 || st.Trains != 100 {
		t.Fatalf("stats %+v", st)
	}
	p.Expire(int64(time.Minute))
	if st := p.Stats(); st.Len != 0 || st.Timeouts != 8 {
		t.Fatalf("after the timeout: %+v", st)
	}
}

// TestPoolDoesNotAllocate: reassembly runs in the preallocated buffers.
func TestPoolDoesNotAllocate(t *testing.T) {
	p := New(DefaultConfig())
	hdr := append(make([]byte, 14), ipv4Header(47)...)
	data := payload(1500)
	id := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		id++
		p.Add(&Fragment{Time: int64(id), Src: src4, Dst: dst4, ID: id, Proto: 47, Offset: 1480, Data: data[1480:]})
		if p.Add(&Fragment{Time: int64(id), Src: src4, Dst: dst4, ID: id, Proto: 47, Offset: 0, More: true, Data: data[:1480], Header: hdr, LinkLen: 14}) == nil {
			t.Fatal("not reassembled")
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per train", allocs)
	}
}

// FuzzPool feeds fragments built from random bytes: Add must never panic,
// never return more than its buffer, and keep its counters consistent.
//
//	go test -run '^$' -fuzz FuzzPool -fuzztime 60s ./detector/reasm/
func FuzzPool(f *testing.F) {
	f.Add([]byte{0, 0, 1, 200, 1, 0, 5, 0, 20}, false)
	f.Add([]byte{0, 0, 1, 4, 1, 0, 0, 3, 2, 1}, true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		cfg := DefaultConfig()
		cfg.Buffers = 4
		p := New(cfg)
		var hdr []byte
		if v6 {
			hdr = ipv6Header(len(b) > 0 && b[0]&1 != 0, 58)
		} else {
			hdr = ipv4Header(47)
		}
		// Each 4 bytes: id (low 2 bits), offset (in 8-byte units), length, flags.
		for i := 0; i+4 <= len(b); i += 4 {
			off := int(b[i+1]) * 8
			n := int(b[i+2]) * 4
			fr := Fragment{Time: int64(i) * int64(time.Millisecond), IPv6: v6, Src: src4, Dst: dst4, ID: uint32(b[i] & 3), Proto: 47,
				Offset: off, More: b[i+3]&1 != 0, Data: payload(n)}
			if b[i+3]&2 != 0 && off == 0 {
				h := hdr
				if b[i+3]&4 != 0 && len(h) > 30 {
					h = h[:len(h)-int(b[i]>>2)%len(h)] // a damaged header
				}
				fr.Header = h
			}
			if out := p.Add(&fr); len(out) > HeaderRoom+cfg.MaxBytes {
				t.Fatalf("%d bytes out", len(out))
			}
			if st := p.Stats(); st.Len < 0 || st.Len > st.Cap {
				t.Fatalf("stats %+v", st)
			}
		}
	})
}
