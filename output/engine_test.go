package output

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// TestEngineEventsValidate runs real floods through the engine and the
// icmp_flood rule and checks that every event it produces makes a valid EVE
// line and a text line: IPv4 from one source (exact count), IPv6 from
// spoofed sources (estimated count).
func TestEngineEventsValidate(t *testing.T) {
	var eveBuf, textBuf bytes.Buffer
	eve := NewQueue(NewEVE(&eveBuf), 1024, nil)
	sink := Multi{eve, NewText(&textBuf)}
	e, err := detector.New(detector.DefaultConfig(), sink, rules.NewFlood(rules.DefaultFloodConfig()))
	if err != nil {
		t.Fatal(err)
	}
	v4, v6 := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("2001:db8:1::1")
	attacker := netip.MustParseAddr("198.51.100.7")
	var p detector.Packet
	const n = 40000 // 20 s at 2,000 packets/s per target
	for i := range n {
		at := t0.Add(time.Duration(i) * 500 * time.Microsecond)
		p = detector.Packet{Time: at, WireLen: 98, Src: attacker, Dst: v4, Proto: detector.ProtoICMPv4,
			HasICMP: true, ICMPType: detector.ICMPv4EchoRequest}
		e.HandlePacket(&p)
		src := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xba, 0xd0, 12: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		p = detector.Packet{Time: at.Add(100 * time.Microsecond), WireLen: 118, IPv6: true, Src: src, Dst: v6,
			Proto: detector.ProtoICMPv6, HasICMP: true, ICMPType: detector.ICMPv6EchoRequest}
		e.HandlePacket(&p)
	}
	e.Close(detector.EndInputEnd)
	if err := sink.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}

	lines := validateLines(t, eveBuf.Bytes())
	if tl := bytes.Count(textBuf.Bytes(), []byte("\n")); tl != lines || lines < 4 {
		t.Fatalf("%d EVE lines, %d text lines: want the same, at least a start and an end per target", lines, tl)
	}
	phases := map[string][]string{}
	for _, line := range bytes.Split(bytes.TrimSpace(eveBuf.Bytes()), []byte("\n")) {
		var ev struct {
			Alert struct {
				Context struct {
					Attack struct {
						Target, Phase    string
						SourcesEstimated bool `json:"sources_estimated"`
					}
				}
			}
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatal(err)
		}
		a := ev.Alert.Context.Attack
		phases[a.Target] = append(phases[a.Target], a.Phase)
		if a.Target == v6.String() && a.Phase == "end" && !a.SourcesEstimated {
			t.Errorf("spoofed IPv6 flood: sources not marked estimated: %s", line)
		}
	}
	for _, tgt := range []netip.Addr{v4, v6} {
		ph := phases[tgt.String()]
		if len(ph) < 2 || ph[0] != "start" || ph[len(ph)-1] != "end" {
			t.Errorf("%v: phases %v, want start ... end", tgt, ph)
		}
	}
	t.Logf("%d events; first text line: %s", lines, bytes.SplitN(textBuf.Bytes(), []byte("\n"), 2)[0])
}
