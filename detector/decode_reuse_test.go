package detector

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector/frag"
	"github.com/icmpids/icmpids/detector/sketch"
)

// seenRule records what the engine hands its Observe of each packet.
type seenRule struct {
	class    []Class
	frag     []frag.Verdict
	srcHash  []uint64
	ndOption []uint8
}

func (r *seenRule) Info() RuleInfo                   { return RuleInfo{Name: "seen", SignatureID: 1, Severity: 3} }
func (r *seenRule) Tick(now time.Time, rep Reporter) {}
func (r *seenRule) Observe(p *Packet, rep Reporter) {
	r.class = append(r.class, p.Class)
	r.frag = append(r.frag, p.Frag)
	r.srcHash = append(r.srcHash, p.SrcHash())
	r.ndOption = append(r.ndOption, p.NDOptions().Options)
}

// TestEnginePacketStartsAfresh: the fields the engine and the rules fill
// (Class, Frag, the cached source hash, the ND options) start zero for
// every packet, whether Decode filled it (HandleFrame) or a caller hands
// in a Packet it reuses (HandlePacket) with a previous packet's values
// still in them. The engine's per-packet path no longer clears them
// itself (Decode does): HandlePacket must.
func TestEnginePacketStartsAfresh(t *testing.T) {
	r := &seenRule{}
	e, err := New(DefaultConfig(), SinkFunc(func(*Event) {}), r)
	if err != nil {
		t.Fatal(err)
	}
	src, dst := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("10.0.0.5")
	stale := func(p *Packet) {
		p.Class = Class{Owner: "smurf", Flooded: true, Solicited: true}
		p.Frag = frag.Verdict{Tracked: true, Duplicate: true}
		p.srcHash, p.srcHashed = 12345, true
		p.nd.Options, p.ndDone = 7, true
	}
	// A caller's Packet, reused: the second time with a new source and
	// the previous packet's engine-filled values left in it.
	p := Packet{Time: decodeEpoch, IPv6: false, Src: src, Dst: dst, TTL: 64, Proto: ProtoICMPv4, HasICMP: true, ICMPType: 8}
	e.HandlePacket(&p)
	stale(&p)
	p.Src, p.Time = netip.MustParseAddr("198.51.100.8"), decodeEpoch.Add(time.Millisecond)
	e.HandlePacket(&p)
	// A frame after a packet whose values are stale in the engine's own
	// Packet.
	stale(&e.pkt)
	frame, err := synth.EchoFrame(synth.Echo{Src: src, Dst: dst, ID: 1, Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.HandleFrame(LinkEthernet, frame, decodeEpoch.Add(2*time.Millisecond), len(frame))
	if len(r.class) != 3 {
		t.Fatalf("the rule saw %d packets, want 3", len(r.class))
	}
	wantHash := []uint64{sketch.HashAddr(src), sketch.HashAddr(netip.MustParseAddr("198.51.100.8")), sketch.HashAddr(src)}
	for i := range r.class {
		if r.class[i] != (Class{}) || r.frag[i] != (frag.Verdict{}) || r.srcHash[i] != wantHash[i] || r.ndOption[i] != 0 {
			t.Errorf("packet %d: class %+v, frag %+v, source hash %d, ND options %d; want all zero and hash %d",
				i, r.class[i], r.frag[i], r.srcHash[i], r.ndOption[i], wantHash[i])
		}
	}
}
