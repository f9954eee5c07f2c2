package main

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
)

// floodStream writes count echo requests to victim at rate, from source or,
// when spoofed, each from a new pseudo-random source: the same frames as
// synth.Flood with the same seed (ICMP id 0x4242, sequence and IP id the
// packet's index), built by patching one template instead of serializing
// each packet, and streamed.
func floodStream(w *writer, victim, source netip.Addr, spoofed bool, seed uint64, rate float64, count, payload int) error {
	step := time.Duration(float64(time.Second) / rate)
	rng := seed | 1
	var tmpl, frame []byte
	for i := 0; i < count; i++ {
		src := source
		if spoofed {
			rng = xorshift(rng)
			src = synth.RandomAddr(rng, victim.Is4())
		}
		ts := epoch.Add(time.Duration(i) * step)
		if !victim.Is4() { // IPv6: the serializer computes the pseudo-header checksum
			data, err := synth.EchoFrame(synth.Echo{Src: src, Dst: victim, ID: 0x4242, Seq: uint16(i), PayloadLen: payload})
			if err != nil {
				return err
			}
			if err := w.write(ts, data); err != nil {
				return err
			}
			continue
		}
		if tmpl == nil {
			var err error
			tmpl, err = synth.EchoFrame(synth.Echo{Src: src, Dst: victim, ID: 0x4242, PayloadLen: payload})
			if err != nil {
				return err
			}
			frame = make([]byte, len(tmpl))
		}
		copy(frame, tmpl)
		patchEcho4(frame, src, uint16(i))
		if err := w.write(ts, frame); err != nil {
			return err
		}
	}
	return nil
}

// patchEcho4 sets the IPv4 source, the IP id and the ICMP sequence (both
// seq) of an Ethernet + IPv4 (no options) + ICMP echo frame, and fixes the
// checksums.
func patchEcho4(f []byte, src netip.Addr, seq uint16) {
	ip := f[14:34]
	s := src.As4()
	copy(ip[12:16], s[:])
	binary.BigEndian.PutUint16(ip[4:6], seq)
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip))
	icmp := f[34:]
	binary.BigEndian.PutUint16(icmp[6:8], seq)
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:4], checksum(icmp))
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var acc uint32
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return ^uint16(acc)
}

// xorshift is synth's source generator, so the streamed flood matches
// synth.Flood's frames for the same seed.
func xorshift(x uint64) uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	return x
}

// fragFloodStream writes count first fragments (offset 0, MF set, 64 bytes
// of a UDP datagram) to victim at rate, each of a new train: a new spoofed
// source and IP id, never followed by the rest of the train. Every one
// opens a train the fragment tracker must hold until it times out or is
// evicted.
func fragFloodStream(w *writer, victim netip.Addr, seed uint64, rate float64, count int) error {
	step := time.Duration(float64(time.Second) / rate)
	rng := seed | 1
	udp := make([]byte, 64)
	binary.BigEndian.PutUint16(udp[0:2], 53)
	binary.BigEndian.PutUint16(udp[2:4], 4444)
	binary.BigEndian.PutUint16(udp[4:6], 1480) // the datagram's length: more follows, never sent
	eth := synth.Link{Type: synth.LinkEthernet}
	for i := 0; i < count; i++ {
		rng = xorshift(rng)
		src := synth.RandomAddr(rng, victim.Is4())
		var ip []byte
		if victim.Is4() {
			ip = synth.IPv4(synth.IPv4Header{Src: src, Dst: victim, Proto: 17, ID: uint16(rng >> 40), MF: true}, udp)
		} else {
			ip = synth.IPv6(src, victim, []synth.IPv6Ext{synth.FragmentHeader(0, true, uint32(rng>>32))}, 17, udp)
		}
		frame, err := synth.Encap(eth, ip)
		if err != nil {
			return err
		}
		if err := w.write(epoch.Add(time.Duration(i)*step), frame); err != nil {
			return err
		}
	}
	return nil
}

// carpetStream writes count echo requests at rate over the hosts of
// prefix (round robin over its addresses, network address included), from
// one source or, when spoofed, each from a new pseudo-random source (or,
// with sources > 0, from that many pseudo-random sources in turn, each
// hitting many hosts): a carpet-bombing flood. IPv4 frames are patched
// from one template.
func carpetStream(w *writer, prefix netip.Prefix, spoofed bool, sources int, seed uint64, rate float64, count, payload int) error {
	step := time.Duration(float64(time.Second) / rate)
	rng := seed | 1
	src := netip.MustParseAddr("198.51.100.7")
	if !prefix.Addr().Is4() {
		src = netip.MustParseAddr("2001:db8:bad::7")
	}
	hosts := uint64(1) << min(prefix.Addr().BitLen()-prefix.Bits(), 62)
	base := prefix.Masked().Addr().As16()
	var tmpl, frame []byte
	for i := 0; i < count; i++ {
		switch {
		case spoofed && sources > 0:
			src = synth.RandomAddr(xorshift(uint64(i%sources+1)*0x9e3779b97f4a7c15^seed), prefix.Addr().Is4())
		case spoofed:
			rng = xorshift(rng)
			src = synth.RandomAddr(rng, prefix.Addr().Is4())
		}
		dst := base
		off := uint64(i) % hosts
		for k := 15; k >= 0 && off > 0; k-- {
			sum := uint64(dst[k]) + off&0xff
			dst[k] = byte(sum)
			off = off>>8 + sum>>8
		}
		ts := epoch.Add(time.Duration(i) * step)
		if !prefix.Addr().Is4() {
			data, err := synth.EchoFrame(synth.Echo{Src: src, Dst: netip.AddrFrom16(dst), ID: 0x4242, Seq: uint16(i), PayloadLen: payload})
			if err != nil {
				return err
			}
			if err := w.write(ts, data); err != nil {
				return err
			}
			continue
		}
		if tmpl == nil {
			var err error
			tmpl, err = synth.EchoFrame(synth.Echo{Src: src, Dst: prefix.Addr(), ID: 0x4242, PayloadLen: payload})
			if err != nil {
				return err
			}
			frame = make([]byte, len(tmpl))
		}
		copy(frame, tmpl)
		copy(frame[14+16:14+20], dst[12:16])
		patchEcho4(frame, src, uint16(i))
		if err := w.write(ts, frame); err != nil {
			return err
		}
	}
	return nil
}
