package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
)

// mixConfig shapes the benign mix: shares of packets (ICMP), of frames
// (IPv6, VLAN) and of UDP datagrams (fragmented). Floods is the share of
// packets in flood episodes (0: a benign mix).
type mixConfig struct {
	ICMP, IPv6, VLAN, Frag float64
	Hosts                  int
	Floods                 float64
}

func (c mixConfig) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"-icmp", c.ICMP}, {"-ipv6", c.IPv6}, {"-vlan", c.VLAN}, {"-frag", c.Frag}} {
		if !(f.v >= 0 && f.v <= 1) {
			return fmt.Errorf("%s: %v is not a share in [0, 1]", f.name, f.v)
		}
	}
	if !(c.Floods >= 0 && c.Floods < 0.5) {
		return fmt.Errorf("-floods: %v is not a share in [0, 0.5)", c.Floods)
	}
	if c.Hosts < 1 || c.Hosts > 65000 {
		return fmt.Errorf("-hosts: %d is out of range [1, 65000]", c.Hosts)
	}
	return nil
}

// mixGen builds the benign gateway mix: inside hosts (10.1.0.0/16,
// 2001:db8:1::/64) talking to outside hosts. Packets are, by count:
//
//   - ICMP (share -icmp): echo request/reply exchanges (the reply right
//     after its request, same id; 1 in 10 pings large), destination
//     unreachable and time exceeded errors quoting a datagram, and for
//     IPv6 neighbour solicitations and advertisements;
//   - TCP (the rest, 4 in 5): pure ACKs, full 1448-byte segments, and
//     segments of 100 to 1,000 bytes;
//   - UDP (the rest, 1 in 5): DNS-sized and QUIC-sized datagrams; a share
//     (-frag) are 2,960-byte datagrams sent as complete fragment trains.
//
// The average frame is about 600 bytes. Each frame is IPv6 with
// probability -ipv6 and 802.1Q-tagged with probability -vlan. No host
// comes near any rule's threshold at rates up to a few hundred thousand
// packets/s: the mix raises no alert.
type mixGen struct {
	cfg    mixConfig
	r      *rand.Rand
	w      *writer
	step   time.Duration
	n, max int
	ipID   uint16
	fragID uint32
	// flood is the flood episode under way (left > 0).
	flood struct {
		left, seq int
		victim    netip.Addr
		data      [56]byte
	}
}

// episodeLen is the packets of one flood episode of the mix (-floods); its
// packets alternate with the mix's.
const episodeLen = 20000

func mixStream(w *writer, cfg mixConfig, seed uint64, rate float64, count int) error {
	g := &mixGen{cfg: cfg, r: rand.New(rand.NewPCG(seed, 0x1c3b1d5)), w: w,
		step: time.Duration(float64(time.Second) / rate), max: count}
	// An ICMP draw writes 1.82 packets on average (echo exchanges and
	// neighbour discovery come in pairs), a TCP or UDP draw about 1: draw
	// ICMP with the probability that makes its share of packets cfg.ICMP.
	pICMP := cfg.ICMP / (1.82 - 0.82*cfg.ICMP)
	// An episode of episodeLen flood packets spans about twice as many
	// packets; between episodes come 1/pFlood mix draws on average: the
	// share of flood packets is episodeLen / (1/pFlood + 2 episodeLen).
	var pFlood float64
	if cfg.Floods > 0 {
		pFlood = 1 / (episodeLen * (1/cfg.Floods - 2))
	}
	for g.n < g.max {
		var err error
		if pFlood > 0 {
			if g.flood.left == 0 && g.r.Float64() < pFlood {
				g.startFlood()
			}
			if g.flood.left > 0 && g.r.IntN(2) == 0 {
				if err := g.floodPacket(); err != nil {
					return err
				}
				continue
			}
		}
		v6 := g.r.Float64() < cfg.IPv6
		switch x := g.r.Float64(); {
		case x < pICMP:
			err = g.icmp(v6)
		case x < pICMP+(1-pICMP)*0.8:
			err = g.tcp(v6)
		default:
			err = g.udp(v6)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// startFlood begins a flood episode against an inside IPv4 host: its
// packets carry the same 56 random-looking bytes (no ping's pattern).
func (g *mixGen) startFlood() {
	g.flood.left = episodeLen
	g.flood.victim = g.inside(false)
	for i := range g.flood.data {
		g.flood.data[i] = byte(g.r.Uint32())
	}
}

// floodPacket writes the next echo request of the flood episode, from a
// new spoofed source.
func (g *mixGen) floodPacket() error {
	g.flood.left--
	g.flood.seq++
	src := synth.RandomAddr(g.r.Uint64(), true)
	m := synth.Msg{Src: src, Dst: g.flood.victim, Type: 8,
		Rest: append([]byte{0x42, 0x42, byte(g.flood.seq >> 8), byte(g.flood.seq)}, g.flood.data[:]...)}
	return g.emitFrame(m.Frame())
}

func (g *mixGen) inside(v6 bool) netip.Addr {
	i := g.r.IntN(g.cfg.Hosts) + 1
	if v6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 14: byte(i >> 8), 15: byte(i)})
	}
	return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
}

func (g *mixGen) outside(v6 bool) netip.Addr {
	if v6 {
		var b [16]byte
		binary.BigEndian.PutUint64(b[0:8], 0x2001_0db8_f000_0000|g.r.Uint64()&0xffff_ffff)
		binary.BigEndian.PutUint64(b[8:16], g.r.Uint64())
		return netip.AddrFrom16(b)
	}
	b := [4]byte{byte(1 + g.r.IntN(222)), byte(g.r.Uint32()), byte(g.r.Uint32()), byte(1 + g.r.IntN(254))}
	if b[0] == 10 || b[0] == 127 {
		b[0]++
	}
	return netip.AddrFrom4(b)
}

// peer returns one of the few outside hosts inside host in pings (its
// usual peers: a handful per host, the same every time).
func (g *mixGen) peer(in netip.Addr, v6 bool) netip.Addr {
	h := in.As16()
	k := uint64(h[14])<<8 | uint64(h[15])
	k = k*0x9e3779b97f4a7c15 + uint64(g.r.IntN(4))*0xbf58476d1ce4e5b9
	k ^= k >> 31
	if v6 {
		var b [16]byte
		binary.BigEndian.PutUint64(b[0:8], 0x2001_0db8_f000_0000|k&0xffff_ffff)
		binary.BigEndian.PutUint64(b[8:16], k*0x94d049bb133111eb)
		return netip.AddrFrom16(b)
	}
	b := [4]byte{byte(1 + k%222), byte(k >> 8), byte(k >> 16), byte(1 + (k>>24)%254)}
	if b[0] == 10 || b[0] == 127 {
		b[0]++
	}
	return netip.AddrFrom4(b)
}

// pair returns (inside, outside) in a random direction.
func (g *mixGen) pair(v6 bool) (src, dst netip.Addr) {
	in, out := g.inside(v6), g.outside(v6)
	if g.r.IntN(2) == 0 {
		return in, out
	}
	return out, in
}

// emit writes one IP packet behind an Ethernet header, VLAN-tagged with
// probability -vlan (the same tag for every frame of one call to frames).
func (g *mixGen) emit(ip []byte, vlan uint16) error {
	if g.n >= g.max {
		return nil
	}
	l := synth.Link{Type: synth.LinkEthernet}
	if vlan != 0 {
		l.VLANs = []uint16{vlan}
	}
	f, err := synth.Encap(l, ip)
	if err != nil {
		return err
	}
	return g.emitFrame(f)
}

// emitFrame writes one frame at the next packet time.
func (g *mixGen) emitFrame(f []byte) error {
	if g.n >= g.max {
		return nil
	}
	t := epoch.Add(time.Duration(g.n) * g.step)
	g.n++
	return g.w.write(t, f)
}

func (g *mixGen) vlan() uint16 {
	if g.r.Float64() < g.cfg.VLAN {
		return uint16(10 + g.r.IntN(20))
	}
	return 0
}

func (g *mixGen) ip(v6 bool, src, dst netip.Addr, proto uint8, payload []byte) []byte {
	if v6 {
		return synth.IPv6(src, dst, nil, proto, payload)
	}
	g.ipID++
	return synth.IPv4(synth.IPv4Header{Src: src, Dst: dst, Proto: proto, ID: g.ipID, DF: proto == 6}, payload)
}

func (g *mixGen) icmp(v6 bool) error {
	vlan := g.vlan()
	proto := uint8(1)
	if v6 {
		proto = 58
	}
	msg := func(src, dst netip.Addr, b []byte) []byte {
		if v6 {
			b = synth.ICMPv6Checksum(src, dst, b)
		}
		return g.ip(v6, src, dst, proto, b)
	}
	x := g.r.Float64()
	switch {
	case x < 0.70 || (!v6 && x >= 0.88): // an echo exchange: request, then its reply
		// An inside host pings a few usual peers (a monitored server, a
		// gateway, a DNS server); an outside host pings an inside one.
		in := g.inside(v6)
		src, dst := in, g.peer(in, v6)
		if g.r.IntN(2) == 0 {
			src, dst = g.outside(v6), in
		}
		size := 56
		if g.r.IntN(10) == 0 {
			size = 1000 + g.r.IntN(400)
		}
		id, seq := uint16(g.r.Uint32()), uint16(g.r.Uint32())
		req, rep := uint8(8), uint8(0)
		if v6 {
			req, rep = 128, 129
		}
		if err := g.emit(msg(src, dst, synth.ICMPEcho(v6, req, id, seq, size)), vlan); err != nil {
			return err
		}
		return g.emit(msg(dst, src, synth.ICMPEcho(v6, rep, id, seq, size)), vlan)
	case x < 0.88: // an error quoting the offending datagram's header and 8 bytes
		src, dst := g.pair(v6)
		typ, code := uint8(3), uint8(3) // port unreachable
		if x >= 0.82 {
			typ, code = 11, 0 // time exceeded in transit
		}
		// The error quotes the datagram its receiver (dst) sent: UDP to a
		// closed port, or a traceroute probe whose TTL ran out.
		qlen := 28
		if v6 {
			typ, code = 1, 4
			if x >= 0.82 {
				typ, code = 3, 0
			}
			qlen = 48
		}
		quote := synth.Quote(dst, src, 17, uint16(32768+g.r.IntN(28000)), 33434+uint16(g.r.IntN(30)), qlen)
		b := append([]byte{typ, code, 0, 0, 0, 0, 0, 0}, quote...)
		if !v6 {
			binary.BigEndian.PutUint16(b[2:4], checksum(b))
		}
		return g.emit(msg(src, dst, b), vlan)
	default: // IPv6 neighbour discovery: solicitation and advertisement
		src, dst := g.inside(true), g.inside(true)
		ns := make([]byte, 32)
		ns[0] = 135
		if err := g.emit(msg(src, dst, ns), vlan); err != nil {
			return err
		}
		na := make([]byte, 32)
		na[0] = 136
		return g.emit(msg(dst, src, na), vlan)
	}
}

func (g *mixGen) tcp(v6 bool) error {
	src, dst := g.pair(v6)
	var n int
	switch x := g.r.Float64(); {
	case x < 0.40:
		n = 0
	case x < 0.85:
		n = 1448
		if v6 {
			n = 1428
		}
	default:
		n = 100 + g.r.IntN(900)
	}
	seg := make([]byte, 32+n) // 20-byte header + 12 bytes of timestamp option
	binary.BigEndian.PutUint16(seg[0:2], uint16(1024+g.r.IntN(60000)))
	binary.BigEndian.PutUint16(seg[2:4], 443)
	seg[12] = 8 << 4
	seg[13] = 0x10 // ACK
	if n > 0 {
		seg[13] |= 0x08 // PSH
	}
	return g.emit(g.ip(v6, src, dst, 6, seg), g.vlan())
}

func (g *mixGen) udp(v6 bool) error {
	src, dst := g.pair(v6)
	if g.r.Float64() < g.cfg.Frag {
		return g.fragments(v6, src, dst)
	}
	n := 40 + g.r.IntN(260) // DNS
	port := uint16(53)
	if g.r.IntN(2) == 0 {
		n, port = 1200+g.r.IntN(150), 443 // QUIC
	}
	d := make([]byte, 8+n)
	binary.BigEndian.PutUint16(d[0:2], uint16(1024+g.r.IntN(60000)))
	binary.BigEndian.PutUint16(d[2:4], port)
	binary.BigEndian.PutUint16(d[4:6], uint16(8+n))
	return g.emit(g.ip(v6, src, dst, 17, d), g.vlan())
}

// fragments sends one 2,960-byte UDP datagram as a complete fragment train
// (1,480 data bytes a fragment over IPv4, 1,232 over IPv6), in order.
func (g *mixGen) fragments(v6 bool, src, dst netip.Addr) error {
	g.fragID++
	d := synth.Datagram{Src: src, Dst: dst, ID: g.fragID, Proto: 17, Payload: make([]byte, 2960)}
	binary.BigEndian.PutUint16(d.Payload[0:2], 5000)
	binary.BigEndian.PutUint16(d.Payload[2:4], 5001)
	binary.BigEndian.PutUint16(d.Payload[4:6], 2960)
	size := 1480
	if v6 {
		size = 1232
	}
	vlan := g.vlan()
	for _, pc := range synth.Split(len(d.Payload), size) {
		ip, err := d.Packet(pc)
		if err != nil {
			return err
		}
		if err := g.emit(ip, vlan); err != nil {
			return err
		}
	}
	return nil
}
