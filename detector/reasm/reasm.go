// Package reasm reassembles small IP fragment trains into whole datagrams,
// for the few kinds of train whose content the rules must judge as if it
// had arrived whole: fragmented neighbor-discovery messages (RFC 6980
// forbids them; RA-Guard evasion, RFC 7113) and fragmented tunnel carriers
// (GRE, IP-in-IP), whose inner packet is only visible once its carrier is
// whole.
//
// State is bounded and preallocated: a Pool holds Config.Buffers trains,
// each in its own fixed buffer of Config.MaxBytes of fragment data plus
// HeaderRoom bytes of headers, allocated once by New. A train is given up
// (counted) when it grows past the buffer, has more than MaxFragments
// fragments, carries overlapping fragments whose bytes differ, or when its
// Timeout (packet time, from its first fragment) runs out; when every buffer
// is in use the train with the oldest first fragment is evicted (counted).
// Add does not allocate.
package reasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// HeaderRoom is the most header bytes a train's first fragment may bring
// (link layer, IP header, IPv6 unfragmentable extension headers).
const HeaderRoom = 512

// MaxFragments is the most fragments one train may have.
const MaxFragments = 16

// Config configures a Pool (engine.reassembly.*).
type Config struct {
	// Buffers is how many trains are reassembled at once.
	Buffers int `mapstructure:"buffers"`
	// MaxBytes is the largest fragmentable part (the datagram less its
	// IP header) a train may reassemble to.
	MaxBytes int `mapstructure:"max_bytes"`
	// Timeout is how long (packet time) a train may take to complete,
	// from its first fragment.
	Timeout time.Duration `mapstructure:"timeout"`
}

// DefaultConfig returns the defaults: 64 buffers of 4 KB, a 5 s timeout
// (about 300 KB per engine).
func DefaultConfig() Config {
	return Config{Buffers: 64, MaxBytes: 4096, Timeout: 5 * time.Second}
}

// Validate checks the settings; errors name the configuration key.
func (c Config) Validate() error {
	var errs []error
	if c.Buffers < 0 || c.Buffers > 4096 {
		errs = append(errs, fmt.Errorf("engine.reassembly.buffers: %d is out of range [0, 4096] (0: off)", c.Buffers))
	}
	if c.MaxBytes < 1280 || c.MaxBytes > 65535 {
		errs = append(errs, fmt.Errorf("engine.reassembly.max_bytes: %d is out of range [1280, 65535]", c.MaxBytes))
	}
	if c.Timeout < 100*time.Millisecond || c.Timeout > time.Minute {
		errs = append(errs, fmt.Errorf("engine.reassembly.timeout: %v is out of range [100ms, 1m]", c.Timeout))
	}
	return errors.Join(errs...)
}

// Fragment is one IP fragment handed to a Pool. Its slices are read during
// Add and not kept.
type Fragment struct {
	// Time is the packet time in nanoseconds.
	Time int64
	// IPv6 tells the family; Src, Dst, ID and (IPv4) Proto are the train's
	// key.
	IPv6     bool
	Src, Dst netip.Addr
	ID       uint32
	Proto    uint8
	// Offset is the fragment's offset in bytes, More its MF flag.
	Offset int
	More   bool
	// Data is the fragment's data, whole (a fragment cut by the capture is
	// not handed over).
	Data []byte
	// Header, in the first fragment only (Offset 0), is every byte before
	// its data: LinkLen bytes of link layer, then the IPv4 header, or the
	// IPv6 header with its unfragmentable extension headers followed by the
	// fragment header (8 bytes). Later fragments leave it nil.
	Header  []byte
	LinkLen int
}

// Stats are a Pool's counters.
type Stats struct {
	Len, Cap  int    // trains held now, and the cap (Buffers)
	Trains    uint64 // trains opened
	Completed uint64 // trains reassembled
	Evicted   uint64 // trains evicted incomplete to make room (oldest first)
	Timeouts  uint64 // trains that timed out incomplete
	// TooBig counts trains given up for growing past MaxBytes (or a
	// header past HeaderRoom), TooMany for more than MaxFragments
	// fragments, Conflicts for overlapping fragments with different bytes
	// or data past the end a last fragment declared, Malformed for a first
	// fragment whose headers cannot be rewritten.
	TooBig, TooMany, Conflicts, Malformed uint64
}

type key struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
	v6       bool
}

type span struct{ start, end int32 }

type slot struct {
	key     key
	used    bool
	first   int64
	hdrLen  int32 // header bytes, in buf[HeaderRoom-hdrLen:HeaderRoom]; 0: first fragment not seen
	linkLen int32
	lastEnd int32 // end declared by the last fragment; -1 until seen
	maxEnd  int32
	n       int32
	spans   [MaxFragments]span
	buf     []byte // HeaderRoom + MaxBytes, preallocated
}

// Pool reassembles fragment trains in preallocated buffers. It is not safe
// for concurrent use.
type Pool struct {
	cfg     Config
	timeout int64
	slots   []slot
	used    int
	stats   Stats
}

// New returns a Pool with every buffer allocated; cfg must be valid.
func New(cfg Config) *Pool {
	p := &Pool{cfg: cfg, timeout: int64(cfg.Timeout), slots: make([]slot, cfg.Buffers)}
	size := HeaderRoom + cfg.MaxBytes
	mem := make([]byte, size*cfg.Buffers)
	for i := range p.slots {
		p.slots[i].buf = mem[i*size : (i+1)*size : (i+1)*size]
	}
	return p
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	s := p.stats
	s.Len, s.Cap = p.used, p.cfg.Buffers
	return s
}

// Expire gives up the trains whose timeout has run out at packet time now
// (ns). Add calls it; the engine also calls it on ticks.
func (p *Pool) Expire(now int64) {
	if p.used == 0 {
		return
	}
	for i := range p.slots {
		s := &p.slots[i]
		if s.used && now-s.first >= p.timeout {
			p.free(s)
			p.stats.Timeouts++
		}
	}
}

// Reset drops every train (the clock jumped back); they count as timeouts.
func (p *Pool) Reset() {
	for i := range p.slots {
		if p.slots[i].used {
			p.free(&p.slots[i])
			p.stats.Timeouts++
		}
	}
}

func (p *Pool) free(s *slot) {
	s.used = false
	p.used--
}

// Add records one fragment. When it completes its train, Add returns the
// reassembled frame: the first fragment's link layer and IP header (its
// lengths, fragment fields and checksum rewritten, an IPv6 fragment header
// removed) followed by the whole fragmentable part. The frame lives in the
// pool's buffer and is valid until the next call to Add.
func (p *Pool) Add(f *Fragment) []byte {
	if len(p.slots) == 0 {
		return nil
	}
	p.Expire(f.Time)
	k := key{src: f.Src.As16(), dst: f.Dst.As16(), id: f.ID, v6: f.IPv6}
	if !f.IPv6 {
		k.proto = f.Proto
	}
	s := p.find(k)
	if s == nil {
		s = p.alloc(k, f.Time)
	}
	start, end := f.Offset, f.Offset+len(f.Data)
	if start < 0 || end > p.cfg.MaxBytes {
		p.giveUp(s, &p.stats.TooBig)
		return nil
	}
	if start == 0 && s.hdrLen == 0 {
		if len(f.Header) <= f.LinkLen {
			p.giveUp(s, &p.stats.Malformed)
			return nil
		}
		if len(f.Header) > HeaderRoom {
			p.giveUp(s, &p.stats.TooBig)
			return nil
		}
		copy(s.buf[HeaderRoom-len(f.Header):HeaderRoom], f.Header)
		s.hdrLen, s.linkLen = int32(len(f.Header)), int32(f.LinkLen)
	}
	if !f.More {
		if s.lastEnd >= 0 && int(s.lastEnd) != end || int(s.maxEnd) > end {
			p.giveUp(s, &p.stats.Conflicts)
			return nil
		}
		s.lastEnd = int32(end)
	} else if s.lastEnd >= 0 && end > int(s.lastEnd) {
		p.giveUp(s, &p.stats.Conflicts)
		return nil
	}
	if len(f.Data) > 0 {
		switch p.place(s, int32(start), int32(end), f.Data) {
		case placeConflict:
			p.giveUp(s, &p.stats.Conflicts)
			return nil
		case placeFull:
			p.giveUp(s, &p.stats.TooMany)
			return nil
		}
		s.maxEnd = max(s.maxEnd, int32(end))
	}
	if s.hdrLen == 0 || s.lastEnd < 0 || !covered(s) {
		return nil
	}
	out, ok := rewrite(s, f.IPv6)
	p.free(s)
	if !ok {
		p.stats.Malformed++
		return nil
	}
	p.stats.Completed++
	return out
}

func (p *Pool) find(k key) *slot {
	if p.used == 0 {
		return nil
	}
	for i := range p.slots {
		if s := &p.slots[i]; s.used && s.key == k {
			return s
		}
	}
	return nil
}

// alloc takes a free slot for k, evicting the oldest train if none is.
func (p *Pool) alloc(k key, now int64) *slot {
	var s, oldest *slot
	for i := range p.slots {
		c := &p.slots[i]
		if !c.used {
			s = c
			break
		}
		if oldest == nil || c.first < oldest.first {
			oldest = c
		}
	}
	if s == nil {
		s = oldest
		p.free(s)
		p.stats.Evicted++
	}
	buf := s.buf
	*s = slot{key: k, used: true, first: now, lastEnd: -1, buf: buf}
	p.used++
	p.stats.Trains++
	return s
}

func (p *Pool) giveUp(s *slot, counter *uint64) {
	p.free(s)
	*counter++
}

const (
	placeOK = iota
	placeConflict
	placeFull
)

// place records [start, end) and copies data into the train's buffer. An
// exact repeat of a fragment already held (same range, same bytes) changes
// nothing; any other overlap is a conflict (RFC 5722; Linux drops such
// IPv4 datagrams too).
func (p *Pool) place(s *slot, start, end int32, data []byte) int {
	at := int32(0)
	for ; at < s.n; at++ {
		sp := s.spans[at]
		if sp.start >= end {
			break
		}
		if sp.end <= start {
			continue
		}
		if sp.start == start && sp.end == end && bytes.Equal(s.buf[HeaderRoom+start:HeaderRoom+end], data) {
			return placeOK
		}
		return placeConflict
	}
	if s.n == MaxFragments {
		return placeFull
	}
	copy(s.spans[at+1:s.n+1], s.spans[at:s.n])
	s.spans[at] = span{start, end}
	s.n++
	copy(s.buf[HeaderRoom+start:HeaderRoom+end], data)
	return placeOK
}

// covered tells whether s's spans cover [0, lastEnd) without a hole.
func covered(s *slot) bool {
	c := int32(0)
	for _, sp := range s.spans[:s.n] {
		if sp.start > c {
			return false
		}
		c = max(c, sp.end)
	}
	return c >= s.lastEnd
}

// IPv6 extension headers that may precede a fragment header.
const (
	v6HopByHop = 0
	v6Routing  = 43
	v6AH       = 51
	v6DestOpts = 60
)

// rewrite turns the first fragment's header into the reassembled
// datagram's and returns the frame. For IPv6 the fragment header (the last
// 8 header bytes) is dropped and the header before it takes its next
// header.
func rewrite(s *slot, v6 bool) ([]byte, bool) {
	data := int(s.lastEnd)
	hdr := s.buf[HeaderRoom-int(s.hdrLen) : HeaderRoom]
	ip := hdr[s.linkLen:]
	if !v6 {
		if len(ip) < 20 || ip[0]>>4 != 4 || int(ip[0]&0x0f)*4 != len(ip) || len(ip)+data > 0xffff {
			return nil, false
		}
		binary.BigEndian.PutUint16(ip[2:4], uint16(len(ip)+data))
		binary.BigEndian.PutUint16(ip[6:8], binary.BigEndian.Uint16(ip[6:8])&0x4000) // DF kept; MF and offset cleared
		binary.BigEndian.PutUint16(ip[10:12], 0)
		binary.BigEndian.PutUint16(ip[10:12], checksum(ip))
		return s.buf[HeaderRoom-int(s.hdrLen) : HeaderRoom+data], true
	}
	if len(ip) < 48 || ip[0]>>4 != 6 {
		return nil, false
	}
	fh := len(ip) - 8 // the fragment header
	next := ip[fh]
	// The next-header byte that names the fragment header: the IPv6
	// header's, or that of the last unfragmentable extension header.
	pos, nh, off := 6, ip[6], 40
	for off < fh {
		var n int
		switch nh {
		case v6HopByHop, v6Routing, v6DestOpts:
			n = (int(ip[off+1]) + 1) * 8
		case v6AH:
			n = (int(ip[off+1]) + 2) * 4
		default:
			return nil, false
		}
		pos, nh, off = off, ip[off], off+n
	}
	if off != fh || nh != 44 || fh-40+data > 0xffff {
		return nil, false
	}
	ip[pos] = next
	binary.BigEndian.PutUint16(ip[4:6], uint16(fh-40+data))
	// Slide the headers over the fragment header, onto the data.
	start := HeaderRoom - int(s.hdrLen) + 8
	copy(s.buf[start:HeaderRoom], hdr[:len(hdr)-8])
	return s.buf[start : HeaderRoom+data], true
}

// checksum is the Internet checksum of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// Add adds o's counters to s (figures of several engines); o's Cap only
// when withCap (an engine that owns no targets has no room of its own).
func (s *Stats) Add(o Stats, withCap bool) {
	s.Len += o.Len
	if withCap {
		s.Cap += o.Cap
	}
	s.Trains += o.Trains
	s.Completed += o.Completed
	s.Evicted += o.Evicted
	s.Timeouts += o.Timeouts
	s.TooBig += o.TooBig
	s.TooMany += o.TooMany
	s.Conflicts += o.Conflicts
	s.Malformed += o.Malformed
}
