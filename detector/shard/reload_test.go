package shard_test

import (
	"fmt"
	"testing"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/shard"
)

// TestSetRulesMidStream: swapping every shard's rules for fresh ones with
// the same settings in the middle of the scenario changes nothing that is
// reported: the open attacks carry on, one start and one end each.
func TestSetRulesMidStream(t *testing.T) {
	frames := scenario(t)
	var want collector
	e, err := detector.New(detector.DefaultConfig(), &want, allRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	e.Close(detector.EndInputEnd)

	var got collector
	s, err := shard.New(shard.Config{Workers: 2}, &got, func(i int, sink detector.Sink) (*detector.Engine, error) {
		return detector.New(detector.DefaultConfig(), sink, allRules(t)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		if i == len(frames)/2 {
			if err := s.SetRules(func(int) ([]detector.Rule, error) { return allRules(t), nil }); err != nil {
				t.Fatal(err)
			}
		}
		s.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	s.Close(detector.EndInputEnd)
	if fmt.Sprint(got.sorted()) != fmt.Sprint(want.sorted()) {
		t.Fatalf("events with a reload\n got %v\nwant %v", got.evs, want.evs)
	}
}
