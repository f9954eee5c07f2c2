package rules

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// TestPrefixWords: the prefixes rogue_ra builds from an option's words are
// what netip builds from its bytes, as sent and masked, at every length.
func TestPrefixWords(t *testing.T) {
	b := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44}
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	for bits := 0; bits <= 128; bits++ {
		want := netip.PrefixFrom(netip.AddrFrom16(b), bits)
		if got := prefixOf(hi, lo, uint8(bits)); got != want {
			t.Errorf("/%d: prefixOf %v, want %v", bits, got, want)
		}
		if got := maskedPrefix(hi, lo, uint8(bits)); got != want.Masked() {
			t.Errorf("/%d: maskedPrefix %v, want %v", bits, got, want.Masked())
		}
	}
}
