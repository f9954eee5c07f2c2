package rules_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
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

func linuxPing(size int) func(int) []byte { return timestampedPing(size, 16) }

// timestampedPing is a ping's data: a timestamp of tv bytes (16: Linux's
// two 8-byte words; 8: BSD's tv32, two 4-byte words), then bytes counting
// from tv.
func timestampedPing(size, tv int) func(int) []byte {
	return func(i int) []byte {
		d := make([]byte, size)
		if tv == 16 {
			binary.LittleEndian.PutUint64(d, uint64(1700000000+i))
			binary.LittleEndian.PutUint64(d[8:], uint64(i*1000))
		} else {
			binary.LittleEndian.PutUint32(d, uint32(1700000000+i))
			binary.LittleEndian.PutUint32(d[4:], uint32(i*1000))
		}
		for j := tv; j < size; j++ {
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

// Asymmetric tunnels (issue 26.6): requests that look like pings (8
// bytes; 16 free bytes and Linux's counting tail; 32 free bytes and one
// repeated byte) answered by 1,000-1,400 random bytes. Replies are checked
// against their requests whatever the requests looked like: one attack,
// reply_mismatch. Their benign twins, replies that return the data, stay
// silent.
func TestTunnelAsymmetric(t *testing.T) {
	c, s := addr("192.168.1.10"), addr("203.0.113.50")
	c6, s6 := addr("2001:db8::10"), addr("2001:db8:9::50")
	freeCounting := func(i int) []byte {
		d := random(uint64(i)+100, 16, 16)(i)
		for j := 16; j < 56; j++ {
			d = append(d, byte(j))
		}
		return d
	}
	free32 := func(i int) []byte {
		d := random(uint64(i)+200, 33, 33)(i)
		d[32] = d[16]
		return d
	}
	tests := []struct {
		name       string
		frames     []synth.Frame
		tunnel     bool
		client     netip.Addr
		wantSignal string
	}{
		{"8-byte requests, random replies", conversation(c, s, 60, time.Second, random(10, 8, 8), random(11, 1000, 1400)), true, c, "reply_mismatch"},
		{"16 free bytes + counting tail", conversation(c, s, 60, time.Second, freeCounting, random(12, 1000, 1400)), true, c, "reply_mismatch"},
		{"32 free bytes + one repeated byte", conversation(c, s, 60, time.Second, free32, random(13, 1000, 1400)), true, c, "reply_mismatch"},
		{"IPv6, Linux ping requests, random replies", conversation(c6, s6, 60, time.Second, linuxPing(56), random(14, 1000, 1400)), true, c6, "reply_mismatch"},
		{"ping answered", conversation(c, s, 60, time.Second, linuxPing(56), linuxPing(56)), false, c, ""},
		{"8-byte pings answered", conversation(c, s, 60, time.Second, random(15, 8, 8), random(15, 8, 8)), false, c, ""},
		{"ping -s 1400 answered, IPv6", conversation(c6, s6, 60, 200*time.Millisecond, linuxPing(1400), linuxPing(1400)), false, c6, ""},
		{"Windows ping -l 1000 answered", conversation(c, s, 60, time.Second, fill(1000, []byte("abcdefghijklmnopqrstuvw")...), fill(1000, []byte("abcdefghijklmnopqrstuvw")...)), false, c, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			starts := startsOf(evs)
			tunnels := only(starts, "icmp_tunnel")
			if !tc.tunnel {
				if len(starts) != 0 {
					t.Fatalf("raised %v", starts)
				}
				return
			}
			if !equal(tunnels, []string{"icmp_tunnel " + tc.client.String()}) || len(starts) != 1 {
				t.Fatalf("starts %v, want one icmp_tunnel of %v", starts, tc.client)
			}
			if ev := firstStart(evs, "icmp_tunnel"); ev.Extra["signal"] != tc.wantSignal {
				t.Errorf("context %v", ev.Extra)
			}
		})
	}
}

// Admission before state (issue 27.2): floods whose packets carry data no
// ping sends, from a new spoofed pair per packet or with one constant
// payload, leave the pair table empty (a cell of the sketch each), and a
// real tunnel under way keeps its entry and is reported.
func TestTunnelAdmission(t *testing.T) {
	const n = 100000
	payload := random(21, 56, 56)(0)
	tests := []struct {
		name string
		each func(i int, m *synth.Msg)
	}{
		{"new pair per packet, 1,400 random bytes", func() func(int, *synth.Msg) {
			d := random(22, 1400, 1400)
			return func(i int, m *synth.Msg) {
				m.Src, m.Dst = synth.RandomAddr(uint64(i)*2+1, true), synth.RandomAddr(uint64(i)*2+2, true)
				m.Rest = append(m.Rest[:4:4], d(i)...)
			}
		}()},
		{"new source per packet, the same 56 random bytes", func(i int, m *synth.Msg) {
			m.Src, m.Dst = synth.RandomAddr(uint64(i)+1, true), addr("10.9.0.1")
			m.Rest = append(m.Rest[:4:4], payload...)
		}},
		{"1,399 zeros then 0x01, new pair per packet", func(i int, m *synth.Msg) {
			m.Src, m.Dst = synth.RandomAddr(uint64(i)*2+1, true), synth.RandomAddr(uint64(i)*2+2, true)
			m.Rest = append(append(m.Rest[:4:4], make([]byte, 1399)...), 1)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := synth.Msg{Type: 8, Rest: make([]byte, 4)}
			flood := seq(m, ruleEpoch, 20000, n, tc.each)
			tun := conversation(addr("192.168.1.10"), addr("203.0.113.50"), 60, 100*time.Millisecond, random(23, 40, 300), random(24, 40, 300))
			r := rules.NewTunnel(rules.DefaultTunnelConfig())
			evs := replay(t, synth.Merge(flood, tun), r)
			if got := startsOf(evs); !equal(got, []string{"icmp_tunnel 192.168.1.10"}) {
				t.Errorf("starts %v, want the real tunnel's only", got)
			}
			if st := r.Tables()[0]; st.Len != 1 || st.Evicted != 0 {
				t.Errorf("table %+v: the flood got state", st)
			}
		})
	}
}

// A full pair table evicts the least recently seen pair and counts it.
func TestTunnelTableCapped(t *testing.T) {
	cfg := rules.DefaultTunnelConfig()
	cfg.MaxPairs = 16
	r := rules.NewTunnel(cfg)
	var frames []synth.Frame
	for k := 0; k < 40; k++ {
		frames = append(frames, conversation(nth(addr("192.168.1.0"), 1+k), addr("203.0.113.50"), 4, time.Second, random(uint64(k), 40, 300), random(uint64(k)+99, 40, 300))...)
	}
	replay(t, synth.Merge(frames), r)
	if st := r.Tables()[0]; st.Len != 16 || st.Evicted != 24 {
		t.Errorf("table %+v, want 16 held and 24 evicted", st)
	}
}

// Tunnels, pings and floods of odd data cost no allocation per packet.
func TestTunnelDoesNotAllocate(t *testing.T) {
	frames := synth.Merge(
		conversation(addr("192.168.1.10"), addr("203.0.113.50"), 200, 10*time.Millisecond, random(31, 40, 1400), random(32, 40, 1400)),
		conversation(addr("192.168.1.11"), addr("203.0.113.51"), 200, 10*time.Millisecond, linuxPing(56), linuxPing(56)),
		seq(synth.Msg{Type: 8, Dst: addr("10.9.0.1"), Rest: make([]byte, 60)}, ruleEpoch, 20000, 2000, func(i int, m *synth.Msg) {
			m.Src = synth.RandomAddr(uint64(i)+1, true)
			m.Rest[9] = byte(i)
		}))
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), defaultRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	i := 0
	allocs := testing.AllocsPerRun(50, func() {
		for k := 0; k < 100; k++ {
			f := frames[i%len(frames)]
			e.HandleFrame(detector.LinkEthernet, f.Data, f.Time.Add(time.Duration(i/len(frames))*5*time.Second), len(f.Data))
			i++
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per 100 packets", allocs)
	}
}

// fragConversation is conversation with every request and reply sent as
// first fragments of reqFrag and repFrag data bytes (and the rest).
func fragConversation(t *testing.T, client, server netip.Addr, n int, interval time.Duration, req, rep func(i int) []byte, reqFrag, repFrag int) []synth.Frame {
	t.Helper()
	var out []synth.Frame
	msg := func(src, dst netip.Addr, reply bool, seqn uint16, data []byte) []byte {
		m := echoData(src, dst, reply, 7, seqn, data)
		b := append([]byte{m.Type, 0, 0, 0}, m.Rest...)
		return b
	}
	for i := 0; i < n; i++ {
		at := ruleEpoch.Add(time.Duration(i) * interval)
		for k, side := range []struct {
			src, dst netip.Addr
			reply    bool
			data     []byte
			frag     int
		}{{client, server, false, req(i), reqFrag}, {server, client, true, rep(i), repFrag}} {
			m := msg(side.src, side.dst, side.reply, uint16(i), side.data)
			d := synth.Datagram{Src: side.src, Dst: side.dst, ID: uint32(i*2 + k + 1), Payload: m}
			fs, err := d.Frames(synth.Split(len(m), side.frag), at.Add(time.Duration(k)*time.Millisecond), 10*time.Microsecond)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fs...)
		}
	}
	return out
}

// Fragmented tunnels (issue 26.5): every request and reply sent as two
// fragments, 1,000 random bytes each way, 10/s for 60 s. The first
// fragments' data is read like a whole message's, and replies are compared
// with their requests by the first bytes both first fragments hold. The
// benign twins, fragmented pings whose replies come back cut at another
// size (the corpus's ping6: 1,448 + 60 out, 1,288 + 220 back), stay silent.
func TestTunnelFragmented(t *testing.T) {
	c, s := addr("192.168.1.10"), addr("203.0.113.50")
	c6, s6 := addr("2001:db8::10"), addr("2001:db8:9::50")
	tests := []struct {
		name   string
		frames []synth.Frame
		client netip.Addr // zero: silent
	}{
		{"IPv4, random both ways, two fragments each", fragConversation(t, c, s, 600, 100*time.Millisecond, random(41, 1000, 1000), random(42, 1000, 1000), 504, 504), c},
		{"IPv6, random both ways", fragConversation(t, c6, s6, 600, 100*time.Millisecond, random(43, 1800, 1800), random(44, 1800, 1800), 1232, 1232), c6},
		{"IPv4, random requests echoed", func() []synth.Frame {
			f := random(45, 1000, 1000)
			var data [][]byte
			for i := 0; i < 600; i++ {
				data = append(data, f(i))
			}
			d := func(i int) []byte { return data[i] }
			return fragConversation(t, c, s, 600, 100*time.Millisecond, d, d, 504, 504)
		}(), c},
		{"ping -s 3000, replies cut at another size", fragConversation(t, c, s, 60, time.Second, linuxPing(3000), linuxPing(3000), 1480, 1232), netip.Addr{}},
		{"ping6 -s 1500, replies cut at another size", fragConversation(t, c6, s6, 60, time.Second, linuxPing(1500), linuxPing(1500), 1448, 1288), netip.Addr{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			starts := startsOf(replay(t, tc.frames, defaultRules(t)...))
			var want []string
			if tc.client.IsValid() {
				want = []string{"icmp_tunnel " + tc.client.String()}
			}
			if !equal(starts, want) {
				t.Errorf("starts %v, want %v", starts, want)
			}
		})
	}
}

// A slow tunnel, one exchange every 70 s, outlives the minute's sweeps of
// the pair table: the sweep rebuilds the bits that spare pairs without
// state a table lookup (Tunnel.held), and a pair kept by the sweep is
// still read — its third reply mismatch, after two sweeps, raises it.
func TestTunnelStateOutlivesSweeps(t *testing.T) {
	c, s := addr("192.168.1.10"), addr("203.0.113.50")
	frames := conversation(c, s, 3, 70*time.Second, random(31, 200, 200), random(32, 200, 200))
	if ev := firstStart(replay(t, frames, defaultRules(t)...), "icmp_tunnel"); ev == nil || ev.Extra["signal"] != "reply_mismatch" {
		t.Fatalf("got %v, want the tunnel raised at its third mismatch", ev)
	}
	// Its benign twin: the same exchanges, replies returning the data.
	same := random(31, 200, 200)
	data := make([][]byte, 3)
	for i := range data {
		data[i] = same(i)
	}
	frames = conversation(c, s, 3, 70*time.Second, func(i int) []byte { return data[i] }, func(i int) []byte { return data[i] })
	if ev := firstStart(replay(t, frames, defaultRules(t)...), "icmp_tunnel"); ev != nil {
		t.Fatalf("answered pings raised %v", ev.Extra)
	}
}

// Replies to ping-pattern requests are checked by the request's slot (its
// timestamp, or all of an 8-byte payload) and the pattern, without a
// print of either (issue 27.3): a reply that keeps the pattern's first
// bytes and carries data after them, or the pattern with other free
// bytes, is a mismatch all the same. Their benign twins, the same
// requests answered with their data (also a whole request answered in
// fragments), stay silent.
func TestTunnelPatternReplies(t *testing.T) {
	c, s := addr("192.168.1.10"), addr("203.0.113.50")
	c6, s6 := addr("2001:db8::10"), addr("2001:db8:9::50")
	bsd := func(size int) func(int) []byte { return timestampedPing(size, 8) }
	windows := fill(1000, []byte("abcdefghijklmnopqrstuvw")...)
	// keep returns req's data with what follows its first k bytes
	// replaced by random data (k < 0: all but the last -k bytes kept and
	// those changed).
	keep := func(req func(int) []byte, k int, seed uint64) func(int) []byte {
		r := random(seed, 2000, 2000)
		return func(i int) []byte {
			d, x := req(i), r(i)
			if k < 0 {
				k = len(d) + k
			}
			copy(d[k:], x)
			return d
		}
	}
	// otherSlot returns req's data with byte j (of the slot of n bytes)
	// changed, j moving through it.
	otherSlot := func(req func(int) []byte, n int) func(int) []byte {
		return func(i int) []byte {
			d := req(i)
			d[i%n] ^= 0x5a
			return d
		}
	}
	// oneByte returns req's data with one byte after the slot changed,
	// its position moving through the data.
	oneByte := func(req func(int) []byte, from int) func(int) []byte {
		return func(i int) []byte {
			d := req(i)
			d[from+i%(len(d)-from)] ^= 0x01
			return d
		}
	}
	tests := []struct {
		name   string
		frames []synth.Frame
		client netip.Addr // zero: silent
	}{
		{"Linux ping -s 1400, replies keep 80 bytes then carry data", conversation(c, s, 60, time.Second, linuxPing(1400), keep(linuxPing(1400), 80, 51)), c},
		{"Linux ping -s 1400, replies carry data in their last 8 bytes", conversation(c, s, 60, time.Second, linuxPing(1400), keep(linuxPing(1400), -8, 52)), c},
		{"Linux ping, replies with another timestamp", conversation(c, s, 60, time.Second, linuxPing(56), otherSlot(linuxPing(56), 16)), c},
		{"Linux ping, replies with one byte of the pattern changed", conversation(c, s, 60, time.Second, linuxPing(56), oneByte(linuxPing(56), 16)), c},
		{"BSD ping, replies with another timestamp", conversation(c, s, 60, time.Second, bsd(56), otherSlot(bsd(56), 8)), c},
		{"BSD ping, replies with one byte of the pattern changed", conversation(c, s, 60, time.Second, bsd(56), oneByte(bsd(56), 8)), c},
		{"counting from 0, replies with one byte changed", conversation(c, s, 60, time.Second, fill(40, counting0(40)...), oneByte(fill(40, counting0(40)...), 0)), c},
		{"Windows ping -l 1000, replies keep 64 bytes then carry data", conversation(c, s, 60, time.Second, windows, keep(windows, 64, 53)), c},
		{"8-byte requests, 8 other bytes back", conversation(c, s, 60, time.Second, random(54, 8, 8), random(55, 8, 8)), c},
		{"IPv6 Linux ping, replies one byte longer", conversation(c6, s6, 60, time.Second, linuxPing(56), linuxPing(57)), c6},
		{"ping -s 1400 whole, fragmented replies keep 80 bytes then carry data", fragConversation(t, c, s, 60, time.Second, linuxPing(1400), keep(linuxPing(1400), 80, 56), 2000, 504), c},
		{"Linux ping answered", conversation(c, s, 60, time.Second, linuxPing(56), linuxPing(56)), netip.Addr{}},
		{"Linux ping -s 1400 answered", conversation(c, s, 60, time.Second, linuxPing(1400), linuxPing(1400)), netip.Addr{}},
		{"BSD ping answered", conversation(c, s, 60, time.Second, bsd(56), bsd(56)), netip.Addr{}},
		{"counting from 0 answered", conversation(c, s, 60, time.Second, fill(40, counting0(40)...), fill(40, counting0(40)...)), netip.Addr{}},
		{"ping -s 1400 whole, answered in fragments", fragConversation(t, c, s, 60, time.Second, linuxPing(1400), linuxPing(1400), 2000, 504), netip.Addr{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			starts := startsOf(evs)
			if !tc.client.IsValid() {
				if len(starts) != 0 {
					t.Fatalf("raised %v", starts)
				}
				return
			}
			if !equal(starts, []string{"icmp_tunnel " + tc.client.String()}) {
				t.Fatalf("starts %v, want one icmp_tunnel of %v", starts, tc.client)
			}
			if ev := firstStart(evs, "icmp_tunnel"); ev.Extra["signal"] != "reply_mismatch" {
				t.Errorf("context %v, want reply_mismatch", ev.Extra)
			}
		})
	}
}

// counting0 is byte i = i, n bytes.
func counting0(n int) []byte {
	d := make([]byte, n)
	for i := range d {
		d[i] = byte(i)
	}
	return d
}
