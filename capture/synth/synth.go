// Package synth builds synthetic frames and capture files for tests, the
// demo capture and benchmarks: echo floods from one or many (spoofed)
// sources, benign pings, fragment trains, for IPv4 and IPv6, written with
// gopacket's serializer and pcapgo. Output is deterministic for a given seed.
package synth

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Frame is one synthetic frame and its capture time.
type Frame struct {
	Time time.Time
	Data []byte
}

// Echo describes one ICMP/ICMPv6 message to build. The zero values give an
// echo request of 56 data bytes.
type Echo struct {
	Src, Dst netip.Addr
	// Type and Code default to echo request (8/0 or 128/0) when Type is 0
	// and Reply is false.
	Type, Code uint8
	Reply      bool
	ID, Seq    uint16
	// PayloadLen is the ICMP data length (default 56, like ping).
	PayloadLen int
	// DstMAC defaults to a unicast address; set it to
	// layers.EthernetBroadcast for a layer-2 broadcast.
	DstMAC net.HardwareAddr
	TTL    uint8
}

var (
	srcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// EchoFrame returns an Ethernet frame carrying e.
func EchoFrame(e Echo) ([]byte, error) {
	plen := e.PayloadLen
	if plen == 0 {
		plen = 56
	}
	payload := make([]byte, plen)
	for i := range payload {
		payload[i] = byte(i)
	}
	dmac := e.DstMAC
	if dmac == nil {
		dmac = dstMAC
	}
	ttl := e.TTL
	if ttl == 0 {
		ttl = 64
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if e.Src.Is4() {
		typ := e.Type
		if typ == 0 && !e.Reply {
			typ = layers.ICMPv4TypeEchoRequest
		}
		eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: layers.IPProtocolICMPv4,
			Id: e.Seq, SrcIP: e.Src.AsSlice(), DstIP: e.Dst.AsSlice()}
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, e.Code), Id: e.ID, Seq: e.Seq}
		if err := gopacket.SerializeLayers(buf, opts, eth, ip, icmp, gopacket.Payload(payload)); err != nil {
			return nil, fmt.Errorf("serialize ipv4 icmp: %w", err)
		}
		return buf.Bytes(), nil
	}
	typ := e.Type
	switch {
	case typ == 0 && e.Reply:
		typ = layers.ICMPv6TypeEchoReply
	case typ == 0:
		typ = layers.ICMPv6TypeEchoRequest
	}
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: ttl, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: e.Src.AsSlice(), DstIP: e.Dst.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, e.Code)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	ls := []gopacket.SerializableLayer{eth, ip, icmp}
	if typ == layers.ICMPv6TypeEchoRequest || typ == layers.ICMPv6TypeEchoReply {
		ls = append(ls, &layers.ICMPv6Echo{Identifier: e.ID, SeqNumber: e.Seq})
	}
	ls = append(ls, gopacket.Payload(payload))
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		return nil, fmt.Errorf("serialize ipv6 icmp: %w", err)
	}
	return buf.Bytes(), nil
}

// Flood describes an echo-request flood.
type Flood struct {
	// Target is the victim; Source the attacker, unless Spoofed, in which
	// case every packet gets a new pseudo-random source of Target's family.
	Target, Source netip.Addr
	Spoofed        bool
	// Start, Rate (packets/s) and Count set the timing; Seed the sources.
	Start time.Time
	Rate  float64
	Count int
	Seed  uint64
	// PayloadLen is the ICMP data length (default 56).
	PayloadLen int
}

// Frames generates the flood's frames, evenly spaced at Rate.
func (f Flood) Frames() ([]Frame, error) {
	out := make([]Frame, 0, f.Count)
	step := time.Duration(float64(time.Second) / f.Rate)
	rng := f.Seed | 1
	for i := 0; i < f.Count; i++ {
		src := f.Source
		if f.Spoofed {
			rng = xorshift(rng)
			src = RandomAddr(rng, f.Target.Is4())
		}
		data, err := EchoFrame(Echo{Src: src, Dst: f.Target, ID: 0x4242, Seq: uint16(i), PayloadLen: f.PayloadLen})
		if err != nil {
			return nil, err
		}
		out = append(out, Frame{Time: f.Start.Add(time.Duration(i) * step), Data: data})
	}
	return out, nil
}

// RandomAddr derives an address of the given family from r (a
// pseudo-random value), avoiding 0.0.0.0/8, multicast and broadcast.
func RandomAddr(r uint64, v4 bool) netip.Addr {
	if v4 {
		b := [4]byte{byte(r >> 24), byte(r >> 16), byte(r >> 8), byte(r)}
		b[0] = 1 + b[0]%223 // 1..223: unicast
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	for i := 0; i < 8; i++ {
		b[8+i] = byte(r >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

func xorshift(x uint64) uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	return x
}

// Merge interleaves several frame lists by time (stable for equal times).
func Merge(lists ...[]Frame) []Frame {
	var out []Frame
	idx := make([]int, len(lists))
	for {
		best := -1
		for i, l := range lists {
			if idx[i] < len(l) && (best < 0 || l[idx[i]].Time.Before(lists[best][idx[best]].Time)) {
				best = i
			}
		}
		if best < 0 {
			return out
		}
		out = append(out, lists[best][idx[best]])
		idx[best]++
	}
}

// WritePcap writes frames as an Ethernet pcap (microsecond timestamps) to w.
func WritePcap(w io.Writer, frames []Frame) error {
	return WritePcapLink(w, layers.LinkTypeEthernet, frames)
}

// WritePcapLink writes frames as a pcap of link type lt to w.
func WritePcapLink(w io.Writer, lt layers.LinkType, frames []Frame) error {
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(65536, lt); err != nil {
		return fmt.Errorf("write pcap header: %w", err)
	}
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: f.Time, CaptureLength: len(f.Data), Length: len(f.Data)}
		if err := pw.WritePacket(ci, f.Data); err != nil {
			return fmt.Errorf("write pcap packet: %w", err)
		}
	}
	return nil
}

// WritePcapFile writes frames as an Ethernet pcap file at path.
func WritePcapFile(path string, frames []Frame) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := WritePcap(f, frames); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// Pings returns a benign ping session: count echo requests from src to dst
// at interval, each answered by an echo reply 1 ms later.
func Pings(src, dst netip.Addr, start time.Time, interval time.Duration, count int) ([]Frame, error) {
	var out []Frame
	for i := 0; i < count; i++ {
		t := start.Add(time.Duration(i) * interval)
		req, err := EchoFrame(Echo{Src: src, Dst: dst, ID: 7, Seq: uint16(i)})
		if err != nil {
			return nil, err
		}
		rep, err := EchoFrame(Echo{Src: dst, Dst: src, ID: 7, Seq: uint16(i), Reply: true})
		if err != nil {
			return nil, err
		}
		out = append(out, Frame{t, req}, Frame{t.Add(time.Millisecond), rep})
	}
	return out, nil
}
