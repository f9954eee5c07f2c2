package rules

import (
	"encoding/binary"
	"math/bits"
)

// The ping-pattern test is bounded by a constant whatever the payload: it
// reads the timestamp slot, a prefix of patPrefix bytes of the pattern in
// full, the last 8 bytes and patSamples 8-byte words sampled in between at
// positions drawn from the packet's capture time (the sender cannot know
// which bytes are read, so data hidden in a long "pattern" is found in a
// few packets, and a replay samples the same bytes as the live sensor).
const (
	patPrefix  = 64
	patSamples = 8
	// patMaxUnit is the longest repeated unit (ping -p takes 16 bytes).
	patMaxUnit = 16
)

// countingBytes is byte i = i, as Linux, BSD and macOS ping fill their
// data after the timestamp (patPrefix+8 bytes past a wrap).
var countingBytes = func() (b [256 + patPrefix + 8]byte) {
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// windowsBytes is Windows' ping data, "abcdefghijklmnopqrstuvw" repeated
// (23 letters: the default 32 bytes end in "abcdefghi").
var windowsBytes = func() (b [23 + patPrefix + 8]byte) {
	for i := range b {
		b[i] = 'a' + byte(i%23)
	}
	return b
}()

// timestamp16 tells whether d[:16] is a plausible struct timeval or
// timespec of a 64-bit host (Linux iputils): seconds whose upper half is
// zero (until 2106) and a sub-second part below 10^9, little- or
// big-endian. Random bytes pass with a chance of 2^-32: the slot carries
// about 8 free bytes, not 16.
func timestamp16(d []byte) bool {
	if binary.LittleEndian.Uint32(d[4:8]) == 0 && binary.LittleEndian.Uint64(d[8:16]) < 1e9 {
		return true
	}
	return binary.BigEndian.Uint32(d[0:4]) == 0 && binary.BigEndian.Uint64(d[8:16]) < 1e9
}

// timestamp8 tells whether d[:8] is a plausible 32-bit timestamp
// (FreeBSD's and macOS' struct tv32, a 32-bit host's timeval): any
// seconds, a sub-second part below 10^9.
func timestamp8(d []byte) bool {
	return binary.LittleEndian.Uint32(d[4:8]) < 1e9 || binary.BigEndian.Uint32(d[4:8]) < 1e9
}

// patternSalt draws the sample positions of one packet from its capture
// time in microseconds (the resolution a pcap file keeps) and its echo
// sequence number.
func patternSalt(timeNs int64, seq uint16) uint64 {
	x := uint64(timeNs/1000)*0x9e3779b97f4a7c15 ^ uint64(seq)<<32
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	return x ^ x>>32
}

// sampled tells whether the words of d beyond from (d[from:] holds at
// least 8 bytes beyond the verified prefix) match what expect says: the
// last 8 bytes and patSamples words at salt's positions.
func sampled(d []byte, from int, salt uint64, expect func(i int) uint64) bool {
	last := len(d) - 8
	if last < from {
		return true
	}
	if binary.LittleEndian.Uint64(d[last:]) != expect(last) {
		return false
	}
	span := uint64(last - from + 1)
	for k := 0; k < patSamples; k++ {
		salt = salt*0x5851f42d4c957f2d + 0x14057b7ef767814f
		i := from + int((salt>>32)%span)
		if binary.LittleEndian.Uint64(d[i:]) != expect(i) {
			return false
		}
	}
	return true
}

// pingPattern tells whether d, echo data, is what a ping tool sends, in a
// constant number of steps (see patPrefix): at most 8 bytes; Windows'
// alphabet; the counting bytes after a timestamp of 16 or 8 bytes (or
// none); or, after such a timestamp (or none), one unit of 1 to 16 bytes
// repeated at least once in full (ping -p, hping3's and fping's fills,
// zeros). Free bytes are not a pattern: the timestamp slot must hold a
// timestamp (timestamp16, timestamp8), and a unit must repeat, so a
// "pattern" carries at most about 8 + 16 bytes of a sender's choosing.
func pingPattern(d []byte, salt uint64) bool {
	n := len(d)
	if n <= 8 {
		return true
	}
	// Windows: the alphabet from the first byte.
	if d[0] == 'a' && d[1] == 'b' {
		l := min(n, patPrefix)
		if string(d[:l]) == string(windowsBytes[:l]) &&
			sampled(d, l, salt, func(i int) uint64 { return binary.LittleEndian.Uint64(windowsBytes[i%23:]) }) {
			return true
		}
	}
	// Counting bytes from 16, 8 or 0, after a timestamp that long (the
	// first two bytes tested here, the rest by counting).
	if n >= 18 && d[16] == 16 && d[17] == 17 && timestamp16(d) && countingFrom(d, 16, salt) ||
		n >= 10 && d[8] == 8 && d[9] == 9 && timestamp8(d) && countingFrom(d, 8, salt) ||
		d[0] == 0 && d[1] == 1 && countingFrom(d, 0, salt) {
		return true
	}
	// A repeated unit. Its body starts after the timestamp slot (16
	// bytes, or less in a short payload); the head before it must be a
	// timestamp or continue the unit.
	k := min(16, n-2)
	body := d[k:]
	p := minPeriod(body)
	if p == 0 {
		return false
	}
	l := min(len(body), patPrefix)
	if !sampled(body, l, salt, func(i int) uint64 { return binary.LittleEndian.Uint64(body[i%p:]) }) {
		return false
	}
	switch {
	case k == 16 && timestamp16(d):
		return true
	case k == 16 && timestamp8(d) && continues(d[8:], body, p, 8):
		return true
	}
	return continues(d, body, p, k)
}

// countingFrom tells whether d holds Linux's counting bytes from c on (byte i
// = i), in its first patPrefix bytes from c and at salt's samples.
func countingFrom(d []byte, c int, salt uint64) bool {
	l := min(len(d), c+patPrefix)
	return string(d[c:l]) == string(countingBytes[c:l]) &&
		sampled(d, l, salt, func(i int) uint64 { return binary.LittleEndian.Uint64(countingBytes[i&0xff:]) })
}

// minPeriod returns the shortest unit p (1..patMaxUnit) that body's
// first patPrefix bytes repeat, shown in full at least twice (len >= 2p),
// or 0. When body repeats a unit of at most patMaxUnit bytes, its
// prefix's shortest period divides it (Fine and Wilf), so one candidate
// is all there is to verify. The candidates are the positions 1..16
// holding body[0], found 8 at a time (random data has none).
func minPeriod(body []byte) int {
	l := min(len(body), patPrefix)
	if l < 2*patMaxUnit+1 {
		for p := 1; p <= patMaxUnit && 2*p <= l; p++ {
			if body[p] == body[0] && string(body[p:l]) == string(body[:l-p]) {
				return p
			}
		}
		return 0
	}
	b0 := uint64(body[0]) * 0x0101010101010101
	// bit 8k+7 of m1 (m2): body[1+k] (body[9+k]) == body[0]
	m1, m2 := zeroBytes(binary.LittleEndian.Uint64(body[1:9])^b0), zeroBytes(binary.LittleEndian.Uint64(body[9:17])^b0)
	for ; m1 != 0; m1 &= m1 - 1 {
		if p := 1 + bits.TrailingZeros64(m1)/8; string(body[p:l]) == string(body[:l-p]) {
			return p
		}
	}
	for ; m2 != 0; m2 &= m2 - 1 {
		if p := 9 + bits.TrailingZeros64(m2)/8; string(body[p:l]) == string(body[:l-p]) {
			return p
		}
	}
	return 0
}

// zeroBytes has the high bit of each zero byte of x set, and no other bit.
func zeroBytes(x uint64) uint64 {
	const low7 = 0x7f7f7f7f7f7f7f7f
	return ^((x&low7 + low7) | x | low7)
}

// continues tells whether head, the k bytes before body, are the unit of
// period p continued backwards (a pattern from the first byte).
func continues(head, body []byte, p, k int) bool {
	for i := 0; i < k; i++ {
		// head[i] sits k-i bytes before body[0]: unit position (-(k-i)) mod p.
		if head[i] != body[((i-k)%p+p)%p] {
			return false
		}
	}
	return true
}
