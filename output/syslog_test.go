package output

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
	"github.com/sirupsen/logrus"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/output/syslogtest"
)

var syslogEpoch = time.Date(2026, 11, 27, 10, 0, 0, 120000, time.UTC)

// syslogEvent is a flood start event whose packet count is seq, so that
// order and duplicates can be read off what the collector got.
func syslogEvent(seq int) *detector.Event {
	t := syslogEpoch.Add(time.Duration(seq) * time.Millisecond)
	return &detector.Event{
		Time: t,
		Rule: detector.RuleInfo{Name: "icmp_flood", SignatureID: 9000001, Rev: 1,
			Signature: "ICMP echo flood", Category: "Attempted Denial of Service", Severity: 2},
		Phase:  detector.PhaseStart,
		Target: netip.MustParseAddr("192.0.2.5"),
		Src:    netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("192.0.2.5"),
		Proto: detector.ProtoICMPv4, HasICMP: true, ICMPType: 8,
		Source:  netip.MustParseAddr("198.51.100.7"),
		Started: t, LastSeen: t,
		Packets: uint64(seq), Bytes: uint64(seq) * 84,
		PPS: 5000, BPS: 3.36e6, PeakPPS: 5000, PeakBPS: 3.36e6, Window: time.Second,
		Threshold: 1000, Sources: 1,
	}
}

func testSyslogConfig() SyslogConfig {
	c := DefaultSyslogConfig()
	c.Hostname = "sensor1.example.org"
	c.ReconnectMin = 20 * time.Millisecond
	c.ReconnectMax = 100 * time.Millisecond
	return c
}

func closeSyslog(t *testing.T, s *Syslog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// bodySeq reads the sequence number (packets) back from an EVE body.
func bodySeq(t *testing.T, msg string) int {
	t.Helper()
	var ev struct {
		Alert struct {
			Context struct {
				Attack struct {
					Packets int `json:"packets"`
				} `json:"attack"`
			} `json:"context"`
		} `json:"alert"`
	}
	if err := json.Unmarshal([]byte(msg), &ev); err != nil {
		t.Fatalf("body is not JSON: %v: %q", err, msg)
	}
	return ev.Alert.Context.Attack.Packets
}

func TestSyslogConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*SyslogConfig)
		want string
	}{
		{"format", func(c *SyslogConfig) { c.Format = "rfc5425" }, "syslog.format"},
		{"body", func(c *SyslogConfig) { c.Body = "leef" }, "syslog.body"},
		{"facility", func(c *SyslogConfig) { c.Facility = "local8" }, "syslog.facility"},
		{"app name space", func(c *SyslogConfig) { c.AppName = "icmp ids" }, "syslog.app_name"},
		{"app name long", func(c *SyslogConfig) { c.AppName = strings.Repeat("a", 49) }, "syslog.app_name"},
		{"3164 tag", func(c *SyslogConfig) { c.Format = "rfc3164"; c.AppName = "icmpids:x" }, "syslog.app_name"},
		{"hostname", func(c *SyslogConfig) { c.Hostname = "a b" }, "syslog.hostname"},
		{"severity", func(c *SyslogConfig) { c.Severity = map[string]string{"smurf": "loud"} }, "syslog.severity.smurf"},
		{"cert without key", func(c *SyslogConfig) { c.TLS.CertFile = "c.pem" }, "syslog.tls.cert_file"},
		{"queue", func(c *SyslogConfig) { c.QueueSize = 0 }, "syslog.queue_size"},
		{"backoff", func(c *SyslogConfig) { c.ReconnectMax = time.Millisecond }, "syslog.reconnect_max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultSyslogConfig()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if err := DefaultSyslogConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

func TestParseSyslogURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"udp://collector", "udp://collector:514", ""},
		{"tcp://10.0.0.1", "tcp://10.0.0.1:601", ""},
		{"tls://siem.example.org", "tls://siem.example.org:6514", ""},
		{"tcp://[2001:db8::1]:1514", "tcp://[2001:db8::1]:1514", ""},
		{"http://x:514", "", "scheme"},
		{"tcp://:514", "", "no host"},
		{"tcp://x:70000", "", "port"},
		{"tcp://x:514/path", "", "only"},
		{"collector:514", "", "scheme"},
	} {
		got, err := ParseSyslogURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("%s: got %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

// TestSyslogFraming reads what the sink sends over TCP with go-syslog's
// octet-counting parser: every frame parses as RFC 5424 with our fields.
func TestSyslogFraming(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *rfc5424.SyslogMessage, 100)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		p := octetcounting.NewParser(gosyslog.WithBestEffort(), gosyslog.WithMaxMessageLength(1<<16),
			gosyslog.WithListener(func(r *gosyslog.Result) {
				if r.Error != nil {
					t.Errorf("parse error: %v", r.Error)
					return
				}
				got <- r.Message.(*rfc5424.SyslogMessage)
			}))
		p.Parse(c)
	}()
	s, err := NewSyslog("tcp://"+l.Addr().String(), testSyslogConfig(), SyslogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := syslogEvent(7)
	ev.Extra = map[string]any{"note": `a "quoted" ] \ value`}
	s.Emit(ev)
	s.Emit(syslogEvent(8))
	closeSyslog(t, s)
	for want := 7; want <= 8; want++ {
		select {
		case m := <-got:
			if *m.Appname != "icmpids" || *m.MsgID != "icmp_flood" || *m.Hostname != "sensor1.example.org" {
				t.Errorf("header: app %q msgid %q host %q", *m.Appname, *m.MsgID, *m.Hostname)
			}
			if *m.Facility != 21 || *m.Severity != 4 {
				t.Errorf("facility %d severity %d, want local5 (21), warning (4)", *m.Facility, *m.Severity)
			}
			if !m.Timestamp.Equal(syslogEvent(want).Time) {
				t.Errorf("timestamp %v, want the packet time %v", m.Timestamp, syslogEvent(want).Time)
			}
			sd := (*m.StructuredData)[SyslogSDID]
			wantSD := map[string]string{"rule": "icmp_flood", "phase": "start", "target": "192.0.2.5",
				"packets": strconv.Itoa(want), "pps": "5000.0"}
			if fmt.Sprint(sd) != fmt.Sprint(wantSD) {
				t.Errorf("SD %v, want %v", sd, wantSD)
			}
			if seq := bodySeq(t, *m.Message); seq != want {
				t.Errorf("body packets %d, want %d", seq, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d not received", want)
		}
	}
}

// TestSyslogRsyslog sends to a real rsyslogd over each transport and
// checks what rsyslog parsed: version, app-name, msgid, procid, hostname,
// facility, severity, structured data, and the JSON (or CEF) body.
func TestSyslogRsyslog(t *testing.T) {
	r := syslogtest.Start(t)
	for _, tc := range []struct {
		input, format, body, framing string
	}{
		{"udp", "rfc5424", "eve", "auto"},
		{"tcp", "rfc5424", "eve", "auto"},
		{"tls", "rfc5424", "eve", "auto"},
		{"udp", "rfc3164", "eve", "auto"},
		{"tcp", "rfc3164", "eve", "auto"}, // newline framing: what Wazuh and syslog-ng expect
		{"tls", "rfc3164", "eve", "auto"},
		{"tcp", "rfc3164", "eve", "octet-counting"},
		{"tcp", "rfc5424", "eve", "non-transparent"},
		{"tls", "rfc3164", "cef", "auto"},
		{"tls", "rfc5424", "cef", "auto"},
	} {
		t.Run(tc.input+"/"+tc.format+"/"+tc.body+"/"+tc.framing, func(t *testing.T) {
			before := len(r.Lines())
			cfg := testSyslogConfig()
			cfg.Format, cfg.Body, cfg.Framing = tc.format, tc.body, tc.framing
			cfg.TLS.CAFile = r.CAFile
			cfg.Severity = map[string]string{"icmp_flood": "err"}
			s, err := NewSyslog(r.URL(tc.input), cfg, SyslogOptions{Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			const n = 20
			for i := 1; i <= n; i++ {
				s.Emit(syslogEvent(i))
			}
			closeSyslog(t, s)
			lines := r.WaitLines(before+n, 5*time.Second)[before:]
			if len(lines) != n {
				t.Fatalf("rsyslog wrote %d messages, want %d\n%s", len(lines), n, r.Log())
			}
			for i, l := range lines {
				if l.Input != tc.input || l.AppName != "icmpids" || l.Facility != "local5" || l.Severity != "err" {
					t.Fatalf("line %d: %+v", i, l)
				}
				if tc.format == "rfc3164" {
					if l.Version != "0" && l.Version != "" || l.Hostname != "sensor1" {
						t.Errorf("RFC 3164 line parsed as %+v", l)
					}
				} else {
					want := fmt.Sprintf(`[icmpids@32473 packets="%d" phase="start" pps="5000.0" rule="icmp_flood" target="192.0.2.5"]`, i+1)
					if l.Version != "1" || l.MsgID != "icmp_flood" || l.Hostname != "sensor1.example.org" || l.SD != want {
						t.Errorf("line %d parsed as %+v\nwant SD %s", i, l, want)
					}
					if !strings.HasPrefix(l.Time, "2026-11-27T10:00:00") {
						t.Errorf("timestamp %q, want the packet time", l.Time)
					}
				}
				if tc.body == "cef" {
					want := fmt.Sprintf("CEF:0|icmpids|icmpids|test|9000001|ICMP echo flood|5|rt=%d src=198.51.100.7 dst=192.0.2.5 proto=ICMP act=allowed cat=Attempted Denial of Service externalId=%s msg=icmp_flood start on 192.0.2.5: %d packets from 1 sources cs1=icmp_flood cs1Label=rule cs2=start cs2Label=phase cs3=192.0.2.5 cs3Label=target cs4=198.51.100.7 cs4Label=source cn1=%d cn1Label=packets", syslogEvent(i+1).Time.UnixMilli(), appendHex16(nil, AttackID("", syslogEvent(i+1))), i+1, i+1)
					if !strings.HasPrefix(l.Msg, want) {
						t.Errorf("CEF body\n got %s\nwant %s...", l.Msg, want)
					}
					continue
				}
				if seq := bodySeq(t, l.Msg); seq != i+1 {
					t.Errorf("line %d carries event %d: out of order", i, seq)
				}
			}
		})
	}
}

// TestSyslogCollectorOutage kills rsyslogd (SIGKILL, like a crash) while
// alerts keep coming, then starts it again: every event that fitted in the
// queue arrives, in order, none twice, and the overflow is counted exactly
// and logged.
func TestSyslogCollectorOutage(t *testing.T) {
	for _, input := range []string{"tcp", "tls"} {
		t.Run(input, func(t *testing.T) {
			r := syslogtest.Start(t)
			cfg := testSyslogConfig()
			cfg.QueueSize = 20
			cfg.TLS.CAFile = r.CAFile
			l, logw := syslogTestLog()
			s, err := NewSyslog(r.URL(input), cfg, SyslogOptions{Log: l})
			if err != nil {
				t.Fatal(err)
			}
			seq := 0
			emit := func(n int) {
				for range n {
					seq++
					s.Emit(syslogEvent(seq))
				}
			}
			emit(10)
			if got := r.WaitLines(10, 5*time.Second); len(got) != 10 {
				t.Fatalf("before the outage: %d of 10 arrived", len(got))
			}
			r.Kill()
			emit(50) // 20 fit in the queue, 30 overflow
			time.Sleep(150 * time.Millisecond)
			if st := s.Stats(); st.Dropped != 30 || st.Queued != 20 || st.Connected {
				t.Fatalf("during the outage: %+v, want 30 dropped, 20 queued, not connected", st)
			}
			r.Restart()
			if got := r.WaitLines(30, 10*time.Second); len(got) != 30 {
				t.Fatalf("after the restart: %d of 30 arrived", len(got))
			}
			emit(5)
			lines := r.WaitLines(35, 10*time.Second)
			closeSyslog(t, s)
			var got []int
			for _, l := range lines {
				got = append(got, bodySeq(t, l.Msg))
			}
			var want []int
			for i := 1; i <= 30; i++ {
				want = append(want, i)
			}
			for i := 61; i <= 65; i++ {
				want = append(want, i)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("arrived %v\nwant    %v", got, want)
			}
			st := s.Stats()
			if st.Sent != 35 || st.Dropped != 30 || st.Undelivered != 0 || st.Reconnects != 1 {
				t.Errorf("stats %+v, want 35 sent, 30 dropped, 1 reconnect", st)
			}
			if !strings.Contains(logw.String(), "dropped_total=30") {
				t.Errorf("no log line with the dropped count:\n%s", logw)
			}
		})
	}
}

// TestSyslogCloseDeadline: with the collector down, Close gives up at its
// deadline and says how many alerts it could not deliver.
func TestSyslogCloseDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens there now
	s, err := NewSyslog("tcp://"+addr, testSyslogConfig(), SyslogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err == nil {
		t.Error("Check: no error with the collector down")
	}
	for i := 1; i <= 5; i++ {
		s.Emit(syslogEvent(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "5 alerts not delivered") {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v past a 200ms deadline", d)
	}
	if st := s.Stats(); st.Undelivered != 5 || st.Sent != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSyslogBlockingMode: a replay's sink waits for room instead of
// dropping, and gives up (counting) after block_timeout of no progress.
func TestSyslogBlockingMode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testSyslogConfig()
	cfg.QueueSize = 2
	cfg.BlockTimeout = 300 * time.Millisecond
	s, err := NewSyslog("tcp://"+l.Addr().String(), cfg, SyslogOptions{Block: true})
	if err != nil {
		t.Fatal(err)
	}
	// The collector accepts but reads nothing for a while, then everything.
	var received []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		time.Sleep(100 * time.Millisecond)
		br := bufio.NewReader(c)
		for {
			var n int
			if _, err := fmt.Fscanf(br, "%d ", &n); err != nil {
				return
			}
			msg := make([]byte, n)
			if _, err := io.ReadFull(br, msg); err != nil {
				return
			}
			m := string(msg)
			received = append(received, bodySeq(t, m[strings.IndexByte(m, '{'):]))
		}
	}()
	for i := 1; i <= 200; i++ {
		s.Emit(syslogEvent(i))
	}
	closeSyslog(t, s)
	<-done
	if st := s.Stats(); st.Dropped != 0 || st.Sent != 200 || len(received) != 200 {
		t.Fatalf("blocking mode: %+v, %d received", st, len(received))
	}
	for i, seq := range received {
		if seq != i+1 {
			t.Fatalf("event %d arrived as %d-th", seq, i+1)
		}
	}

	// A collector that is down: Emit waits block_timeout once, then drops.
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l2.Addr().String()
	l2.Close()
	s2, err := NewSyslog("tcp://"+addr, cfg, SyslogOptions{Block: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 1; i <= 10; i++ {
		s2.Emit(syslogEvent(i))
	}
	if d := time.Since(start); d < cfg.BlockTimeout || d > 3*cfg.BlockTimeout {
		t.Errorf("10 emits to a dead collector took %v, want about one block_timeout (%v)", d, cfg.BlockTimeout)
	}
	if st := s2.Stats(); st.Dropped != 8 || st.Queued != 2 {
		t.Errorf("after the stall: %+v, want 8 dropped (1 timed out + 7 at once), 2 queued", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	s2.Close(ctx)
}

// lockedBuffer is a log destination safe for the sender goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func syslogTestLog() (*logrus.Entry, *lockedBuffer) {
	w := &lockedBuffer{}
	l := logrus.New()
	l.Out = w
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l), w
}

// TestSyslogFraming: on TCP, RFC 3164 goes newline-delimited by default
// (Wazuh and syslog-ng's network() split on newlines), RFC 5424 octet
// counted; syslog.framing overrides either.
func TestSyslogTCPFramingByFormat(t *testing.T) {
	for _, tc := range []struct {
		format, framing string
		counted         bool
	}{
		{"rfc3164", "auto", false},
		{"rfc5424", "auto", true},
		{"rfc3164", "octet-counting", true},
		{"rfc5424", "non-transparent", false},
	} {
		t.Run(tc.format+"/"+tc.framing, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			got := make(chan []byte, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					got <- nil
					return
				}
				defer c.Close()
				b, _ := io.ReadAll(c)
				got <- b
			}()
			cfg := testSyslogConfig()
			cfg.Format, cfg.Framing = tc.format, tc.framing
			s, err := NewSyslog("tcp://"+l.Addr().String(), cfg, SyslogOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				s.Emit(syslogEvent(i))
			}
			closeSyslog(t, s)
			b := <-got
			lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if tc.counted {
				if !regexp.MustCompile(`^\d+ <`).Match(b) || len(lines) != 1 {
					t.Errorf("want octet counting, got %q", b)
				}
				return
			}
			if len(lines) != 3 || !strings.HasSuffix(string(b), "\n") || !strings.HasPrefix(lines[1], "<") {
				t.Errorf("want 3 newline-terminated messages, got %q", b)
			}
		})
	}
}

// TestSyslogNG sends to a real syslog-ng, the other collector SIEM
// pipelines sit behind: RFC 3164 to its network() source and RFC 5424 to
// its syslog() source, each over TCP, UDP and TLS, with the default framing.
// syslog-ng must read the host, the program and (5424) the MSGID from our
// header, and the whole EVE body as the message, in order.
func TestSyslogNG(t *testing.T) {
	ng := syslogtest.StartSyslogNG(t)
	for _, tc := range []struct{ format, transport string }{
		{"3164", "tcp"}, {"3164", "udp"}, {"3164", "tls"},
		{"5424", "tcp"}, {"5424", "udp"}, {"5424", "tls"},
	} {
		t.Run(tc.format+"/"+tc.transport, func(t *testing.T) {
			before := len(ng.Lines())
			cfg := testSyslogConfig()
			cfg.Format = "rfc" + tc.format
			cfg.TLS.CAFile = ng.CAFile
			s, err := NewSyslog(ng.URL(tc.format, tc.transport), cfg, SyslogOptions{Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			const n = 20
			for i := 1; i <= n; i++ {
				s.Emit(syslogEvent(i))
			}
			closeSyslog(t, s)
			lines := ng.WaitLines(before+n, 5*time.Second)[before:]
			if len(lines) != n {
				t.Fatalf("syslog-ng wrote %d messages, want %d: %+v", len(lines), n, lines)
			}
			wantHost, wantMsgID := "sensor1.example.org", "icmp_flood"
			if tc.format == "3164" {
				wantHost, wantMsgID = "sensor1", ""
			}
			for i, l := range lines {
				if l.Source != "s"+tc.format+tc.transport || l.Host != wantHost || l.Program != "icmpids" || l.MsgID != wantMsgID {
					t.Fatalf("line %d parsed as source %q host %q program %q msgid %q, want s%s%s %q icmpids %q",
						i, l.Source, l.Host, l.Program, l.MsgID, tc.format, tc.transport, wantHost, wantMsgID)
				}
				if seq := bodySeq(t, l.Msg); seq != i+1 {
					t.Errorf("line %d carries event %d: out of order", i, seq)
				}
			}
		})
	}
}
