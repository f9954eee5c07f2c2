package synth

import (
	"net"
	"net/netip"
	"time"

	"github.com/google/gopacket/layers"
)

// Smurf describes a Smurf (ICMP echo reflection) attack: echo requests from
// the victim's (spoofed) address to a broadcast address or multicast
// group, and the echo replies every reflector sends back to the victim.
type Smurf struct {
	// Victim is the spoofed source of the requests and the receiver of the
	// replies; Broadcast the amplifier's broadcast address or group.
	Victim, Broadcast netip.Addr
	// Reflectors answer every request, in order, 10 µs apart.
	Reflectors []netip.Addr
	// Requests and Replies select the halves to emit: the request side is
	// what a sensor on the amplifier's network sees, the reply side what
	// one at the victim's sees.
	Requests, Replies bool
	// Start, Rate (requests/s) and Count set the timing; ID is the echo
	// identifier the attacker chose.
	Start time.Time
	Rate  float64
	Count int
	ID    uint16
}

// Frames generates the attack's frames in time order.
func (s Smurf) Frames() ([]Frame, error) {
	var out []Frame
	step := time.Duration(float64(time.Second) / s.Rate)
	for i := 0; i < s.Count; i++ {
		t := s.Start.Add(time.Duration(i) * step)
		if s.Requests {
			data, err := EchoFrame(Echo{Src: s.Victim, Dst: s.Broadcast, ID: s.ID, Seq: uint16(i), DstMAC: GroupMAC(s.Broadcast)})
			if err != nil {
				return nil, err
			}
			out = append(out, Frame{Time: t, Data: data})
		}
		if !s.Replies {
			continue
		}
		for j, r := range s.Reflectors {
			data, err := EchoFrame(Echo{Src: r, Dst: s.Victim, ID: s.ID, Seq: uint16(i), Reply: true})
			if err != nil {
				return nil, err
			}
			out = append(out, Frame{Time: t.Add(time.Duration(j+1) * 10 * time.Microsecond), Data: data})
		}
	}
	return out, nil
}

// GroupMAC is the Ethernet destination a frame to a carries: the broadcast
// address for an IPv4 broadcast (any address ending in .255 included, as
// a router forwards a directed broadcast onto its LAN), 33:33:xx:xx:xx:xx
// for an IPv6 multicast group, 01:00:5e:... for an IPv4 one, and nil (the
// default unicast address) otherwise.
func GroupMAC(a netip.Addr) net.HardwareAddr {
	switch {
	case a.Is6() && a.IsMulticast():
		b := a.As16()
		return net.HardwareAddr{0x33, 0x33, b[12], b[13], b[14], b[15]}
	case a.Is4() && a.IsMulticast():
		b := a.As4()
		return net.HardwareAddr{0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]}
	case a.Is4() && a.As4()[3] == 255:
		return layers.EthernetBroadcast
	}
	return nil
}

// Hosts returns n consecutive addresses of p starting at its first host
// address (the network address + 1).
func Hosts(p netip.Prefix, n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	a := p.Masked().Addr().Next()
	for i := 0; i < n && p.Contains(a); i++ {
		out = append(out, a)
		a = a.Next()
	}
	return out
}

// Sweep is a monitoring host's ping round: one echo request from src to
// every target, interval apart, each answered 1 ms later. Every target gets
// its own echo identifier (id, id+1, ...) when PerTargetID is set, as nmap
// does; otherwise all share id, as fping does.
type Sweep struct {
	Src         netip.Addr
	Targets     []netip.Addr
	Start       time.Time
	Interval    time.Duration
	ID          uint16
	Seq         uint16
	PerTargetID bool
}

// Frames generates the sweep's requests and replies in time order.
func (s Sweep) Frames() ([]Frame, error) {
	var out []Frame
	var late []Frame // replies not yet due
	for i, dst := range s.Targets {
		t := s.Start.Add(time.Duration(i) * s.Interval)
		for len(late) > 0 && !late[0].Time.After(t) {
			out, late = append(out, late[0]), late[1:]
		}
		id := s.ID
		if s.PerTargetID {
			id += uint16(i)
		}
		req, err := EchoFrame(Echo{Src: s.Src, Dst: dst, ID: id, Seq: s.Seq})
		if err != nil {
			return nil, err
		}
		rep, err := EchoFrame(Echo{Src: dst, Dst: s.Src, ID: id, Seq: s.Seq, Reply: true})
		if err != nil {
			return nil, err
		}
		out = append(out, Frame{Time: t, Data: req})
		late = append(late, Frame{Time: t.Add(time.Millisecond), Data: rep})
	}
	return append(out, late...), nil
}
