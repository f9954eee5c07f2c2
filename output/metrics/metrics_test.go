package metrics

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/internal/testenv"
	"github.com/icmpids/icmpids/output"
	"github.com/icmpids/icmpids/rules"
)

var epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// runEngine feeds a real engine with the flood rule an echo flood and a
// few benign pings, with m's event counter and type counter attached, and
// publishes its figures.
func runEngine(t *testing.T, m *Metrics) {
	t.Helper()
	var events []*detector.Event
	sink := output.Multi{m.Events(), detector.SinkFunc(func(ev *detector.Event) { events = append(events, ev) })}
	eng, err := detector.New(detector.DefaultConfig(), sink, rules.NewFlood(rules.DefaultFloodConfig()), m.Observer())
	if err != nil {
		t.Fatal(err)
	}
	flood, err := synth.Flood{Target: netip.MustParseAddr("192.0.2.5"), Source: netip.MustParseAddr("198.51.100.7"),
		Start: epoch, Rate: 5000, Count: 5000}.Frames()
	if err != nil {
		t.Fatal(err)
	}
	pings, err := synth.Pings(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), epoch, 100*time.Millisecond, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range synth.Merge(flood, pings) {
		eng.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	eng.HandleFrame(detector.LinkEthernet, []byte{1, 2, 3}, epoch.Add(2*time.Second), 3) // truncated
	eng.Close(detector.EndInputEnd)
	if len(events) != 2 {
		t.Fatalf("engine emitted %d events, want start and end", len(events))
	}
	m.Publish(&Snapshot{Time: time.Now(), Engine: eng.Stats(), Types: m.Observer().Counts(),
		Capture: &output.CaptureStats{Packets: 5011, Drops: 3, IfDrops: 1}})
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// TestMetricsEndpoint serves a real engine's figures on 127.0.0.1 and checks
// the exposition with Prometheus's own promtool.
func TestMetricsEndpoint(t *testing.T) {
	sinks := func() []output.SinkStats {
		return []output.SinkStats{
			{Name: "eve_file", Queued: 0, Capacity: 10000, Sent: 2},
			{Name: "syslog", Queued: 3, Capacity: 10000, Sent: 2, Dropped: 7, Network: true, Connected: true, Reconnects: 1},
		}
	}
	m := New("test", rules.Names(), sinks)
	runEngine(t, m)
	srv, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	body := scrape(t, "http://"+srv.Addr()+"/metrics")
	for _, want := range []string{
		`icmpids_icmp_packets_total{proto="icmp",type="8"} 5000`,
		`icmpids_icmp_packets_total{proto="icmpv6",type="128"} 10`,
		`icmpids_attack_events_total{phase="start",rule="icmp_flood"} 1`,
		`icmpids_attack_events_total{phase="end",rule="icmp_flood"} 1`,
		`icmpids_attacks_started_total 1`,
		`icmpids_attacks_active 0`,
		`icmpids_decode_total{reason="truncated"} 1`,
		`icmpids_decode_errors_total{reason="truncated"} 1`,
		`icmpids_capture_kernel_drops_total 3`,
		`icmpids_table_capacity{table="icmp_flood.targets"} 65536`,
		`icmpids_output_events_dropped_total{reason="queue_full",sink="syslog"} 7`,
		`icmpids_output_queue_length{sink="syslog"} 3`,
		`icmpids_output_connected{sink="syslog"} 1`,
		`go_goroutines `,
		`process_open_fds `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
	promtool(t, body)
}

// promtool runs `promtool check metrics` on an exposition. Skipped when
// promtool is missing, unless CI is set.
func promtool(t *testing.T, exposition string) {
	t.Helper()
	bin := testenv.Tool(t, "promtool")
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
	if s := strings.TrimSpace(out.String()); s != "" {
		t.Errorf("promtool check metrics says:\n%s", s)
	}
}

// TestMetricsBeforeFirstSnapshot: a scrape before the engine published
// anything is still valid.
func TestMetricsBeforeFirstSnapshot(t *testing.T) {
	m := New("test", rules.Names(), nil)
	srv, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	promtool(t, scrape(t, "http://"+srv.Addr()+"/metrics"))
	if _, err := m.Serve(srv.Addr()); err == nil {
		t.Error("Serve on an address in use: no error")
	}
}

// TestMetricsSeries: build info, every rule's event counters from 0, and
// no "all" series mixed with its own breakdown (sum() must be right).
func TestMetricsSeries(t *testing.T) {
	m := New("9.9.9", rules.Names(), nil)
	srv, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	body := scrape(t, "http://"+srv.Addr()+"/metrics")
	if !strings.Contains(body, `icmpids_build_info{goversion="`) || !strings.Contains(body, `version="9.9.9"} 1`) {
		t.Errorf("no build info:\n%s", body)
	}
	for _, r := range rules.Names() {
		for _, ph := range []string{"start", "update", "end"} {
			if want := `icmpids_attack_events_total{phase="` + ph + `",rule="` + r + `"} 0`; !strings.Contains(body, want) {
				t.Errorf("missing %s", want)
			}
		}
	}
	if strings.Contains(body, `kind="all"`) {
		t.Error(`a kind="all" series is mixed with its breakdown`)
	}
}
