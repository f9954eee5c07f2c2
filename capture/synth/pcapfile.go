package synth

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// PcapOptions shapes a pcap file written by WritePcapOpts. Unlike pcapgo's
// writer it can write any 16-bit link type (pcapgo's is a uint8) and either
// byte order.
type PcapOptions struct {
	LinkType  uint16
	SnapLen   uint32 // 0 means 262144
	Nanos     bool   // nanosecond timestamps (magic a1b23c4d)
	BigEndian bool
}

// WritePcapOpts writes frames as a pcap file shaped by o to w.
func WritePcapOpts(w io.Writer, o PcapOptions, frames []Frame) error {
	var bo binary.ByteOrder = binary.LittleEndian
	if o.BigEndian {
		bo = binary.BigEndian
	}
	snap := o.SnapLen
	if snap == 0 {
		snap = 262144
	}
	hdr := make([]byte, 24)
	magic := uint32(0xa1b2c3d4)
	if o.Nanos {
		magic = 0xa1b23c4d
	}
	bo.PutUint32(hdr[0:4], magic)
	bo.PutUint16(hdr[4:6], 2)
	bo.PutUint16(hdr[6:8], 4)
	bo.PutUint32(hdr[16:20], snap)
	bo.PutUint32(hdr[20:24], uint32(o.LinkType))
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("write pcap header: %w", err)
	}
	rec := make([]byte, 16)
	for _, f := range frames {
		frac := uint32(f.Time.Nanosecond())
		if !o.Nanos {
			frac /= 1000
		}
		bo.PutUint32(rec[0:4], uint32(f.Time.Unix()))
		bo.PutUint32(rec[4:8], frac)
		bo.PutUint32(rec[8:12], uint32(len(f.Data)))
		bo.PutUint32(rec[12:16], uint32(len(f.Data)))
		if _, err := w.Write(rec); err != nil {
			return fmt.Errorf("write pcap record: %w", err)
		}
		if _, err := w.Write(f.Data); err != nil {
			return fmt.Errorf("write pcap record: %w", err)
		}
	}
	return nil
}

// NgInterface is one interface of a pcapng file written by WritePcapng.
type NgInterface struct {
	LinkType uint16
	// TSResol is the if_tsresol option; 0 leaves it out (microseconds).
	TSResol uint8
}

// NgPacket is one frame of a pcapng file and the index of its interface.
type NgPacket struct {
	Interface int
	Frame
}

// WritePcapng writes a one-section pcapng file with the given interfaces
// and enhanced packet blocks, in big- or little-endian byte order.
func WritePcapng(w io.Writer, bigEndian bool, ifaces []NgInterface, pkts []NgPacket) error {
	var bo binary.AppendByteOrder = binary.LittleEndian
	if bigEndian {
		bo = binary.BigEndian
	}
	block := func(typ uint32, body []byte) error {
		pad := (4 - len(body)%4) % 4
		total := uint32(12 + len(body) + pad)
		b := make([]byte, 0, total)
		b = bo.AppendUint32(b, typ)
		b = bo.AppendUint32(b, total)
		b = append(b, body...)
		b = append(b, make([]byte, pad)...)
		b = bo.AppendUint32(b, total)
		_, err := w.Write(b)
		return err
	}
	shb := bo.AppendUint32(nil, 0x1a2b3c4d)
	shb = bo.AppendUint16(shb, 1)
	shb = bo.AppendUint16(shb, 0)
	shb = bo.AppendUint64(shb, ^uint64(0)) // section length unknown
	if err := block(0x0a0d0d0a, shb); err != nil {
		return fmt.Errorf("write pcapng section header: %w", err)
	}
	for _, in := range ifaces {
		idb := bo.AppendUint16(nil, in.LinkType)
		idb = bo.AppendUint16(idb, 0)
		idb = bo.AppendUint32(idb, 262144)
		if in.TSResol != 0 {
			idb = bo.AppendUint16(idb, 9)
			idb = bo.AppendUint16(idb, 1)
			idb = append(idb, in.TSResol, 0, 0, 0)
			idb = append(idb, 0, 0, 0, 0) // opt_endofopt
		}
		if err := block(1, idb); err != nil {
			return fmt.Errorf("write pcapng interface: %w", err)
		}
	}
	for _, p := range pkts {
		if p.Interface < 0 || p.Interface >= len(ifaces) {
			return fmt.Errorf("write pcapng packet: no interface %d", p.Interface)
		}
		units := ngUnits(ifaces[p.Interface].TSResol)
		ts := uint64(p.Time.Unix())*units + uint64(p.Time.Nanosecond())*units/uint64(time.Second)
		epb := bo.AppendUint32(nil, uint32(p.Interface))
		epb = bo.AppendUint32(epb, uint32(ts>>32))
		epb = bo.AppendUint32(epb, uint32(ts))
		epb = bo.AppendUint32(epb, uint32(len(p.Data)))
		epb = bo.AppendUint32(epb, uint32(len(p.Data)))
		epb = append(epb, p.Data...)
		if err := block(6, epb); err != nil {
			return fmt.Errorf("write pcapng packet: %w", err)
		}
	}
	return nil
}

// ngUnits is the number of timestamp units a second for if_tsresol v
// (decimal exponents up to 9 only).
func ngUnits(v uint8) uint64 {
	if v == 0 {
		v = 6
	}
	u := uint64(1)
	for range v {
		u *= 10
	}
	return u
}
