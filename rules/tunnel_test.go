package rules_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
)

// echoData returns an echo request (or reply) message from src to dst
// carrying data.
func echoData(src, dst netip.Addr, reply bool, id, seqn uint16, data []byte) synth.Msg {
	typ := uint8(8)
	if reply {
		typ = 0
	}
	if !src.Is4() {
		typ = 128
		if reply {
			typ = 129
		}
	}
	rest := make([]byte, 4, 4+len(data))
	binary.BigEndian.PutUint16(rest[0:2], id)
	binary.BigEndian.PutUint16(rest[2:4], seqn)
	return synth.Msg{Src: src, Dst: dst, Type: typ, Rest: append(rest, data...)}
}

// conversation returns n request/reply exchanges at interval; req and rep
// give each one's data.
func conversation(client, server netip.Addr, n int, interval time.Duration, req, rep func(i int) []byte) []synth.Frame {
	var out []synth.Frame
	for i := 0; i < n; i++ {
		at := ruleEpoch.Add(time.Duration(i) * interval)
		out = append(out, echoData(client, server, false, 7, uint16(i), req(i)).At(at))
		if rep != nil {
			out = append(out, echoData(server, client, true, 7, uint16(i), rep(i)).At(at.Add(time.Millisecond)))
		}
	}
	return out
}

func linuxPing(size int) func(int) []byte {
	return func(i int) []byte {
		d := make([]byte, size)
		binary.LittleEndian.PutUint64(d, uint64(1700000000+i))
		binary.LittleEndian.PutUint64(d[8:], uint64(i*1000))
		for j := 16; j < size; j++ {
			d[j] = byte(j)
		}
		return d
	}
}

func fill(size int, b ...byte) func(int) []byte {
	return func(int) []byte {
		d := make([]byte, size)
		for j := range d {
			d[j] = b[j%len(b)]
		}
		return d
	}
}

func random(seed uint64, minLen, maxLen int) func(int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	return func(int) []byte {
		d := make([]byte, minLen+r.IntN(maxLen-minLen+1))
		for j := range d {
			d[j] = byte(r.Uint32())
		}
		return d
	}
}

func TestTunnel(t *testing.T) {
	c, s := addr("192.168.1.10"), addr("203.0.113.50")
	c6, s6 := addr("2001:db8::10"), addr("2001:db8:9::50")
	windows := func(int) []byte { return []byte("abcdefghijklmnopqrstuvwabcdefghi") }
	tests := []struct {
		name   string
		frames []synth.Frame
		signal string // "" = silent
	}{
		// An SSH session in echo payloads at under a packet a second:
		// every reply carries other data than its request.
		{"ssh over icmp, <1 pps", conversation(c, s, 40, 3*time.Second, random(1, 40, 300), random(2, 40, 300)), "reply_mismatch"},
		{"IPv6 tunnel", conversation(c6, s6, 40, 500*time.Millisecond, random(3, 60, 1200), random(4, 60, 1200)), "reply_mismatch"},
		// A file sent out in requests, replies echoing them (icmpsh-like
		// exfiltration through a cooperative echo responder).
		{"exfiltration, replies echo the data", func() []synth.Frame {
			f := random(5, 1000, 1000)
			var data [][]byte
			for i := 0; i < 50; i++ {
				data = append(data, f(i))
			}
			return conversation(c, s, 50, 200*time.Millisecond, func(i int) []byte { return data[i] }, func(i int) []byte { return data[i] })
		}(), "payload_entropy"},
		{"ping", conversation(c, s, 100, time.Second, linuxPing(56), linuxPing(56)), ""},
		{"ping -s 1400", conversation(c, s, 100, time.Second, linuxPing(1400), linuxPing(1400)), ""},
		{"ping -p ff", conversation(c, s, 100, time.Second, fill(56, 0xff), fill(56, 0xff)), ""},
		{"ping -p with a timestamp", conversation(c, s, 100, time.Second, func(i int) []byte {
			d := fill(56, 0xde, 0xad, 0xbe, 0xef)(i)
			binary.LittleEndian.PutUint64(d, uint64(i))
			return d
		}, nil), ""},
		{"Windows ping", conversation(c, s, 100, time.Second, windows, windows), ""},
		{"fping (zeros)", conversation(c, s, 100, time.Second, fill(56, 0), fill(56, 0)), ""},
		{"hping3 -d 120 (X fill)", conversation(c, s, 100, 10*time.Millisecond, fill(120, 'X'), fill(120, 'X')), ""},
		// A tool sending the same random-looking payload every time.
		{"constant payload", conversation(c, s, 100, time.Second, func() func(int) []byte {
			d := random(9, 64, 64)(0)
			return func(int) []byte { return d }
		}(), nil), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			ev := firstStart(evs, "icmp_tunnel")
			if tc.signal == "" {
				if ev != nil {
					t.Fatalf("raised %v", ev.Extra)
				}
				return
			}
			if ev == nil {
				t.Fatalf("silent, want %s", tc.signal)
			}
			if ev.Target != tc.frames[0].Src() || ev.Extra["signal"] != tc.signal || ev.Extra["peer"] != tc.frames[0].Target() {
				t.Errorf("target %v, context %v", ev.Target, ev.Extra)
			}
			if n := len(only(startsOf(evs), "icmp_tunnel")); n != 1 {
				t.Errorf("%d starts, want one attack for the whole session", n)
			}
		})
	}
}
