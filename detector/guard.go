package detector

import (
	"encoding/binary"
	"errors"

	"github.com/google/gopacket"
)

// Sentinel errors of the guards: malformed frames cost a counter, not an
// allocation. gopacket's decoders build a new error (errors.New,
// fmt.Errorf) for every short or malformed header, which would allocate on
// the hot path under a flood of junk.
var (
	errShort     = errors.New("header cut short")
	errMalformed = errors.New("header malformed")
)

// guarded wraps a gopacket DecodingLayer with a cheap check of the bytes it
// is about to decode. A frame the check rejects never reaches gopacket's
// decoder; one it passes decodes exactly as before.
type guarded struct {
	gopacket.DecodingLayer
	check func(data []byte) error
}

// DecodeFromBytes implements gopacket.DecodingLayer.
func (g guarded) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := g.check(data); err != nil {
		if err == errShort {
			df.SetTruncated()
		}
		return err
	}
	return g.DecodingLayer.DecodeFromBytes(data, df)
}

// minLen returns a check that data holds at least n bytes.
func minLen(n int) func([]byte) error {
	return func(data []byte) error {
		if len(data) < n {
			return errShort
		}
		return nil
	}
}

// checkLoopback accepts what layers.Loopback accepts: a 4-byte family
// below 256 in either byte order.
func checkLoopback(data []byte) error {
	if len(data) < 4 {
		return errShort
	}
	var fam uint32
	if data[0] == 0 && data[1] == 0 {
		fam = binary.BigEndian.Uint32(data[:4])
	} else {
		fam = binary.LittleEndian.Uint32(data[:4])
	}
	if fam > 0xff {
		return errMalformed
	}
	return nil
}

// checkIPv4 rejects the headers layers.IPv4 would reject with an allocated
// error (and, unlike it, a version other than 4).
func checkIPv4(data []byte) error {
	if len(data) < 20 {
		return errShort
	}
	if data[0]>>4 != 4 {
		return errMalformed
	}
	ihl := int(data[0]&0x0f) * 4
	length := int(binary.BigEndian.Uint16(data[2:4]))
	if length == 0 { // TSO capture: layers.IPv4 takes the captured length
		length = len(data)
	}
	switch {
	case ihl < 20 || length < 20 || ihl > length:
		return errMalformed
	case ihl > len(data):
		return errShort
	}
	return nil
}
