package rules_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// allRules returns every rule with its defaults, as the sensor wires them.
func allRules(tb testing.TB) []detector.Rule {
	tb.Helper()
	rs, err := rules.Enabled(rules.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

// FuzzEngine feeds a stream of untrusted frames through decode, fragment
// tracking and every rule: the input is cut into frames (2-byte length
// prefixes), each with a time step, alternating link types. Nothing may
// panic, and every event must be well-formed (known rule, valid target,
// phases in order per attack).
//
//	go test -run '^$' -fuzz FuzzEngine -fuzztime 60s ./rules/
func FuzzEngine(f *testing.F) {
	seed := func(frames ...[]byte) []byte {
		var b []byte
		for _, fr := range frames {
			b = binary.BigEndian.AppendUint16(b, uint16(len(fr)))
			b = append(b, fr...)
		}
		return b
	}
	echo, _ := synth.EchoFrame(synth.Echo{Src: victim4, Dst: attacker4})
	reply, _ := synth.EchoFrame(synth.Echo{Src: attacker6, Dst: victim6, Reply: true})
	d, pieces := synth.PingTrain(attacker4, victim4, 7, 65600, 1480)
	train, _ := d.Frames(pieces, epoch, time.Microsecond)
	var trainBytes [][]byte
	for _, fr := range train[:4] {
		trainBytes = append(trainBytes, fr.Data)
	}
	f.Add(seed(echo, reply, echo), uint16(10))
	f.Add(seed(trainBytes...), uint16(1))
	f.Add(seed(train[len(train)-1].Data), uint16(0))
	// What reassembly and decode_anomaly read: a fragmented GRE carrier, a
	// fragmented RA, a frame 5 tunnels deep.
	big, _ := synth.EchoFrame(synth.Echo{Src: attacker4, Dst: victim4, PayloadLen: 1400})
	gre, _ := synth.Wrap(synth.WrapGRE, big)
	carrier, _ := synth.FragmentFrame(gre, 1400, 9)
	ra := synth.Msg{Src: attacker6, Dst: victim6, Type: 134, Rest: synth.RA(1800, 0, synth.LinkAddrOpt(1, synth.MAC(66)))}
	raParts, _ := synth.FragmentFrame(ra.Frame(), 16, 9)
	deep := echo
	for i := 0; i < 5; i++ {
		deep, _ = synth.Wrap(synth.WrapGRE, deep)
	}
	f.Add(seed(append(append(carrier, raParts...), deep, deep)...), uint16(1))
	f.Fuzz(func(t *testing.T, stream []byte, step uint16) {
		open := map[string]bool{}
		e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) {
			if ev.Rule.Name == "" || !ev.Target.IsValid() {
				t.Fatalf("malformed event %+v", ev)
			}
			key := ev.Rule.Name + " " + ev.Target.String()
			switch ev.Phase {
			case detector.PhaseStart:
				if open[key] && !ev.Rule.OneShot {
					t.Fatalf("second start for open attack %s", key)
				}
				open[key] = !ev.Rule.OneShot
			case detector.PhaseUpdate, detector.PhaseEnd:
				if !open[key] {
					t.Fatalf("%s for %s without a start", ev.Phase, key)
				}
				open[key] = ev.Phase == detector.PhaseUpdate
			}
		}), allRules(t)...)
		if err != nil {
			t.Fatal(err)
		}
		links := []detector.LinkType{detector.LinkEthernet, detector.LinkRaw, detector.LinkLinuxSLL2}
		ts := epoch
		for i := 0; len(stream) >= 2; i++ {
			n := int(binary.BigEndian.Uint16(stream))
			stream = stream[2:]
			n = min(n, len(stream))
			frame := stream[:n]
			stream = stream[n:]
			ts = ts.Add(time.Duration(step) * time.Microsecond)
			e.HandleFrame(links[i%len(links)], frame, ts, n)
		}
		e.Close(detector.EndInputEnd)
		for k, o := range open {
			if o {
				t.Fatalf("attack %s left open after Close", k)
			}
		}
	})
}
