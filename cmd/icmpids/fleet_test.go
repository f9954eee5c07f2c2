package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/output/redistest"
)

// TestReplayRedis: a replay with output.redis writes to the list exactly
// the lines stdout's EVE carries; Redis down fails the replay at once
// (exit 1) naming the output; a bad mode is a configuration error (2).
func TestReplayRedis(t *testing.T) {
	r := redistest.Start(t)
	demo := filepath.Join("testdata", "demo.pcap")
	t.Setenv("ICMPIDS_OUTPUT_REDIS_SERVER", r.Socket)
	code, stdout, stderr := icmpids(t, "replay", "--format", "eve", demo)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := r.Do("LRANGE", "icmpids", "0", "-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(stdout); got != want || strings.Count(want, "\n") < 1 {
		t.Errorf("redis list:\n%s\nstdout:\n%s", got, want)
	}
	t.Setenv("ICMPIDS_OUTPUT_REDIS_MODE", "queue")
	if code, _, stderr := icmpids(t, "replay", "--format", "none", demo); code != 2 || !strings.Contains(stderr, "output.redis.mode") {
		t.Errorf("bad mode: exit %d, stderr %q", code, stderr)
	}
	t.Setenv("ICMPIDS_OUTPUT_REDIS_MODE", "rpush")
	r.Kill()
	if code, _, stderr := icmpids(t, "replay", "--format", "none", demo); code != 1 || !strings.Contains(stderr, "output.redis: ") {
		t.Errorf("redis down: exit %d, stderr %q", code, stderr)
	}
}

// startKafka runs an in-process Kafka cluster with the EVE and observation
// topics, one partition each (kcat then reads them in order).
func startKafka(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "icmpids.eve", "icmpids.obs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// dropSeq removes alert.context.event_seq from an EVE line and returns it.
func dropSeq(t *testing.T, line string) (string, uint64) {
	t.Helper()
	i := strings.LastIndex(line, `,"event_seq":`)
	if i < 0 || !strings.HasSuffix(line, "}}}") {
		t.Fatalf("no event_seq at the end of alert.context: %s", line)
	}
	n, err := strconv.ParseUint(line[i+len(`,"event_seq":`):len(line)-3], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return line[:i] + "}}}", n
}

// TestReplayKafka: `replay --kafka` produces the EVE file's events; kcat
// (librdkafka, a second client) reads them back from the topic, each with
// event_seq 1, 2, 3, …; a broker that is down fails the replay (exit 1).
func TestReplayKafka(t *testing.T) {
	needTool(t, "kcat")
	c := startKafka(t)
	addr := c.ListenAddrs()[0]
	demo := filepath.Join("testdata", "demo.pcap")
	eve := filepath.Join(t.TempDir(), "eve.json")
	code, _, stderr := icmpids(t, "replay", "--format", "none", "--eve", eve, "--kafka", addr, demo)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want, err := os.ReadFile(eve)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kcat", "-C", "-b", addr, "-t", "icmpids.eve", "-e", "-q", "-f", "%k %s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v: %s", err, out)
	}
	wantLines := strings.Split(strings.TrimSpace(string(want)), "\n")
	gotLines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(wantLines) < 2 || len(gotLines) != len(wantLines) {
		t.Fatalf("kcat read %d records, the EVE file has %d lines:\n%s", len(gotLines), len(wantLines), out)
	}
	for i, g := range gotLines {
		key, value, _ := strings.Cut(g, " ")
		line, seq := dropSeq(t, value)
		if line != wantLines[i] || seq != uint64(i+1) {
			t.Errorf("record %d (event_seq %d):\n got %s\nwant %s", i, seq, line, wantLines[i])
		}
		var ev struct {
			Alert struct {
				Context struct {
					Attack struct {
						ID string `json:"id"`
					} `json:"attack"`
				} `json:"context"`
			} `json:"alert"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if key != ev.Alert.Context.Attack.ID {
			t.Errorf("record %d key %q, want the attack id %q", i, key, ev.Alert.Context.Attack.ID)
		}
	}
	c.Close()
	if code, _, stderr := icmpids(t, "replay", "--format", "none", "--kafka", addr, demo); code != 1 || !strings.Contains(stderr, "output.kafka: ") {
		t.Errorf("broker down: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := icmpids(t, "replay", "--format", "none", "--kafka", "nohostport", demo); code != 2 || !strings.Contains(stderr, "output.kafka.brokers") {
		t.Errorf("bad broker: exit %d, stderr %q", code, stderr)
	}
}

// carpetQuarters writes a spoofed echo carpet over 10.20.0.0/24, rate
// requests/s for 5 s (host i%256, a new source each packet), as the whole
// capture and as its four host quarters (hosts 0-63, 64-127, …), each
// what one of four gateways sees.
func carpetQuarters(t *testing.T, rate int) (whole string, quarters [4]string, total int) {
	t.Helper()
	dir := t.TempDir()
	var all []synth.Frame
	var q [4][]synth.Frame
	total = 5 * rate
	for i := 0; i < total; i++ {
		host := byte(i % 256)
		d, err := synth.EchoFrame(synth.Echo{Src: synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15|1, true),
			Dst: netip.AddrFrom4([4]byte{10, 20, 0, host}), ID: 7, Seq: uint16(i)})
		if err != nil {
			t.Fatal(err)
		}
		f := synth.Frame{Time: epoch.Add(time.Duration(i) * time.Second / time.Duration(rate)), Data: d}
		all = append(all, f)
		q[host/64] = append(q[host/64], f)
	}
	whole = filepath.Join(dir, "carpet.pcap")
	if err := synth.WritePcapFile(whole, all); err != nil {
		t.Fatal(err)
	}
	for i := range q {
		quarters[i] = filepath.Join(dir, fmt.Sprintf("gw%d.pcap", i))
		if err := synth.WritePcapFile(quarters[i], q[i]); err != nil {
			t.Fatal(err)
		}
	}
	return whole, quarters, total
}

// fleetAlert is the part of a fleet alert the tests read.
type fleetAlert struct {
	Timestamp string `json:"timestamp"`
	Host      string `json:"host"`
	Alert     struct {
		Context struct {
			Attack struct {
				ID        string `json:"id"`
				Rule      string `json:"rule"`
				Phase     string `json:"phase"`
				Target    string `json:"target"`
				Packets   uint64 `json:"packets"`
				Sources   uint64 `json:"sources"`
				Estimated bool   `json:"sources_estimated"`
				Hosts     uint64 `json:"hosts"`
				Started   string `json:"started"`
				EndReason string `json:"end_reason"`
				Sensors   []struct {
					Name  string  `json:"name"`
					PPS   float64 `json:"pps"`
					Share float64 `json:"share"`
				} `json:"sensors"`
			} `json:"attack"`
		} `json:"context"`
	} `json:"alert"`
}

// fleetAlerts parses the correlator's EVE lines out into T; when the
// fleet should raise nothing (fleet false) it fails the test on any and
// returns false, so the caller's case ends there.
func fleetAlerts[T any](t *testing.T, out string, fleet bool) ([]T, bool) {
	t.Helper()
	evs := parseJSONLines[T](t, out)
	if !fleet {
		if len(evs) != 0 {
			t.Fatalf("the fleet raised:\n%s", out)
		}
		return nil, false
	}
	return evs, true
}

// parseJSONLines decodes every non-empty line of out as one T (EVE
// lines into the fields a test reads).
func parseJSONLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var evs []T
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var a T
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("not JSON: %v: %q", err, l)
		}
		evs = append(evs, a)
	}
	return evs
}

// TestFleetCarpet is the fleet's acceptance test: four sensors gw0…gw3,
// each seeing one host quarter of a spoofed 8,000/s carpet over a /24
// (2,000/s over 64 hosts), publish to Kafka; none alerts; `icmpids
// correlate` raises exactly one icmp_carpet_flood start and end for the
// /24, with the 4 sensors, the packets within 1 % of the carpet's and the
// start within 0.2 s of one sensor seeing the whole carpet. The control, 4
// × 1,000/s (4,000/s, below the 5,000/s start level), raises nothing. The
// alerts topic, read back by kcat, holds what the correlators printed,
// the end events of one stopped by a signal too.
func TestFleetCarpet(t *testing.T) {
	needTool(t, "kcat")
	for _, tc := range []struct {
		name  string
		rate  int
		fleet bool
		// whole: gw0 sees the whole carpet and reports it itself; the
		// others see nothing.
		whole bool
	}{{"carpet", 8000, true, false}, {"control", 4000, false, false}, {"one_sensor_reports_it", 8000, false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := startKafka(t)
			addr := c.ListenAddrs()[0]
			whole, quarters, total := carpetQuarters(t, tc.rate)
			for i, q := range quarters {
				t.Setenv("ICMPIDS_SENSOR_NAME", fmt.Sprintf("gw%d", i))
				if tc.whole {
					if i > 0 {
						break
					}
					q = whole
				}
				code, out, stderr := icmpids(t, "replay", "--format", "eve", "--kafka", addr, q)
				if code != 0 || tc.whole != (strings.TrimSpace(out) != "") {
					t.Fatalf("sensor gw%d: exit %d, alerts:\n%s\n%s", i, code, out, stderr)
				}
			}
			t.Setenv("ICMPIDS_SENSOR_NAME", "single")
			code, out, stderr := icmpids(t, "replay", "--format", "eve", whole)
			if code != 0 {
				t.Fatalf("single sensor: exit %d: %s", code, stderr)
			}
			single := parseJSONLines[fleetAlert](t, out)
			t.Setenv("ICMPIDS_SENSOR_NAME", "fleet1")
			code, out, stderr = icmpids(t, "correlate", "--kafka", addr, "--format", "eve", "--until-idle", "2s")
			if code != 0 {
				t.Fatalf("correlate: exit %d: %s", code, stderr)
			}
			evs, ok := fleetAlerts[fleetAlert](t, out, tc.fleet)
			if !ok {
				return
			}
			if len(evs) < 2 || evs[0].Alert.Context.Attack.Phase != "start" || evs[len(evs)-1].Alert.Context.Attack.Phase != "end" {
				t.Fatalf("want one start … one end, got:\n%s\n%s", out, stderr)
			}
			starts, ends := 0, 0
			for _, e := range evs {
				a := e.Alert.Context.Attack
				if a.Rule != "icmp_carpet_flood" || a.Target != "10.20.0.0" || e.Host != "fleet1" || a.ID != evs[0].Alert.Context.Attack.ID {
					t.Errorf("fleet event %+v", e)
				}
				switch a.Phase {
				case "start":
					starts++
				case "end":
					ends++
				}
			}
			validateEVELines(t, out)
			if starts != 1 || ends != 1 {
				t.Errorf("%d starts, %d ends, want one each:\n%s", starts, ends, out)
			}
			end := evs[len(evs)-1].Alert.Context.Attack
			if len(end.Sensors) != 4 {
				t.Errorf("sensors %+v, want gw0…gw3", end.Sensors)
			}
			for i, s := range end.Sensors {
				if s.Name != fmt.Sprintf("gw%d", i) || s.Share < 0.2 || s.Share > 0.3 {
					t.Errorf("sensor %d: %+v, want gw%d with a quarter", i, s, i)
				}
			}
			if d := float64(end.Packets) - float64(total); d > 0.01*float64(total) || -d > 0.01*float64(total) {
				t.Errorf("fleet attack counted %d packets, the carpet has %d", end.Packets, total)
			}
			// A new source each packet, 256 hosts: the sensors' registers
			// merged (64 each: within 3 standard errors of 13 %).
			if s := float64(end.Sources); !end.Estimated || s < 0.61*float64(total) || s > 1.39*float64(total) || end.Hosts < 200 || end.Hosts > 256 {
				t.Errorf("fleet attack: %d sources (estimated %v), %d hosts; the carpet has %d sources, 256 hosts", end.Sources, end.Estimated, end.Hosts, total)
			}
			if len(single) == 0 || single[0].Alert.Context.Attack.Rule != "icmp_carpet_flood" {
				t.Fatalf("one sensor seeing the whole carpet raised:\n%v", single)
			}
			// A second correlator (another group: it reads from the
			// start) stopped by a signal raises the same attack, with the
			// same id, and closes it as shutdown.
			t.Setenv("ICMPIDS_FLEET_GROUP", "second")
			code, out2, stderr2, _ := runUntil(t, started, "correlate", "--kafka", addr, "--format", "eve")
			ev2 := parseJSONLines[fleetAlert](t, out2)
			if code != 0 || len(ev2) != 2 || ev2[0].Alert.Context.Attack.ID != evs[0].Alert.Context.Attack.ID ||
				ev2[1].Alert.Context.Attack.EndReason != "shutdown" || ev2[0].Timestamp != evs[0].Timestamp {
				t.Errorf("second correlator, stopped: exit %d\n%s\n%s", code, out2, stderr2)
			}
			// The alerts topic holds both correlators' events as stdout
			// printed them, the shutdown end included: a signal must not
			// cost the bus the end events stdout got.
			{
				kctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				raw, err := exec.CommandContext(kctx, "kcat", "-C", "-b", addr, "-t", "icmpids.eve", "-e", "-q").CombinedOutput()
				if err != nil {
					t.Fatalf("kcat: %v: %s", err, raw)
				}
				var topic []string
				for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
					line, _ := dropSeq(t, l)
					topic = append(topic, line)
				}
				want := strings.TrimSpace(out) + "\n" + strings.TrimSpace(out2)
				if got := strings.Join(topic, "\n"); got != want {
					t.Errorf("the alerts topic holds:\n%s\nstdout printed:\n%s\n%s", got, want, lastLines(stderr2, 6))
				}
			}
			// Restarts. The stopped correlator committed its offsets only
			// up to the open attack's start: restarted in its group, it
			// reads the attack's records again and raises it with the
			// same id and start. The first ran to the input's end
			// (--until-idle, input_end) and committed everything:
			// restarted, it raises nothing again.
			code, out3, stderr3, _ := runUntil(t, started, "correlate", "--kafka", addr, "--format", "eve")
			ev3 := parseJSONLines[fleetAlert](t, out3)
			if code != 0 || len(ev3) != 2 || ev3[0].Alert.Context.Attack.ID != evs[0].Alert.Context.Attack.ID || ev3[0].Timestamp != evs[0].Timestamp {
				t.Errorf("second correlator, restarted on its committed offsets: exit %d, want the same attack again\n%s\n%s", code, out3, lastLines(stderr3, 4))
			}
			t.Setenv("ICMPIDS_FLEET_GROUP", "icmpids-correlate")
			code, out4, stderr4 := icmpids(t, "correlate", "--kafka", addr, "--format", "eve", "--until-idle", "2s")
			if code != 0 || strings.TrimSpace(out4) != "" {
				t.Errorf("first correlator, restarted after the input's end: exit %d, want nothing raised again\n%s\n%s", code, out4, lastLines(stderr4, 4))
			}
			st, err1 := time.Parse(eveTime, evs[0].Timestamp)
			ss, err2 := time.Parse(eveTime, single[0].Timestamp)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if d := st.Sub(ss); d > 200*time.Millisecond || d < -200*time.Millisecond {
				t.Errorf("fleet start %v, one sensor's %v: %v apart, want within 0.2 s", st, ss, d)
			}
		})
	}
}

// eveTime is EVE's timestamp layout.
const eveTime = "2006-01-02T15:04:05.000000-0700"

// validateEVELines checks every line of out against Suricata's EVE schema.
func validateEVELines(t *testing.T, out string) {
	t.Helper()
	schema, err := jsonschema.NewCompiler().Compile(filepath.Join("..", "..", "output", "testdata", "suricata-eve.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(l))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(v); err != nil {
			t.Errorf("not valid EVE: %v\n%s", err, l)
		}
	}
}

// TestCorrelateUsage: correlate needs brokers and a topic (exit 2).
func TestCorrelateUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"correlate"}, "", "--kafka"},
		{[]string{"correlate", "--kafka", "127.0.0.1:1", "--until-idle", "-1s"}, "", "--until-idle"},
		{[]string{"correlate", "--kafka", "127.0.0.1:1"}, "ICMPIDS_FLEET_LATENESS", "fleet.lateness"},
	} {
		if tc.env != "" {
			v := ""
			if strings.HasSuffix(tc.env, "LATENESS") {
				v = "-1s"
			}
			t.Setenv(tc.env, v)
		}
		code, _, stderr := icmpids(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 naming %s", tc.args, code, stderr, tc.want)
		}
	}
}

// hostFlood writes, for each sensor, rates[i] echo requests/s for 5 s from
// spoofed sources to 10.30.0.5, and returns the captures.
func hostFlood(t *testing.T, rates []int) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for s, rate := range rates {
		var frames []synth.Frame
		for i := 0; i < 5*rate; i++ {
			d, err := synth.EchoFrame(synth.Echo{Src: synth.RandomAddr(uint64(s*1_000_000+i)*0x9e3779b97f4a7c15|1, true),
				Dst: netip.MustParseAddr("10.30.0.5"), ID: 7, Seq: uint16(i)})
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, synth.Frame{Time: epoch.Add(time.Duration(i) * time.Second / time.Duration(rate)), Data: d})
		}
		paths = append(paths, filepath.Join(dir, fmt.Sprintf("gw%d.pcap", s)))
		if err := synth.WritePcapFile(paths[s], frames); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// TestFleetFlood: a spoofed echo flood of one host spread over four
// gateways at 400/s each (1,600/s, over icmp_flood's 1,000/s; each under
// it) raises no sensor alert and one fleet icmp_flood start and end with
// the 4 sensors and every packet; a flood one sensor sees whole and
// reports itself is not raised a second time.
func TestFleetFlood(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rates []int
		fleet bool
	}{{"spread", []int{400, 400, 400, 400}, true}, {"one_sensor_reports_it", []int{3000}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := startKafka(t)
			addr := c.ListenAddrs()[0]
			total := 0
			for i, p := range hostFlood(t, tc.rates) {
				total += 5 * tc.rates[i]
				t.Setenv("ICMPIDS_SENSOR_NAME", fmt.Sprintf("gw%d", i))
				code, out, stderr := icmpids(t, "replay", "--format", "eve", "--kafka", addr, p)
				if code != 0 || tc.fleet == (strings.TrimSpace(out) != "") {
					t.Fatalf("sensor gw%d: exit %d, alerts:\n%s\n%s", i, code, out, stderr)
				}
			}
			t.Setenv("ICMPIDS_SENSOR_NAME", "fleet1")
			code, out, stderr := icmpids(t, "correlate", "--kafka", addr, "--format", "eve", "--until-idle", "2s")
			if code != 0 {
				t.Fatalf("correlate: exit %d: %s", code, stderr)
			}
			evs, ok := fleetAlerts[fleetAlert](t, out, tc.fleet)
			if !ok {
				return
			}
			if len(evs) != 2 || evs[0].Alert.Context.Attack.Phase != "start" || evs[1].Alert.Context.Attack.Phase != "end" {
				t.Fatalf("want one start and one end, got:\n%s\n%s", out, stderr)
			}
			validateEVELines(t, out)
			end := evs[1].Alert.Context.Attack
			if end.Rule != "icmp_flood" || end.Target != "10.30.0.5" || len(end.Sensors) != 4 {
				t.Errorf("fleet end %+v", end)
			}
			if d := float64(end.Packets) - float64(total); d > 0.01*float64(total) || -d > 0.01*float64(total) {
				t.Errorf("fleet attack counted %d packets, the flood has %d", end.Packets, total)
			}
			if s := float64(end.Sources); !end.Estimated || s < 0.61*float64(total) || s > 1.39*float64(total) {
				t.Errorf("fleet attack: %d sources (estimated %v), the flood has %d", end.Sources, end.Estimated, total)
			}
		})
	}
}

// TestCorrelateSIGTERMBrokerGone: the bus goes away under a correlator
// with an attack open; SIGTERM still ends it within seconds (the last
// commit gets 1 s, the alerts topic's flush 3 s; leaving the group is
// bounded too), and the end event it could not deliver is counted
// (kafka_dropped), while stdout has it.
func TestCorrelateSIGTERMBrokerGone(t *testing.T) {
	c := startKafka(t)
	addr := c.ListenAddrs()[0]
	_, quarters, _ := carpetQuarters(t, 8000)
	for i, q := range quarters {
		t.Setenv("ICMPIDS_SENSOR_NAME", fmt.Sprintf("gw%d", i))
		if code, _, stderr := icmpids(t, "replay", "--format", "none", "--kafka", addr, q); code != 0 {
			t.Fatalf("sensor gw%d: exit %d: %s", i, code, stderr)
		}
	}
	t.Setenv("ICMPIDS_SENSOR_NAME", "fleet1")
	// Once the attack is open, the broker goes away, and the signal comes.
	code, out, stderr, took := runUntil(t, func(out string) bool {
		if !started(out) {
			return false
		}
		c.Close()
		return true
	}, "correlate", "--kafka", addr, "--format", "eve")
	t.Logf("exit %d %v after the signal", code, took.Round(time.Millisecond))
	evs := parseJSONLines[fleetAlert](t, out)
	if len(evs) != 2 || evs[1].Alert.Context.Attack.EndReason != "shutdown" {
		t.Fatalf("stdout:\n%s\n%s", out, lastLines(stderr, 6))
	}
	if took > 8*time.Second { // 4 s promised, with slack
		t.Errorf("ended %v after the signal, want a few seconds:\n%s", took, lastLines(stderr, 8))
	}
	m := regexp.MustCompile(`kafka_dropped=(\d+)`).FindStringSubmatch(stderr)
	if m == nil || m[1] == "0" {
		t.Errorf("the undelivered end event is not counted:\n%s", lastLines(stderr, 8))
	}
}

// icmpidsConsumer is icmpids with opts added to the correlator's Kafka
// client options.
func icmpidsConsumer(t *testing.T, opts []kgo.Opt, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runApp(context.Background(), &app{stdout: &out, stderr: &errb, v: newViper(), consumerOpts: opts}, args)
	return code, out.String(), errb.String()
}

// TestFleetBacklog: the four sensors' records lie in the topic one sensor
// after another (the gateways replayed their captures in turn, or the
// correlator started late), and the correlator reads them in fetches of
// one record batch each (FetchMaxBytes 1): the backlog is read whole
// before any interval is judged, so that gw1…gw3's records of the
// carpet's first seconds are not late. The carpet: one icmp_carpet_flood
// start and end, the 4 sensors, every packet, no record late; the control
// (4 × 1,000/s) read the same way raises nothing. On the code that judged
// after every poll, the first fetch moved the watermark past the carpet's
// first seconds and 9 of the others' 20 records were dropped as late:
// the fleet attack counted 17,792 of the 40,000 packets.
func TestFleetBacklog(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  int
		fleet bool
	}{{"carpet", 8000, true}, {"control", 4000, false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := startKafka(t)
			addr := c.ListenAddrs()[0]
			_, quarters, total := carpetQuarters(t, tc.rate)
			for i, q := range quarters {
				t.Setenv("ICMPIDS_SENSOR_NAME", fmt.Sprintf("gw%d", i))
				if code, _, stderr := icmpids(t, "replay", "--format", "none", "--kafka", addr, q); code != 0 {
					t.Fatalf("sensor gw%d: exit %d: %s", i, code, stderr)
				}
			}
			t.Setenv("ICMPIDS_SENSOR_NAME", "fleet1")
			code, out, stderr := icmpidsConsumer(t, []kgo.Opt{kgo.FetchMaxBytes(1)}, "correlate", "--kafka", addr, "--format", "eve", "--until-idle", "2s")
			if code != 0 {
				t.Fatalf("correlate: exit %d: %s", code, stderr)
			}
			if !regexp.MustCompile(`fleet observations.* late=0 records=[1-9]`).MatchString(stderr) {
				t.Errorf("records counted late, or none read:\n%s", lastLines(stderr, 4))
			}
			evs, ok := fleetAlerts[fleetAlert](t, out, tc.fleet)
			if !ok {
				return
			}
			if len(evs) != 2 || evs[0].Alert.Context.Attack.Phase != "start" || evs[1].Alert.Context.Attack.Phase != "end" {
				t.Fatalf("want one start and one end, got:\n%s\n%s", out, lastLines(stderr, 4))
			}
			end := evs[1].Alert.Context.Attack
			if end.Rule != "icmp_carpet_flood" || end.Target != "10.20.0.0" || len(end.Sensors) != 4 {
				t.Errorf("fleet end %+v", end)
			}
			if d := float64(end.Packets) - float64(total); d > 0.01*float64(total) || -d > 0.01*float64(total) {
				t.Errorf("fleet attack counted %d packets, the carpet has %d", end.Packets, total)
			}
		})
	}
}

// started tells whether EVE lines on stdout hold an attack's start.
func started(stdout string) bool { return strings.Contains(stdout, `"phase":"start"`) }

// runUntil runs icmpids in-process and stops it, as a signal does, once
// ready holds for what it has printed on stdout (it fails the test when
// that takes 30 s, or the run ends first). It returns the exit status,
// stdout, stderr and the time from the stop to the exit.
func runUntil(t *testing.T, ready func(stdout string) bool, args ...string) (int, string, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &out, &errb) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case code := <-done:
			t.Errorf("%v ended by itself (exit %d) before it was stopped", args, code)
			return code, out.String(), errb.String(), 0
		case <-deadline:
			t.Errorf("%v: not ready after 30 s", args)
		case <-tick.C:
			if !ready(out.String()) {
				continue
			}
		}
		stopped := time.Now()
		cancel()
		code := <-done
		return code, out.String(), errb.String(), time.Since(stopped)
	}
}
