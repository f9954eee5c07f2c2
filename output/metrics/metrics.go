// Package metrics exposes a sensor's figures to Prometheus on its own
// registry (no global state): packets and bytes by ICMP type, decode
// errors by reason, capture drops, attack events by rule and phase, active
// attacks, state-table sizes and evictions, and each output's queue depth,
// sent and dropped events.
//
// The detection engine is single-threaded and takes no locks, so a scrape
// never reads it: the engine goroutine publishes a copy of its figures
// (Publish, about once a second) through an atomic pointer, and a scrape
// reads the latest copy. Output figures are atomics, read at scrape time.
// Nothing is counted per packet here except by TypeCounter, which runs in
// the engine as a rule that never reports.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/output"
)

// Snapshot is what the engine goroutine publishes.
type Snapshot struct {
	// Time is when the snapshot was taken (wall clock).
	Time time.Time
	// Engine holds the engine's counters.
	Engine detector.Stats
	// Types holds packets and bytes by ICMP type (see TypeCounter).
	Types TypeCounts
	// Capture holds the kernel's capture counters; nil for capture files.
	Capture *output.CaptureStats
}

// Metrics is a registry with the sensor's collectors. Its methods are safe
// for concurrent use.
type Metrics struct {
	reg    *prometheus.Registry
	snap   atomic.Pointer[Snapshot]
	sinks  func() []output.SinkStats
	events *prometheus.CounterVec
	types  TypeCounter
}

// New returns a registry with the sensor's collectors and Go's runtime and
// process collectors. sinks (may be nil) returns the outputs' figures at
// scrape time; it must be safe to call from any goroutine.
//
// version is the sensor's version (icmpids_build_info); ruleNames are the
// rules, whose attack-event counters start at 0 for every phase, so that
// rate() and alerting rules see a series before the first attack.
func New(version string, ruleNames []string, sinks func() []output.SinkStats) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), sinks: sinks}
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "icmpids_attack_events_total",
		Help: "Attack events emitted, by rule and phase (start, update, end).",
	}, []string{"rule", "phase"})
	for _, r := range ruleNames {
		for _, ph := range []string{"start", "update", "end"} {
			m.events.WithLabelValues(r, ph)
		}
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "icmpids_build_info",
		Help: "Always 1; the labels say which icmpids and Go built the sensor.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.events,
		build,
		(*sensorCollector)(m),
	)
	return m
}

// Registry returns the registry, for tests and for serving.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Publish makes s what scrapes report. The engine goroutine calls it with
// copies it owns no more.
func (m *Metrics) Publish(s *Snapshot) { m.snap.Store(s) }

// Observer returns the rule that counts packets by ICMP type, to run on
// the engine (see TypeCounter); its counts reach the metrics through
// Snapshot.Types.
func (m *Metrics) Observer() *TypeCounter { return &m.types }

// Events returns a sink that counts attack events by rule and phase; put
// it in front of the outputs, so it sees every event the engine emits.
func (m *Metrics) Events() detector.Sink {
	return detector.SinkFunc(func(ev *detector.Event) {
		m.events.WithLabelValues(ev.Rule.Name, ev.Phase.String()).Inc()
	})
}

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg,
		EnableOpenMetrics: true,
		Timeout:           10 * time.Second,
	})
}

// Server is the metrics HTTP endpoint.
type Server struct {
	srv *http.Server
	ln  net.Listener
	err chan error
}

// Serve listens on addr (host:port; port 0 picks one) and serves
// /metrics. It fails at once if addr cannot be listened on.
func (m *Metrics) Serve(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "icmpids: metrics at /metrics")
	})
	s := &Server{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second},
		ln:  ln,
		err: make(chan error, 1),
	}
	go func() { s.err <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, letting scrapes in progress finish until ctx is
// done.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.err; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return errors.Join(err, serr)
	}
	return err
}

// sensorCollector reads the latest snapshot and the sinks' figures.
type sensorCollector Metrics

var (
	descFrames       = prometheus.NewDesc("icmpids_frames_total", "Frames handed to the engine.", nil, nil)
	descFrameBytes   = prometheus.NewDesc("icmpids_frame_bytes_total", "Wire bytes of the frames handed to the engine.", nil, nil)
	descPackets      = prometheus.NewDesc("icmpids_packets_total", "ICMP/ICMPv6 packets and IP fragments seen, by family (ipv4, ipv6, any) and kind (icmp, icmpv6, fragment); the kinds overlap (a fragmented ping is both).", []string{"family", "kind"}, nil)
	descIPPackets    = prometheus.NewDesc("icmpids_ip_packets_total", "IP packets seen, by family (ipv4, ipv6).", []string{"family"}, nil)
	descICMPPackets  = prometheus.NewDesc("icmpids_icmp_packets_total", "ICMP and ICMPv6 packets (with an ICMP header) by protocol and type.", []string{"proto", "type"}, nil)
	descICMPBytes    = prometheus.NewDesc("icmpids_icmp_bytes_total", "Wire bytes of ICMP and ICMPv6 packets by protocol and type.", []string{"proto", "type"}, nil)
	descNotIP        = prometheus.NewDesc("icmpids_frames_not_ip_total", "Frames without IP (ARP, LLDP, ...): skipped, not errors.", nil, nil)
	descDecode       = prometheus.NewDesc("icmpids_decode_total", "Frames that failed to decode, by reason (the contract's released name).", []string{"reason"}, nil)
	descDecodeErrors = prometheus.NewDesc("icmpids_decode_errors_total", "Deprecated: the same figures as icmpids_decode_total, kept for dashboards built on this name.", []string{"reason"}, nil)
	descCapPackets   = prometheus.NewDesc("icmpids_capture_packets_total", "Packets the capture filter passed, as the kernel counts them.", nil, nil)
	descCapDrops     = prometheus.NewDesc("icmpids_capture_kernel_drops_total", "Packets the kernel dropped for lack of capture buffer space.", nil, nil)
	descCapIfDrops   = prometheus.NewDesc("icmpids_capture_interface_drops_total", "Packets the interface or its driver dropped.", nil, nil)
	descLinkDowns    = prometheus.NewDesc("icmpids_capture_link_down_total", "Times the capture interface went down or vanished while the sensor ran.", nil, nil)
	descLinkUp       = prometheus.NewDesc("icmpids_capture_link_up", "1 while the capture interface is up.", nil, nil)
	descStarted      = prometheus.NewDesc("icmpids_attacks_started_total", "Attacks started (one-shot alerts included).", nil, nil)
	descEnded        = prometheus.NewDesc("icmpids_attacks_ended_total", "Attacks ended.", nil, nil)
	descActive       = prometheus.NewDesc("icmpids_attacks_active", "Attacks open now.", nil, nil)
	descAttDropped   = prometheus.NewDesc("icmpids_attacks_dropped_total", "Rule hits lost because the attack table was full of active attacks.", nil, nil)
	descPendEvicted  = prometheus.NewDesc("icmpids_attacks_pending_evicted_total", "Pending (not yet started) attacks pushed out of the attack table.", nil, nil)
	descTableLen     = prometheus.NewDesc("icmpids_table_entries", "Entries in a bounded state table.", []string{"table"}, nil)
	descTableCap     = prometheus.NewDesc("icmpids_table_capacity", "Capacity of a bounded state table.", []string{"table"}, nil)
	descTableEvicted = prometheus.NewDesc("icmpids_table_evictions_total", "Entries evicted from a full state table.", []string{"table"}, nil)
	descReasm        = prometheus.NewDesc("icmpids_reassembly_total", "Fragment trains the engine reassembled (ND messages, tunnel carriers) or gave up on, by outcome: completed, timeout, evicted, too_big, too_many, conflict, malformed.", []string{"outcome"}, nil)
	descSnapshotAge  = prometheus.NewDesc("icmpids_stats_age_seconds", "Age of the engine figures this scrape reports (they are published about once a second).", nil, nil)
	descQueueLen     = prometheus.NewDesc("icmpids_output_queue_length", "Events waiting in an output's queue.", []string{"sink"}, nil)
	descQueueCap     = prometheus.NewDesc("icmpids_output_queue_capacity", "Size of an output's queue.", []string{"sink"}, nil)
	descSent         = prometheus.NewDesc("icmpids_output_events_sent_total", "Events an output delivered.", []string{"sink"}, nil)
	descDropped      = prometheus.NewDesc("icmpids_output_events_dropped_total", "Events an output lost, by reason: queue_full (live mode never waits), shutdown (still queued when the stop deadline ran out), encode (could not be encoded), delivery_failed (the far end refused it: a Redis error reply, a Kafka broker's final rejection).", []string{"sink", "reason"}, nil)
	descConnected    = prometheus.NewDesc("icmpids_output_connected", "1 while a network output holds a connection to its collector.", []string{"sink"}, nil)
	descReconnects   = prometheus.NewDesc("icmpids_output_reconnects_total", "Connections a network output made after its first.", []string{"sink"}, nil)
)

// Describe implements prometheus.Collector.
func (c *sensorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFrames, descFrameBytes, descPackets, descICMPPackets,
		descICMPBytes, descNotIP, descDecode, descDecodeErrors, descCapPackets, descCapDrops, descCapIfDrops, descLinkDowns, descLinkUp, descIPPackets,
		descStarted, descEnded, descActive, descAttDropped, descPendEvicted, descTableLen,
		descTableCap, descTableEvicted, descReasm, descSnapshotAge, descQueueLen, descQueueCap, descSent,
		descDropped, descConnected, descReconnects} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *sensorCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if s := c.snap.Load(); s != nil {
		e := &s.Engine
		counter(descFrames, e.Frames)
		counter(descFrameBytes, e.Bytes)
		counter(descIPPackets, e.IPv4, "ipv4")
		counter(descIPPackets, e.IPv6, "ipv6")
		counter(descPackets, e.ICMP, "ipv4", "icmp")
		counter(descPackets, e.ICMPv6, "ipv6", "icmpv6")
		counter(descPackets, e.Fragments, "any", "fragment")
		for fam, name := range [2]string{"icmp", "icmpv6"} {
			for t := range 256 {
				if n := s.Types[fam][t]; n.Packets > 0 {
					ty := strconv.Itoa(t)
					counter(descICMPPackets, n.Packets, name, ty)
					counter(descICMPBytes, n.Bytes, name, ty)
				}
			}
		}
		counter(descNotIP, e.Decode[detector.ReasonNotIP])
		for r := detector.ReasonUnsupportedLink; r < detector.NumReasons; r++ {
			counter(descDecode, e.Decode[r], r.String())
			counter(descDecodeErrors, e.Decode[r], r.String())
		}
		if cs := s.Capture; cs != nil {
			counter(descCapPackets, cs.Packets)
			counter(descCapDrops, cs.Drops)
			counter(descCapIfDrops, cs.IfDrops)
			counter(descLinkDowns, cs.LinkDowns)
			up := 0.0
			if cs.LinkUp {
				up = 1
			}
			gauge(descLinkUp, up)
		}
		counter(descStarted, e.AttacksStarted)
		counter(descEnded, e.AttacksEnded)
		gauge(descActive, float64(e.ActiveAttacks))
		counter(descAttDropped, e.AttacksDropped)
		counter(descPendEvicted, e.PendingEvicted)
		seen := make(map[string]bool, len(e.Tables))
		for _, t := range e.Tables {
			if seen[t.Name] {
				continue // a registry rejects duplicate series
			}
			seen[t.Name] = true
			gauge(descTableLen, float64(t.Len), t.Name)
			gauge(descTableCap, float64(t.Cap), t.Name)
			counter(descTableEvicted, t.Evicted, t.Name)
		}
		r := &e.Reassembly
		for _, o := range [...]struct {
			name string
			n    uint64
		}{{"completed", r.Completed}, {"timeout", r.Timeouts}, {"evicted", r.Evicted}, {"too_big", r.TooBig},
			{"too_many", r.TooMany}, {"conflict", r.Conflicts}, {"malformed", r.Malformed}} {
			counter(descReasm, o.n, o.name)
		}
		gauge(descSnapshotAge, time.Since(s.Time).Seconds())
	}
	if c.sinks == nil {
		return
	}
	seen := make(map[string]bool)
	for _, st := range c.sinks() {
		if seen[st.Name] {
			continue
		}
		seen[st.Name] = true
		gauge(descQueueLen, float64(st.Queued), st.Name)
		if st.Capacity > 0 {
			gauge(descQueueCap, float64(st.Capacity), st.Name)
		}
		counter(descSent, st.Sent, st.Name)
		counter(descDropped, st.Dropped, st.Name, "queue_full")
		counter(descDropped, st.Undelivered, st.Name, "shutdown")
		counter(descDropped, st.Failed, st.Name, "encode")
		counter(descDropped, st.Rejected, st.Name, "delivery_failed")
		if st.Network {
			b := 0.0
			if st.Connected {
				b = 1
			}
			gauge(descConnected, b, st.Name)
			counter(descReconnects, st.Reconnects, st.Name)
		}
	}
}

// TypeCount is the packets and wire bytes of one ICMP type.
type TypeCount struct{ Packets, Bytes uint64 }

// TypeCounts holds the counts by protocol (0 ICMP, 1 ICMPv6) and type.
type TypeCounts [2][256]TypeCount

// TypeCounter counts packets and bytes by ICMP type. It is a
// detector.Rule that never reports: the engine calls it for every packet
// the rules see, and it costs two uncontended atomic adds (atomic, not
// plain, because with engine.workers > 1 several engines share it and a
// publish reads it from the capture goroutine). Counts may be called from
// any goroutine.
type TypeCounter struct {
	counts [2][256]struct{ packets, bytes atomic.Uint64 }
}

// Info implements detector.Rule.
func (tc *TypeCounter) Info() detector.RuleInfo {
	return detector.RuleInfo{Name: "metrics_icmp_types", Signature: "counts packets by ICMP type (never alerts)"}
}

// Observe implements detector.Rule.
func (tc *TypeCounter) Observe(p *detector.Packet, _ detector.Reporter) {
	if !p.HasICMP {
		return
	}
	fam := 0
	if p.Proto == detector.ProtoICMPv6 {
		fam = 1
	}
	c := &tc.counts[fam][p.ICMPType]
	c.packets.Add(1)
	c.bytes.Add(uint64(p.WireLen))
}

// Tick implements detector.Rule.
func (tc *TypeCounter) Tick(time.Time, detector.Reporter) {}

// Counts returns a copy of the counts.
func (tc *TypeCounter) Counts() TypeCounts {
	var out TypeCounts
	for f := range tc.counts {
		for t := range tc.counts[f] {
			c := &tc.counts[f][t]
			out[f][t] = TypeCount{Packets: c.packets.Load(), Bytes: c.bytes.Load()}
		}
	}
	return out
}
