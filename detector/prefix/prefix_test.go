package prefix

import (
	"net/netip"
	"testing"
)

func TestLookupMostSpecific(t *testing.T) {
	var tb Table[string]
	for _, n := range []struct{ net, name string }{
		{"10.0.0.0/8", "ten"}, {"10.1.0.0/16", "ten-one"}, {"10.1.2.3/32", "host"},
		{"2001:db8::/32", "doc6"}, {"2001:db8:1::/48", "doc6-1"}, {"0.0.0.0/0", "all4"},
	} {
		p, err := Parse(n.net)
		if err != nil {
			t.Fatal(err)
		}
		tb.Add(p, n.name)
	}
	for _, tc := range []struct {
		addr, want string
		ok         bool
	}{
		{"10.1.2.3", "host", true},
		{"10.1.2.4", "ten-one", true},
		{"10.2.0.1", "ten", true},
		{"192.0.2.1", "all4", true},
		{"::ffff:10.1.2.3", "host", true}, // IPv4-mapped: as IPv4
		{"2001:db8:1::5", "doc6-1", true},
		{"2001:db8:2::5", "doc6", true},
		{"2001:db9::1", "", false}, // no IPv6 default
		{"fe80::1%eth0", "", false},
	} {
		got, ok := tb.Lookup(netip.MustParseAddr(tc.addr))
		if got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%s) = %q, %v; want %q, %v", tc.addr, got, ok, tc.want, tc.ok)
		}
	}
	var empty Table[int]
	if _, ok := empty.Lookup(netip.MustParseAddr("10.0.0.1")); ok {
		t.Error("the empty table found something")
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8": "10.0.0.0/8", "192.0.2.7": "192.0.2.7/32", "2001:db8::1": "2001:db8::1/128",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
	} {
		p, err := Parse(in)
		if err != nil || p.String() != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "host.example", "10.0.0.0/-1"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

// TestLookupAllocs: a lookup allocates nothing (it runs per packet).
func TestLookupAllocs(t *testing.T) {
	var tb Table[int]
	for i := 0; i < 1000; i++ {
		tb.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), i)
	}
	tb.Add(netip.MustParsePrefix("2001:db8::/32"), -1)
	a4, a6 := netip.MustParseAddr("10.3.200.9"), netip.MustParseAddr("2001:db8::9")
	if n := testing.AllocsPerRun(1000, func() { tb.Lookup(a4); tb.Lookup(a6) }); n != 0 {
		t.Errorf("Lookup allocates %v per run", n)
	}
}

func BenchmarkLookup(b *testing.B) {
	var tb Table[int]
	for i := 0; i < 10000; i++ {
		tb.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), i)
	}
	tb.Add(netip.MustParsePrefix("10.0.0.0/8"), 0)
	a := netip.MustParseAddr("10.3.200.9")
	b.ReportAllocs()
	for b.Loop() {
		tb.Lookup(a)
	}
}
