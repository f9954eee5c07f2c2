package rules

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/sketch"
)

// TestRedirectKeyedHash: icmp_redirect's tables index addresses by a
// keyed hash, not sketch.HashAddr, which an attacker can compute: 4,096
// IPv6 addresses forged to share one HashAddr (any upper half, the lower
// half chosen to cancel it) would all share one home position of a table
// indexed by it (a probe chain walked on every lookup). Under the keyed
// hash they spread like any other addresses, and two keys hash one
// address differently. (The filters in front of the tables are indexed by
// HashAddr, the packet's SrcHash: forged addresses sharing a filter bit
// only buy the table lookups a set bit leads to, as presence says.)
func TestRedirectKeyedHash(t *testing.T) {
	const n = 4096
	forged := make([]netip.Addr, n)
	var shared uint64
	for i := range forged {
		hi := uint64(0x2001_0db8_0000_0000) | uint64(i)
		lo := sketch.Mix64(hi) ^ 0x1234_5678_9abc_def0
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], hi)
		binary.BigEndian.PutUint64(b[8:], lo)
		forged[i] = netip.AddrFrom16(b)
		h := sketch.HashAddr(forged[i])
		if i > 0 && h != shared {
			t.Fatalf("the forged addresses do not share one HashAddr: the test is wrong")
		}
		shared = h
	}
	k, k2 := newAddrKey(), newAddrKey()
	const slots = 2 * n // a table of n keys: an index of 2n positions
	homes := map[uint64]int{}
	most, same := 0, 0
	for _, a := range forged {
		h := k.hash(a)
		if h != k.hash(a) {
			t.Fatal("one address, two hashes")
		}
		if h == k2.hash(a) {
			same++
		}
		homes[uint64(uint32(h))%slots]++
		most = max(most, homes[uint64(uint32(h))%slots])
	}
	if most > 8 {
		t.Errorf("%d of the forged addresses share one home position of %d", most, slots)
	}
	if same > 0 {
		t.Errorf("%d addresses hash alike under two keys", same)
	}
}

// TestRedirectQuickChecks: what Observe reads of a redirect without the
// general parsers agrees with them: the quoted destination with
// icmpmsg.ParseQuote, the IPv4 gateway checks with netip's.
func TestRedirectQuickChecks(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		msg := make([]byte, r.IntN(40))
		for j := range msg {
			msg[j] = byte(r.Uint32())
		}
		if len(msg) > 8 && r.IntN(2) == 0 {
			msg[8] = 0x40 | byte(r.IntN(16)) // version 4, any header length
		}
		var want netip.Addr
		if q, st := icmpmsg.ParseQuote(false, msg); st == icmpmsg.QuoteOK {
			want = q.Dst
		}
		if got := quotedDst4(msg); got != want {
			t.Fatalf("% x: quotedDst4 %v, ParseQuote %v", msg, got, want)
		}
	}
	for _, s := range []string{"0.0.0.0", "224.0.0.5", "239.255.255.255", "127.0.0.1", "127.255.0.9", "255.255.255.255",
		"10.0.0.2", "223.255.255.255", "240.0.0.1", "128.0.0.1", "126.255.255.255", "255.255.255.254"} {
		gw := netip.MustParseAddr(s)
		want := gw.IsUnspecified() || gw.IsMulticast() || gw.IsLoopback() || gw == netip.AddrFrom4([4]byte{255, 255, 255, 255})
		b := gw.As4()
		if got := badGateway4(binary.BigEndian.Uint32(b[:])); got != want {
			t.Errorf("%s: badGateway4 %v, want %v", s, got, want)
		}
	}
	for i := 0; i < 100000; i++ {
		w := r.Uint32()
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], w)
		gw := netip.AddrFrom4(b)
		want := gw.IsUnspecified() || gw.IsMulticast() || gw.IsLoopback() || w == 0xffffffff
		if got := badGateway4(w); got != want {
			t.Fatalf("%v: badGateway4 %v, want %v", gw, got, want)
		}
	}
}
