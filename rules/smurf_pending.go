package rules

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"

	"github.com/icmpids/icmpids/detector/sketch"
)

// pendingWays is the associativity of the outstanding-request table: a
// bucket of pendingWays 8-byte ways is half a 64-byte cache line (the
// array is page-aligned, so no bucket straddles two lines).
const pendingWays = 4

// Bits of a way's tag (its high 32 bits).
const (
	pendUsed = 1 << 31 // the way holds a request
	pendFP   = 1<<30 - 1
	// pendBcast (in the way, above the tag's fingerprint): a broadcast
	// request was seen, bcast[i] holds its time.
	pendBcast = 1 << 62
)

// pendingSet is smurf's table of outstanding echo requests: a fixed array
// of buckets of pendingWays ways, the bucket chosen by a hash of (host,
// id). A request finds its way or takes a free or timed-out one in its
// bucket; when all are live, the one with the oldest request is evicted
// and counted. Every echo request of a spoofed flood is a new key: this
// costs a hash and one cache line, where a Go map paid an insert and a
// delete, and it never allocates after New.
//
// A way is one uint64: the tag in the high 32 bits (pendUsed, pendBcast's
// bit, and a 30-bit fingerprint of (host, id)), the time of the last
// request in the low 32, in microseconds modulo 2^32. The default 65,536
// requests take 512 KiB (the 16-byte ways took 1 MiB, a core's whole L2
// cache), so a spoofed flood's new source per request misses L2 less.
// Four ways a bucket, as with the 16-byte ways: filling a victim's bucket
// takes as many spoofed requests as it did (eight ways cost ~110
// instructions a request more in the bucket walk and measured no faster).
//
// The fingerprint is a keyed hash (a random key per table, like
// table.New's) of the exact (host, id): IPv4 (and IPv4-mapped IPv6, the
// same host) as its 32-bit address and the id, any other IPv6 host
// through sketch.HashAddr. Two different (host, id) of one bucket share
// a fingerprint with probability 2^-30 per comparison (a reply is then
// taken as solicited by the other's request); nobody who does not know
// the key can aim a request at a victim's fingerprint, so a forged
// request makes a victim's replies solicited only if it claims the
// victim's own address, as before.
//
// Times: a request is kept to the microsecond (pcap's usual resolution;
// the time-out is then exact), as a signed 32-bit difference from the
// packet time it is read at: exact while the request is less than 35
// minutes old, and the table never keeps one much past RequestTimeout
// (at most 10 minutes): Tick sweeps timed-out requests every
// RequestTimeout of packet time, and frees them all after a quiet gap of
// ~25 minutes or more (sweep). A request from the future (a capture
// whose clock went back) reads as fresh, as it always has.
//
// The time of the last broadcast request lives apart, in bcast (indexed
// like ways, full int64 packet times): it is read and written only for
// hosts that sent broadcast requests, so unicast requests, nearly all of
// them, touch one line.
type pendingSet struct {
	ways      []uint64
	bcast     []int64 // time of the last broadcast request of ways[i] (0: never)
	buckets   uint64
	assoc     int
	timeoutUs int32  // a request older than this many µs is timed out
	k0, k1    uint64 // the fingerprint's key
	n         int    // ways in use
	evicted   uint64
	swept     int64 // packet time of the last sweep (0: none yet)
}

// pendingWrapNs is the age, in ns, from which a way's time (µs modulo
// 2^32, read as a signed difference) reads wrongly: about 35.8 minutes.
const pendingWrapNs = int64(1<<31) * 1000

// newPendingSet holds at most capacity requests (capacity >= 1), each
// soliciting replies for timeout ns (at most 10 minutes).
func newPendingSet(capacity int, timeout int64) *pendingSet {
	assoc := min(pendingWays, capacity)
	b := capacity / assoc
	seed := maphash.MakeSeed()
	return &pendingSet{
		ways:      make([]uint64, b*assoc),
		bcast:     make([]int64, b*assoc),
		buckets:   uint64(b),
		assoc:     assoc,
		timeoutUs: int32(timeout / 1000),
		k0:        maphash.Comparable(seed, uint8(0)),
		k1:        maphash.Comparable(seed, uint8(1)) | 1,
	}
}

// usOf is packet time now (ns) in microseconds modulo 2^32.
func usOf(now int64) uint32 { return uint32(now / 1000) }

// age is how many µs before nowUs way w's request was (negative: after).
func age(w uint64, nowUs uint32) int32 { return int32(nowUs - uint32(w)) }

// locate returns the tag of (host, id) and the index of its bucket's
// first way.
func (s *pendingSet) locate(host netip.Addr, id uint16) (tag uint32, first int) {
	return s.locateHash(host, sketch.HashAddr(host), id)
}

// locateHash is locate for h = sketch.HashAddr(host) (Packet.SrcHash).
// The bucket is the one the table has always used (a hash of the 16-byte
// form of host, as sketch.HashAddr, and of id).
func (s *pendingSet) locateHash(host netip.Addr, h uint64, id uint16) (tag uint32, first int) {
	var x uint64
	if host.Is4() {
		// The 4 bytes, not As16 (a 16-byte reload of two 8-byte stores,
		// a store-forwarding stall): the same key as below.
		b4 := host.As4()
		x = uint64(binary.BigEndian.Uint32(b4[:]))<<16 | uint64(id)
	} else if b := host.As16(); binary.BigEndian.Uint64(b[:8]) == 0 && binary.BigEndian.Uint32(b[8:12]) == 0xffff {
		x = uint64(binary.BigEndian.Uint32(b[12:]))<<16 | uint64(id)
	} else {
		x = 1<<63 | h ^ uint64(id)*0xc2b2ae3d27d4eb4f
	}
	hi, lo := bits.Mul64(x^s.k0, s.k1)
	tag = pendUsed | uint32((hi^lo)>>34)&pendFP
	h ^= uint64(id) * 0x9e3779b97f4a7c15
	h ^= h >> 29
	first = int((h&0xffffffff)*s.buckets>>32) * s.assoc
	return tag, first
}

// tagOf is the tag of way w, less its broadcast bit.
func tagOf(w uint64) uint32 { return uint32((w &^ pendBcast) >> 32) }

// touch records a request of (host, id) at packet time now, creating its
// entry if needed; bcast tells that it went to a broadcast address or group.
func (s *pendingSet) touch(host netip.Addr, id uint16, now int64, bcast bool) {
	t, first := s.locate(host, id)
	s.touchAt(t, first, now, bcast)
}

// touchAt is touch for the tag and bucket locate returned. A new request
// takes the bucket's way of the greatest age, a free way counting as the
// oldest of all: a free way if there is one, else a timed-out one (older
// than any live one), else the oldest live one, evicted and counted.
func (s *pendingSet) touchAt(t uint32, first int, now int64, bcast bool) {
	nowUs := usOf(now)
	b := s.ways[first : first+s.assoc]
	oldest, oldestAge := 0, int32(math.MinInt32)
	for i, w := range b {
		if tagOf(w) == t {
			b[i] = w&^(1<<32-1) | uint64(nowUs)
			if bcast {
				s.setBcast(first+i, now)
			}
			return
		}
		a := age(w, nowUs)
		if w == 0 {
			a = math.MaxInt32
		}
		if a > oldestAge {
			oldest, oldestAge = i, a
		}
	}
	switch w := b[oldest]; {
	case w == 0:
		s.n++
	case oldestAge <= s.timeoutUs:
		s.evicted++
	}
	b[oldest] = uint64(t)<<32 | uint64(nowUs)
	if bcast {
		s.setBcast(first+oldest, now)
	}
}

// setBcast records a broadcast request at now in way i. A time of 0 reads
// as "never", as it always has.
func (s *pendingSet) setBcast(i int, now int64) {
	s.bcast[i] = now
	if now != 0 {
		s.ways[i] |= pendBcast
	} else {
		s.ways[i] &^= pendBcast
	}
}

// lookup tells whether (host, id) has an entry and whether its last
// request, at packet time now, still solicits replies (live), and returns
// the time of its last broadcast request (0: none).
func (s *pendingSet) lookup(host netip.Addr, id uint16, now int64) (live bool, lastBcast int64, ok bool) {
	t, first := s.locate(host, id)
	b := s.ways[first : first+s.assoc]
	for i, w := range b {
		if tagOf(w) == t {
			if w&pendBcast != 0 {
				lastBcast = s.bcast[first+i]
			}
			return age(w, usOf(now)) <= s.timeoutUs, lastBcast, true
		}
	}
	return false, 0, false
}

// sweep frees the entries timed out at packet time now. After a quiet
// gap in packet time so long that an entry left by the last sweep could be
// ~35.8 minutes old (every one is timed out by then, and its age would read
// modulo 2^32 µs as fresh), it frees them all.
func (s *pendingSet) sweep(now int64) {
	last := s.swept
	s.swept = now
	if last != 0 && now-last >= pendingWrapNs-int64(s.timeoutUs)*1000 {
		clear(s.ways)
		s.n = 0
		return
	}
	nowUs := usOf(now)
	for i, w := range s.ways {
		if w != 0 && age(w, nowUs) > s.timeoutUs {
			s.ways[i] = 0
			s.n--
		}
	}
}

func (s *pendingSet) Len() int        { return s.n }
func (s *pendingSet) Cap() int        { return len(s.ways) }
func (s *pendingSet) Evicted() uint64 { return s.evicted }
