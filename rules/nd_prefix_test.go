package rules

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// TestPrefixWords: the prefixes rogue_ra keeps as an option's words are
// what netip builds from its bytes, as sent and masked, at every length,
// and equal as words exactly when equal as prefixes.
func TestPrefixWords(t *testing.T) {
	b := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44}
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	for bits := 0; bits <= 128; bits++ {
		want := netip.PrefixFrom(netip.AddrFrom16(b), bits)
		x := raPrefix{hi, lo, uint8(bits)}
		if got := x.prefix(); got != want {
			t.Errorf("/%d: prefix %v, want %v", bits, got, want)
		}
		if got := x.masked().prefix(); got != want.Masked() {
			t.Errorf("/%d: masked %v, want %v", bits, got, want.Masked())
		}
		// Equal as words exactly when equal as netip prefixes.
		for _, y := range []raPrefix{x.masked(), {hi, lo ^ 1, uint8(bits)}, {hi, lo, uint8(bits+1) % 129}} {
			if (x == y) != (x.prefix() == y.prefix()) {
				t.Errorf("/%d: %v == %v is %v as words", bits, x.prefix(), y.prefix(), x == y)
			}
		}
	}
}
