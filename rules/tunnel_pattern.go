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

// A ping pattern's kind, as pingPattern finds it (patNone: none). For
// the kinds from patShort to patCount0 the data is the pattern but for a
// slot of at most 8 free bytes (slotOf), so a reply is checked against
// its request by that slot and the pattern (patternEchoes), without a
// print of either.
const (
	patNone      = iota
	patShort     // at most 8 bytes: all slot
	patWindows   // Windows' alphabet
	patCount16LE // counting bytes after a little-endian 16-byte timestamp
	patCount16BE // the same, big-endian
	patCount8    // counting bytes after an 8-byte timestamp
	patCount0    // counting bytes from the first byte
	patUnit      // a repeated unit (after a timestamp, or from the first byte)
)

// timestamp16 tells whether d[:16] is a plausible struct timeval or
// timespec of a 64-bit host (Linux iputils): seconds whose upper half is
// zero (until 2106) and a sub-second part below 10^9, little-endian
// (patCount16LE) or big-endian (patCount16BE); else patNone. Random
// bytes pass with a chance of 2^-32: the slot carries about 8 free bytes,
// not 16, each of its two words half zero.
func timestamp16(d []byte) uint8 {
	if binary.LittleEndian.Uint32(d[4:8]) == 0 && binary.LittleEndian.Uint64(d[8:16]) < 1e9 {
		return patCount16LE
	}
	if binary.BigEndian.Uint32(d[0:4]) == 0 && binary.BigEndian.Uint64(d[8:16]) < 1e9 {
		return patCount16BE
	}
	return patNone
}

// timestamp8 tells whether d[:8] is a plausible 32-bit timestamp
// (FreeBSD's and macOS' struct tv32, a 32-bit host's timeval): any
// seconds, a sub-second part below 10^9.
func timestamp8(d []byte) bool {
	return binary.LittleEndian.Uint32(d[4:8]) < 1e9 || binary.BigEndian.Uint32(d[4:8]) < 1e9
}

// patternSalt draws the sample positions of one packet from its capture
// time in microseconds (the resolution a pcap file keeps) and its echo
// sequence number: 32 bits, what icmp_tunnel's admission cell keeps of a
// request, so that its reply is read at the request's positions.
func patternSalt(timeNs int64, seq uint16) uint64 {
	x := uint64(timeNs/1000)*0x9e3779b97f4a7c15 ^ uint64(seq)<<32
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	return uint64(uint32(x ^ x>>32))
}

// samples tells whether the words of d beyond from (d holds at least 8
// bytes beyond the verified prefix: from <= len(d)-8) are those of unit,
// a pattern of period p (unit holds p+7 bytes or more): the last 8 bytes
// and patSamples words at salt's positions (samplePos). Word i of the
// pattern is unit[i%p:].
func samples(d []byte, from int, salt uint64, unit []byte, p int) bool {
	last := len(d) - 8
	x := binary.LittleEndian.Uint64(d[last:]) ^ binary.LittleEndian.Uint64(unit[last%p:])
	span := uint64(last - from + 1)
	for k := 0; k < patSamples; k++ {
		salt = salt*0x5851f42d4c957f2d + 0x14057b7ef767814f
		i := from + samplePos(salt, span)
		x |= binary.LittleEndian.Uint64(d[i:]) ^ binary.LittleEndian.Uint64(unit[i%p:])
	}
	return x == 0
}

// countingSamples is samples of the counting bytes (p = 256, a mask).
func countingSamples(d []byte, from int, salt uint64) bool {
	last := len(d) - 8
	x := binary.LittleEndian.Uint64(d[last:]) ^ binary.LittleEndian.Uint64(countingBytes[last&0xff:])
	// (d[i:i+8:i+8] below: two compares, no pointer mask.)
	span := uint64(last - from + 1)
	for k := 0; k < patSamples; k++ {
		salt = salt*0x5851f42d4c957f2d + 0x14057b7ef767814f
		i := from + samplePos(salt, span)
		x |= binary.LittleEndian.Uint64(d[i:i+8:i+8]) ^ binary.LittleEndian.Uint64(countingBytes[i&0xff:])
	}
	return x == 0
}

// samplePos is the sample position below span (at most 2^32) that the
// generator's state salt draws: its upper half scaled, no division.
func samplePos(salt, span uint64) int { return int((salt >> 32) * span >> 32) }

// pingPattern tells whether d, echo data, is what a ping tool sends, and
// as which kind (patNone: not), in a constant number of steps (see
// patPrefix): at most 8 bytes; Windows' alphabet; the counting bytes
// after a timestamp of 16 or 8 bytes (or none); or, after such a
// timestamp (or none), one unit of 1 to 16 bytes repeated at least once
// in full (ping -p, hping3's and fping's fills, zeros). Free bytes are
// not a pattern: the timestamp slot must hold a timestamp (timestamp16,
// timestamp8), and a unit must repeat, so a "pattern" carries at most
// about 8 + 16 bytes of a sender's choosing.
func pingPattern(d []byte, salt uint64) uint8 {
	n := len(d)
	if n <= 8 {
		return patShort
	}
	// Windows: the alphabet from the first byte.
	if d[0] == 'a' && d[1] == 'b' && windowsFrom(d, salt) {
		return patWindows
	}
	// Counting bytes from 16, 8 or 0, after a timestamp that long (the
	// first two bytes tested here, the rest by counting).
	if n >= 18 && d[16] == 16 && d[17] == 17 {
		if ts := timestamp16(d); ts != patNone && countingFrom(d, 16, salt) {
			return ts
		}
	}
	if n >= 10 && d[8] == 8 && d[9] == 9 && timestamp8(d) && countingFrom(d, 8, salt) {
		return patCount8
	}
	if d[0] == 0 && d[1] == 1 && countingFrom(d, 0, salt) {
		return patCount0
	}
	// A repeated unit. Its body starts after the timestamp slot (16
	// bytes, or less in a short payload); the head before it must be a
	// timestamp or continue the unit.
	k := min(16, n-2)
	body := d[k:]
	p := minPeriod(body)
	if l := min(len(body), patPrefix); p == 0 || len(body) >= l+8 && !samples(body, l, salt, body, p) {
		return patNone
	}
	switch {
	case k == 16 && timestamp16(d) != patNone:
		return patUnit
	case k == 16 && timestamp8(d) && continues(d[8:], body, p, 8):
		return patUnit
	case continues(d, body, p, k):
		return patUnit
	}
	return patNone
}

// windowsFrom tells whether d, of more than 8 bytes, is Windows' alphabet
// from its first byte, in its first patPrefix bytes and at salt's
// samples.
func windowsFrom(d []byte, salt uint64) bool {
	l := min(len(d), patPrefix)
	return string(d[:l]) == string(windowsBytes[:l]) && (len(d) < l+8 || samples(d, l, salt, windowsBytes[:], 23))
}

// countingFrom tells whether d holds Linux's counting bytes from c on (byte i
// = i), in its first patPrefix bytes from c and at salt's samples. c is
// at most 16. The prefix is compared word by word with the counting
// words (byte j of the word at i is i+j: no carry, i+7 < 256 here), read
// at fixed offsets of arrays (no bounds check per word; the last word
// overlapping the one before) and their differences or-ed: no call, no
// branch per word.
func countingFrom(d []byte, c int, salt uint64) bool {
	l := min(len(d), c+patPrefix)
	t := d[c:l]
	n := len(t)
	w := uint64(c)*ones + 0x0706050403020100
	le := binary.LittleEndian
	var x uint64
	switch {
	case n < 8:
		for i, b := range t {
			x |= uint64(b ^ byte(w>>(8*i)))
		}
	case n < 32:
		x = le.Uint64(t[n-8:]) ^ (w + uint64(n-8)*ones)
		for i := 0; i+8 < n; i += 8 {
			x |= le.Uint64(t[i:]) ^ (w + uint64(i)*ones)
		}
	default:
		a := (*[32]byte)(t)
		// (^ and | bind alike: each difference in parentheses.)
		x = (le.Uint64(t[n-8:]) ^ (w + uint64(n-8)*ones)) |
			(le.Uint64(a[0:8]) ^ w) | (le.Uint64(a[8:16]) ^ (w + 8*ones)) |
			(le.Uint64(a[16:24]) ^ (w + 16*ones)) | (le.Uint64(a[24:32]) ^ (w + 24*ones))
		if n > 40 {
			x |= le.Uint64((*[40]byte)(t)[32:40]) ^ (w + 32*ones)
		}
		if n > 48 {
			x |= le.Uint64((*[48]byte)(t)[40:48]) ^ (w + 40*ones)
		}
		if n > 56 {
			x |= le.Uint64((*[56]byte)(t)[48:56]) ^ (w + 48*ones)
		}
	}
	return x == 0 && (len(d) < l+8 || countingSamples(d, l, salt))
}

// ones has every byte 1.
const ones = 0x0101010101010101

// slotOf returns the free bytes of d, data of pattern kind k (patShort to
// patCount0), as two halves: all of it, at most 8 bytes zero-padded
// (patShort); the 8-byte timestamp (patCount8); the two words of a
// 16-byte one, each without its zero half (patCount16LE, patCount16BE);
// none (patWindows, patCount0).
func slotOf(d []byte, k uint8) (a, b uint32) {
	var w uint64
	switch k {
	case patShort:
		w = shortWord(d)
	case patCount8:
		w = binary.LittleEndian.Uint64(d)
	case patCount16LE:
		return uint32(binary.LittleEndian.Uint64(d)), uint32(binary.LittleEndian.Uint64(d[8:16]))
	case patCount16BE:
		return uint32(binary.LittleEndian.Uint64(d) >> 32), uint32(binary.LittleEndian.Uint64(d[8:16]) >> 32)
	}
	return uint32(w), uint32(w >> 32)
}

// shortWord is d, at most 8 bytes, zero-padded to a word.
func shortWord(d []byte) uint64 {
	var w [8]byte
	copy(w[:], d)
	return binary.LittleEndian.Uint64(w[:])
}

// patternEchoes tells whether d is the data of a request of pattern kind
// k (patShort to patCount0) whose slot was a, b (slotOf) and salt its
// salt, and as long (the caller compares lengths, or cuts both to
// fragPrefix): d holds the same slot and is the pattern where the
// request was verified to be (its first bytes and the salt's samples;
// both read the same positions). A reply to a ping costs no print.
func patternEchoes(d []byte, k uint8, a, b uint32, salt uint64) bool {
	switch k {
	case patShort:
		return len(d) <= 8 && shortWord(d) == uint64(a)|uint64(b)<<32
	case patWindows:
		return len(d) > 8 && windowsFrom(d, salt)
	case patCount16LE:
		return len(d) >= 16 && binary.LittleEndian.Uint64(d) == uint64(a) &&
			binary.LittleEndian.Uint64(d[8:16]) == uint64(b) && countingFrom(d, 16, salt)
	case patCount16BE:
		return len(d) >= 16 && binary.LittleEndian.Uint64(d) == uint64(a)<<32 &&
			binary.LittleEndian.Uint64(d[8:16]) == uint64(b)<<32 && countingFrom(d, 16, salt)
	case patCount8:
		return len(d) >= 8 && binary.LittleEndian.Uint64(d) == uint64(a)|uint64(b)<<32 && countingFrom(d, 8, salt)
	case patCount0:
		return countingFrom(d, 0, salt)
	}
	return false
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
