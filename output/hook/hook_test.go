package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/output"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

var floodInfo = detector.RuleInfo{
	Name: "icmp_flood", SignatureID: 9000001, Rev: 1, Signature: "ICMP flood",
	Category: "Attempted Denial of Service", Severity: 2,
}

// event is attack n's event of phase p: target 192.0.2.n.
func event(n int, p detector.Phase) *detector.Event {
	target := netip.AddrFrom4([4]byte{192, 0, 2, byte(n)})
	src := netip.MustParseAddr("198.51.100.7")
	return &detector.Event{
		Time: t0.Add(time.Duration(n) * time.Second), Rule: floodInfo, Phase: p,
		Target: target, Src: src, Dst: target, Proto: detector.ProtoICMPv4, HasICMP: true, ICMPType: 8,
		Source: src, FirstSource: src, Started: t0, LastSeen: t0.Add(time.Second),
		Packets: 5000, Bytes: 420000, PPS: 5000, Window: time.Second, Threshold: 1000, Sources: 1,
	}
}

// testLog returns a logger writing into a buffer that is safe to read
// while hooks log from their goroutines.
func testLog() (*logrus.Entry, *syncBuffer) {
	var buf syncBuffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableColors: true})
	return logrus.NewEntry(l), &buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// closeWithin closes o with a deadline and fails the test past it.
func closeWithin(t *testing.T, o *Output, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	err := o.Close(ctx)
	if took := time.Since(start); took > d+3*time.Second {
		t.Errorf("Close took %v, deadline %v", took, d)
	}
	return err
}

// eveAlert decodes an EVE line and returns its attack context.
func eveAlert(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("not EVE JSON: %v: %q", err, line)
	}
	if m["event_type"] != "alert" {
		t.Fatalf("event_type %v, want alert: %s", m["event_type"], line)
	}
	return m["alert"].(map[string]any)["context"].(map[string]any)["attack"].(map[string]any)
}

// TestStatsName: each output names itself, and Stats carries the name
// (metrics label outputs by it).
func TestStatsName(t *testing.T) {
	e, err := NewExec(ExecConfig{Command: []string{"true"}, Phases: []string{"start"}, Timeout: time.Second, MaxRunning: 1, QueueSize: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWebhook(WebhookConfig{URL: "http://127.0.0.1:1/", Timeout: time.Second}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []*Output{e, w} {
		if st := o.Stats(); st.Name != o.Name() || (st != output.SinkStats{Name: o.Name()}) {
			t.Errorf("fresh %s: stats %+v", o.Name(), st)
		}
		closeWithin(t, o, time.Second)
	}
	if e.Name() != "exec" || w.Name() != "webhook" {
		t.Errorf("names %q, %q", e.Name(), w.Name())
	}
}

func lines(s string, substr string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}
