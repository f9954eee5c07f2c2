package output

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startKafka runs an in-process Kafka cluster (kfake speaks the Kafka
// protocol) with the EVE topic, on port (0: a free one).
func startKafka(t *testing.T, port int, partitions int32, extra ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(partitions, "icmpids.eve")}, extra...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func kafkaPort(t *testing.T, c *kfake.Cluster) int {
	_, p, _ := net.SplitHostPort(c.ListenAddrs()[0])
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// consumeAll reads every record of topic from the start, until n arrived
// or d passed.
func consumeAll(t *testing.T, addr, topic string, n int, d time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		f := cl.PollFetches(ctx)
		f.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// withoutSeq returns the record's EVE line without alert.context.event_seq,
// and the seq.
func withoutSeq(t *testing.T, v []byte) (string, uint64) {
	t.Helper()
	s := string(v)
	i := strings.LastIndex(s, `,"event_seq":`)
	if i < 0 || !strings.HasSuffix(s, "}}}") {
		t.Fatalf("no event_seq at the end of alert.context: %s", s)
	}
	n, err := strconv.ParseUint(s[i+len(`,"event_seq":`):len(s)-3], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return s[:i] + "}}}", n
}

func testKafkaConfig(addr string) KafkaConfig {
	c := DefaultKafkaConfig()
	c.Brokers = []string{addr}
	return c
}

func closeKafka(t *testing.T, k *Kafka) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestKafkaConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(*KafkaConfig)
	}{
		{"default", "", func(*KafkaConfig) {}},
		{"brokers", "", func(c *KafkaConfig) { c.Brokers = []string{"a:9092", " b:9092"} }},
		{"broker without port", `output.kafka.brokers: "a"`, func(c *KafkaConfig) { c.Brokers = []string{"a"} }},
		{"topic", "output.kafka.topic", func(c *KafkaConfig) { c.Topic = "" }},
		{"key", `output.kafka.key: "src"`, func(c *KafkaConfig) { c.Key = "src" }},
		{"acks", `output.kafka.acks: "2"`, func(c *KafkaConfig) { c.Acks = "2" }},
		{"compression", `output.kafka.compression: "brotli"`, func(c *KafkaConfig) { c.Compression = "brotli" }},
		{"queue", "output.kafka.queue_size: 0", func(c *KafkaConfig) { c.QueueSize = 0 }},
		{"timeout", "output.kafka.delivery_timeout", func(c *KafkaConfig) { c.DeliveryTimeout = 0 }},
		{"sasl", "output.kafka.sasl.mechanism", func(c *KafkaConfig) { c.SASL.Mechanism = "gssapi" }},
		{"sasl user", "output.kafka.sasl.username", func(c *KafkaConfig) { c.SASL.Mechanism = "plain" }},
		{"tls pair", "output.kafka.tls.cert_file", func(c *KafkaConfig) { c.TLS.CertFile = "c.pem" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultKafkaConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestKafkaEVE: every event reaches the topic as the EVE line, keyed by
// its attack id, with event_seq 1, 2, 3, … in alert.context, and
// validates against Suricata's EVE schema.
func TestKafkaEVE(t *testing.T) {
	c := startKafka(t, 0, 3)
	defer c.Close()
	k, err := NewKafka(testKafkaConfig(c.ListenAddrs()[0]), KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k.SetMeta(Meta{Host: "gw0"})
	want := map[uint64]string{}
	wantKey := map[uint64]string{}
	for i, tc := range testEvents() {
		k.Emit(tc.ev)
		var buf strings.Builder
		e := NewEVE(&buf)
		e.SetMeta(Meta{Host: "gw0"})
		e.Emit(tc.ev)
		want[uint64(i+1)] = strings.TrimSuffix(buf.String(), "\n")
		wantKey[uint64(i+1)] = fmt.Sprintf("%016x", AttackID("gw0", tc.ev))
	}
	closeKafka(t, k)
	recs := consumeAll(t, c.ListenAddrs()[0], "icmpids.eve", len(want), 10*time.Second)
	if len(recs) != len(want) {
		t.Fatalf("%d records on the topic, want %d", len(recs), len(want))
	}
	for _, r := range recs {
		if err := validateEVE(t, r.Value); err != nil {
			t.Error(err)
		}
		line, seq := withoutSeq(t, r.Value)
		if line != want[seq] {
			t.Errorf("record %d:\n got %s\nwant %s", seq, line, want[seq])
		}
		if string(r.Key) != wantKey[seq] {
			t.Errorf("record %d key %q, want the attack id %s", seq, r.Key, wantKey[seq])
		}
		var m map[string]any
		json.Unmarshal(r.Value, &m)
		if id, _ := path(m, "alert", "context", "attack", "id"); id != string(r.Key) {
			t.Errorf("record %d: key %q is not alert.context.attack.id %v", seq, r.Key, id)
		}
	}
	if st := k.Stats(); st.Sent != uint64(len(want)) || st.Dropped+st.Rejected+st.Undelivered != 0 {
		t.Errorf("stats %+v, want %d sent, none lost", st, len(want))
	}
}

func waitStats(t *testing.T, k *Kafka, what string, ok func(SinkStats) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(k.Stats()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := k.Stats(); !ok(st) {
		t.Fatalf("%s: %+v", what, st)
	}
}

// TestKafkaOutage: the broker closed while a live sensor goes on raising
// alerts, and restarted on the same port: with its data directory, the
// queued records arrive after the ones before, in order, without
// duplicates; without it but with the topic, the queued records arrive; a
// broker that lost the topic rejects them (delivery_failed). The overflow
// is refused at once and counted either way.
func TestKafkaOutage(t *testing.T) {
	for _, tc := range []struct {
		name           string
		dataDir, topic bool
	}{
		{"data_dir", true, true},
		{"empty_with_topic", false, true}, // a new topic id: the queued records are lost
		{"lost_topic", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var extra []kfake.Opt
			if tc.dataDir {
				extra = append(extra, kfake.DataDir(dir))
			}
			c := startKafka(t, 0, 1, extra...)
			port := kafkaPort(t, c)
			addr := c.ListenAddrs()[0]
			cfg := testKafkaConfig(addr)
			cfg.QueueSize = 20
			cfg.DeliveryTimeout = 5 * time.Second
			l, logw := syslogTestLog()
			defer func() {
				if t.Failed() {
					t.Log(logw)
				}
			}()
			k, err := NewKafka(cfg, KafkaOptions{Log: l})
			if err != nil {
				t.Fatal(err)
			}
			seq := 0
			emit := func(n int) {
				for range n {
					seq++
					k.Emit(syslogEvent(seq))
				}
			}
			emit(10)
			waitStats(t, k, "before the outage", func(st SinkStats) bool { return st.Sent == 10 && st.Connected })
			c.Close()
			emit(50) // 20 wait in the client, 30 are refused
			waitStats(t, k, "during the outage", func(st SinkStats) bool { return st.Dropped == 30 && st.Queued == 20 && !st.Connected })
			var c2 *kfake.Cluster
			if tc.topic {
				c2 = startKafka(t, port, 1, extra...)
			} else {
				var err error
				if c2, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port)); err != nil {
					t.Fatal(err)
				}
			}
			defer c2.Close()
			if !tc.topic {
				waitStats(t, k, "topic lost", func(st SinkStats) bool { return st.Rejected == 20 && st.Queued == 0 })
				closeKafka(t, k)
				return
			}
			if tc.dataDir {
				waitStats(t, k, "after the restart", func(st SinkStats) bool { return st.Sent == 30 && st.Connected })
			} else {
				// The broker lost its data: the records queued for the
				// old topic are given up and counted.
				waitStats(t, k, "after the restart", func(st SinkStats) bool { return st.Rejected == 20 && st.Queued == 0 })
				time.Sleep(200 * time.Millisecond) // the purge
			}
			emit(5)
			closeKafka(t, k)
			var want []int
			if tc.dataDir {
				for i := 1; i <= 10; i++ {
					want = append(want, i)
				}
				for i := 11; i <= 30; i++ {
					want = append(want, i)
				}
			}
			for i := 61; i <= 65; i++ {
				want = append(want, i)
			}
			recs := consumeAll(t, addr, "icmpids.eve", len(want), 10*time.Second)
			var got []int
			var seqs []uint64
			for _, r := range recs {
				line, s := withoutSeq(t, r.Value)
				got = append(got, bodySeq(t, line))
				seqs = append(seqs, s)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("topic holds %v\nwant        %v", got, want)
			}
			for i, s := range seqs {
				if int(s) != got[i] {
					t.Fatalf("event_seq %v, want the emit order %v", seqs, got)
				}
			}
			wantSent, wantRejected := uint64(35), uint64(0)
			if !tc.dataDir {
				wantSent, wantRejected = 15, 20
			}
			if st := k.Stats(); st.Sent != wantSent || st.Dropped != 30 || st.Rejected != wantRejected {
				t.Errorf("stats %+v, want %d sent, 30 dropped, %d rejected", st, wantSent, wantRejected)
			}
		})
	}
}

// TestKafkaBlocking: a replay's sink waits for room while the brokers
// are away, and a signal ends the wait (the record is counted).
func TestKafkaBlocking(t *testing.T) {
	c := startKafka(t, 0, 1)
	port := kafkaPort(t, c)
	cfg := testKafkaConfig(c.ListenAddrs()[0])
	cfg.QueueSize = 2
	stop, cancel := context.WithCancel(context.Background())
	k, err := NewKafka(cfg, KafkaOptions{Block: true, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	ctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	if err := k.Check(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	k.Emit(syslogEvent(1))
	k.Emit(syslogEvent(2))
	done := make(chan struct{})
	go func() {
		k.Emit(syslogEvent(3))
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("a blocking Emit returned with the client full and the broker down")
	case <-time.After(300 * time.Millisecond):
	}
	c2 := startKafka(t, port, 1)
	defer c2.Close()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Emit still waits after the broker came back")
	}
	waitStats(t, k, "after the restart", func(st SinkStats) bool { return st.Sent == 3 })
	c2.Close()
	k.Emit(syslogEvent(4))
	k.Emit(syslogEvent(5))
	blocked := make(chan struct{})
	go func() {
		k.Emit(syslogEvent(6))
		close(blocked)
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case <-blocked:
	case <-time.After(2 * time.Second):
		t.Fatal("a blocking Emit still waits after the signal")
	}
	cctx, c3 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer c3()
	k.Close(cctx)
	if st := k.Stats(); st.Sent != 3 || st.Dropped+st.Undelivered+st.Rejected != 3 {
		t.Errorf("stats %+v, want 3 sent and 3 counted as lost", st)
	}
}
