package rules

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// timeval16 is a 64-bit Linux struct timeval (little-endian).
func timeval16(sec, usec uint64) []byte {
	d := make([]byte, 16)
	binary.LittleEndian.PutUint64(d, sec)
	binary.LittleEndian.PutUint64(d[8:], usec)
	return d
}

func counting(from, n int) []byte {
	d := make([]byte, n)
	for i := range d {
		d[i] = byte(from + i)
	}
	return d
}

func repeat(n int, unit ...byte) []byte {
	d := make([]byte, n)
	for i := range d {
		d[i] = unit[i%len(unit)]
	}
	return d
}

func cat(parts ...[]byte) []byte {
	var d []byte
	for _, p := range parts {
		d = append(d, p...)
	}
	return d
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	d := make([]byte, n)
	for i := range d {
		d[i] = byte(r.Uint32())
	}
	return d
}

// The ping-pattern test: what ping tools really send passes, whatever the
// size; free bytes dressed as a pattern (a timestamp slot holding data, a
// unit shown once) do not, nor does data hidden past a long pattern.
func TestPingPattern(t *testing.T) {
	ts := timeval16(1765100000, 123456)
	tv32 := []byte{0x69, 0x35, 0x8a, 0x65, 0x40, 0xe2, 0x01, 0x00} // FreeBSD tv32, LE
	tests := []struct {
		name string
		d    []byte
		want bool
	}{
		{"empty", nil, true},
		{"8 bytes", randomBytes(1, 8), true},
		{"Linux ping (56)", cat(ts, counting(16, 40)), true},
		{"Linux ping -s 1400", cat(ts, counting(16, 1384)), true},
		{"Linux ping -s 65000", cat(ts, counting(16, 64984)), true},
		{"FreeBSD/macOS ping (tv32, counting from 8)", cat(tv32, counting(8, 48)), true},
		{"32-bit Linux ping", cat(tv32, counting(8, 1000)), true},
		{"ping -s 12 (no timestamp)", counting(0, 12), true},
		{"Linux ping -p ff", cat(ts, repeat(40, 0xff)), true},
		{"Linux ping -p deadbeef -s 1400", cat(ts, repeat(1384, 0xde, 0xad, 0xbe, 0xef)), true},
		{"Linux ping -p of 16 bytes", cat(ts, repeat(40, counting(0x30, 16)...)), true},
		{"Windows ping (32)", []byte("abcdefghijklmnopqrstuvwabcdefghi"), true},
		{"Windows ping -l 1000", repeat(1000, []byte("abcdefghijklmnopqrstuvw")...), true},
		{"fping / nmap zeros", make([]byte, 56), true},
		{"1,400 zeros", make([]byte, 1400), true},
		{"hping3 -d 120 X fill", repeat(120, 'X'), true},
		{"random 56", randomBytes(2, 56), false},
		{"random 1400", randomBytes(3, 1400), false},
		// Issue 26.6: 16 free bytes + Linux's counting tail.
		{"16 free bytes then counting", cat(randomBytes(4, 16), counting(16, 40)), false},
		// 32 free bytes + one repeated byte.
		{"32 free bytes then one repeat", func() []byte { d := randomBytes(5, 33); d[32] = d[16]; return d }(), false},
		{"16 free bytes then zeros", cat(randomBytes(6, 16), make([]byte, 40)), false},
		// Issue 27.2: data at the end of a long pattern.
		{"1,399 zeros then 0x01", append(make([]byte, 1399), 1), false},
		{"counting with the last byte changed", func() []byte { d := cat(ts, counting(16, 1384)); d[len(d)-1] ^= 0x55; return d }(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for seq := uint16(0); seq < 4; seq++ {
				if got := pingPattern(tc.d, patternSalt(1765100000e9+int64(seq)*1e6, seq)) != patNone; got != tc.want {
					t.Fatalf("pingPattern = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// Data hidden in a long pattern is found within a few packets: each
// packet reads other bytes (the salt comes from its capture time).
func TestPingPatternSampled(t *testing.T) {
	ts := timeval16(1765100000, 5)
	caught := 0
	for i := 0; i < 100; i++ {
		d := cat(ts, counting(16, 1384))
		copy(d[400:], randomBytes(uint64(i), 300)) // 300 of 1,400 bytes hidden
		if pingPattern(d, patternSalt(1765100000e9+int64(i)*1037123, uint16(i))) == patNone {
			caught++
		}
	}
	if caught < 70 {
		t.Errorf("%d of 100 packets hiding 300 bytes in a pattern caught, want most", caught)
	}
}

// The test costs a constant: the worst payloads of issue 27.2 (a long
// pattern broken at its end) are no slower than a short ping.
func BenchmarkPingPattern(b *testing.B) {
	for _, bc := range []struct {
		name string
		d    []byte
	}{
		{"linux56", cat(timeval16(1765100000, 5), counting(16, 40))},
		{"zeros1400", make([]byte, 1400)},
		{"zeros1399+1", append(make([]byte, 1399), 1)},
		{"random1400", randomBytes(1, 1400)},
		{"random56", randomBytes(2, 56)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			salt := uint64(1)
			for b.Loop() {
				salt++
				pingPattern(bc.d, salt)
			}
		})
	}
}

// minPeriod finds its candidates 8 bytes at a time; it must agree with a
// scan of every period, on random bodies and on bodies repeating a unit
// of 1 to 17 bytes with a byte changed anywhere.
func TestMinPeriodMatchesScan(t *testing.T) {
	scan := func(body []byte) int {
		l := min(len(body), patPrefix)
		for p := 1; p <= patMaxUnit && 2*p <= l; p++ {
			if string(body[p:l]) == string(body[:l-p]) {
				return p
			}
		}
		return 0
	}
	r := rand.New(rand.NewPCG(7, 7))
	for n := 0; n < 20000; n++ {
		body := make([]byte, r.IntN(90))
		unit := make([]byte, 1+r.IntN(17))
		for i := range unit {
			unit[i] = byte(r.IntN(3)) // few values: many candidate positions
		}
		for i := range body {
			body[i] = unit[i%len(unit)]
		}
		if len(body) > 0 && r.IntN(2) == 0 {
			body[r.IntN(len(body))] ^= byte(1 + r.IntN(255))
		}
		if got, want := minPeriod(body), scan(body); got != want {
			t.Fatalf("minPeriod(% x) = %d, a scan finds %d", body, got, want)
		}
	}
}

// echoPrints is dataPrint of the data and of its first fragPrefix bytes;
// every byte of data up to printWhole bytes counts.
func TestEchoPrints(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 40, 56, 63, 64, 65, 255, 256, 257, 1400, 65000} {
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(r.Uint32())
		}
		salt := r.Uint64()
		sum, pre := echoPrints(d, salt)
		wantPre := uint32(0)
		if n >= fragPrefix {
			wantPre = dataPrint(d[:fragPrefix], salt)
		}
		if sum != dataPrint(d, salt) || pre != wantPre {
			t.Errorf("%d bytes: echoPrints %x %x, dataPrint %x %x", n, sum, pre, dataPrint(d, salt), wantPre)
		}
		if n <= printWhole { // every byte of a short payload is read
			for i := range d {
				d[i] ^= 0x40
				if dataPrint(d, salt) == sum {
					t.Errorf("%d bytes: a change of byte %d kept the print", n, i)
				}
				d[i] ^= 0x40
			}
		}
	}
}

// A reply to a ping is checked against its request's pattern and slot,
// without a print: what that costs on the usual sizes, to set against
// dataPrint's.
func BenchmarkPatternEchoes(b *testing.B) {
	for _, bc := range []struct {
		name string
		d    []byte
	}{
		{"linux56", cat(timeval16(1765100000, 5), counting(16, 40))},
		{"bsd56", counting(0, 56)}, // read as an 8-byte timestamp, then counting
		{"linux1400", cat(timeval16(1765100000, 5), counting(16, 1384))},
	} {
		k := pingPattern(bc.d, 1)
		sa, sb := slotOf(bc.d, k)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !patternEchoes(bc.d, k, sa, sb, 1) {
					b.Fatal("the request's own data differs")
				}
			}
		})
	}
}

// countingFrom compares its prefix a word at a time; it must agree with a
// byte-by-byte comparison (and the same samples) on counting data of
// every length and start with bytes changed anywhere, one or several,
// and changes that cancel out in a careless combination of words.
func TestCountingFromMatchesBytes(t *testing.T) {
	ref := func(d []byte, c int, salt uint64) bool {
		l := min(len(d), c+patPrefix)
		for i := c; i < l; i++ {
			if d[i] != byte(i) {
				return false
			}
		}
		return len(d) < l+8 || countingSamples(d, l, salt)
	}
	r := rand.New(rand.NewPCG(9, 9))
	for n := 0; n < 40000; n++ {
		c := []int{0, 8, 16}[r.IntN(3)]
		d := counting(0, c+r.IntN(200))
		switch r.IntN(4) {
		case 1: // one byte
			if len(d) > 0 {
				d[r.IntN(len(d))] ^= byte(1 + r.IntN(255))
			}
		case 2: // a few
			for k := r.IntN(4); k >= 0 && len(d) > 0; k-- {
				d[r.IntN(len(d))] = byte(r.Uint32())
			}
		case 3: // a word made equal to the next one's (x^a|b^b ... cancels)
			if i := c + 8*r.IntN(8); i+16 <= len(d) {
				copy(d[i:i+8], d[i+8:i+16])
			}
		}
		salt := r.Uint64()
		if got, want := countingFrom(d, c, salt), ref(d, c, salt); got != want {
			t.Fatalf("countingFrom(% x, %d) = %v, bytes say %v", d, c, got, want)
		}
	}
}
