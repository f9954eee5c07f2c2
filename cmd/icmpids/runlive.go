package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/shard"
	"github.com/icmpids/icmpids/output"
	"github.com/icmpids/icmpids/output/metrics"
	"github.com/icmpids/icmpids/rules"
)

// housekeepEvery is how many frames pass between two looks at the wall
// clock in the capture loop (a read timeout always looks).
const housekeepEvery = 256

// publishEvery is how often the capture loop publishes the engine's figures
// for metrics scrapes.
const publishEvery = time.Second

func newRunCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "run -i IFACE [flags]",
		Short: "Watch a network interface live and raise alerts while an attack is under way",
		Long: `Capture from a network interface with libpcap (or Linux AF_PACKET rings:
--capture-method afpacket, with --fanout sockets read in parallel) and
report ICMP attacks as they happen. Needs CAP_NET_RAW (root, or the capabilities the systemd unit
grants). By default only ICMP, ICMPv6 and IP fragments are captured (see
--bpf). Capture statistics (packets received, dropped by the kernel and by
the interface) are logged every --stats-interval and on exit.

Outputs never stall capture: each sits behind a bounded queue; when one is
full an alert is dropped (the oldest queued one for the EVE and text
outputs), counted and reported (log line, metric).

Signals: SIGINT or SIGTERM stops the sensor: open attacks are closed with
an end event and the output queues are flushed (at most 3 s after the
signal; what is left is counted as undelivered). SIGHUP
reopens the EVE file (for logrotate), makes the syslog output reconnect
(reading its TLS files again), and re-reads the configuration file: it
applies the rules and their thresholds (rules.*: open attacks carry on
under the new settings; a rule switched off ends its attacks),
log_level, output.eve_stats_interval and capture.stats_interval, and logs
every other changed key (capture, engine, outputs) as needing a restart.

--metrics-addr serves Prometheus metrics at http://ADDR/metrics.`,
		Example: `  icmpids run -i eth0
  icmpids run -i eth0 --format eve --eve /var/log/icmpids/eve.json
  icmpids run -i eth0 --syslog tls://siem.example.org:6514 --metrics-addr 127.0.0.1:9478
  icmpids run -i eth0 --bpf 'icmp or icmp6'`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runLive(cmd.Context())
		},
	}
	f := c.Flags()
	f.StringP("interface", "i", "", "network interface to capture on (required)")
	f.String("bpf", "", "capture filter (default: ICMP, ICMPv6 and all IP fragments, VLAN-tagged too)")
	f.Int("snaplen", 512, "bytes captured per packet (headers are enough)")
	f.Bool("promisc", true, "put the interface in promiscuous mode")
	f.Bool("immediate", true, "deliver packets as they arrive (libpcap immediate mode)")
	f.Int("buffer-size", 32<<20, "kernel capture buffer in bytes")
	f.Duration("stats-interval", time.Minute, "how often to log capture statistics (0: only on exit)")
	f.String("metrics-addr", "", "serve Prometheus metrics on this host:port at /metrics (default off)")
	f.String("capture-method", "pcap", "how to capture: pcap (libpcap) or afpacket (Linux AF_PACKET, TPACKET_V3)")
	f.Int("fanout", 1, "afpacket: sockets in one fanout group, each read by its own goroutine (0: one per CPU)")
	bind(a.v, f, map[string]string{
		"interface":      "capture.interface",
		"bpf":            "capture.bpf",
		"snaplen":        "capture.snaplen",
		"promisc":        "capture.promiscuous",
		"immediate":      "capture.immediate",
		"buffer-size":    "capture.buffer_size",
		"stats-interval": "capture.stats_interval",
		"metrics-addr":   "metrics.addr",
		"capture-method": "capture.method",
		"fanout":         "capture.fanout",
	})
	return c
}

func (a *app) runLive(ctx context.Context) error {
	cfg, err := loadConfig(a.v, a.configPath)
	if err != nil {
		return err
	}
	if cfg.Capture.Interface == "" {
		return usageErrorf("run: no interface: give -i IFACE (or capture.interface in the config)")
	}
	log := newLogger(cfg.LogLevel, a.stderr)
	bpf := cfg.Capture.BPF
	if bpf == "" {
		bpf = capture.DefaultBPFFor(cfg.Decode.VXLANPorts, cfg.Decode.GENEVEPorts, cfg.Decode.TeredoPorts)
	}
	src, readers, err := openLiveSource(cfg.Capture, bpf)
	if err != nil {
		if errors.Is(err, capture.ErrNoSuchInterface) || errors.Is(err, capture.ErrBadFilter) ||
			errors.Is(err, capture.ErrUnsupportedLink) || errors.Is(err, capture.ErrAFPacketUnsupported) {
			return configError{err}
		}
		return err
	}
	defer src.Close()

	// SIGHUP is taken before anything is wired, so that a HUP sent by
	// logrotate while the sensor starts is not fatal.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Metrics: the event counter and the ICMP type counter tap the
	// pipeline; the sinks' figures are read at scrape time, once the
	// sensor exists.
	var (
		m      *metrics.Metrics
		taps   []sensorTap
		wired  atomic.Pointer[sensor]
		server *metrics.Server
	)
	if cfg.Metrics.Addr != "" {
		m = metrics.New(version, rules.Names(), func() []output.SinkStats {
			if s := wired.Load(); s != nil {
				return s.sinkStats()
			}
			return nil
		})
		taps = append(taps, sensorTap{sink: m.Events(), observer: m.Observer()})
	}
	s, err := newSensor(ctx, cfg, a.stdout, log, true, taps...)
	if err != nil {
		return err
	}
	wired.Store(s)
	if m != nil {
		if server, err = m.Serve(cfg.Metrics.Addr); err != nil {
			s.close(detector.EndShutdown)
			return configError{fmt.Errorf("metrics.addr: %w", err)}
		}
		log.WithField("addr", "http://"+server.Addr()+"/metrics").Info("serving metrics")
	}
	if cfg.Output.EVEStatsInterval > 0 && s.eveFile == nil {
		log.Warn("output.eve_stats_interval is set but there is no EVE file (output.eve): no stats events")
	}
	if s.syslog != nil {
		log.WithField("collector", s.syslog.Target()).Info("sending alerts to syslog")
	}
	lp := &liveLoop{a: a, cfg: cfg, log: log, src: src, s: s, m: m, started: time.Now(), readers: readers, link: newLinkWatch(cfg.Capture.Interface, log)}
	if len(readers) > 1 {
		if lp.fronts, err = s.fronts(len(readers), cfg); err != nil {
			s.close(detector.EndShutdown)
			return err
		}
	}
	log.WithFields(logrus.Fields{"interface": cfg.Capture.Interface, "bpf": bpfField(log, cfg.Capture.BPF, bpf), "method": cfg.Capture.Method, "readers": max(len(readers), 1), "engines": s.engines()}).Info("capturing")

	runErr := lp.run(ctx, hup)

	closeErr := s.close(detector.EndShutdown)
	lp.publish(time.Now()) // the final figures, for a last scrape
	if server != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		server.Close(sctx)
		cancel()
	}
	logCaptureStats(log, src, "capture statistics at exit")
	s.logSummary("sensor stopped")
	if runErr != nil {
		return runErr
	}
	return closeErr
}

// liveLoop is the capture loop and what it does between packets: it ticks
// the engine when traffic stops, publishes figures for metrics, writes EVE
// stats events, logs statistics and handles SIGHUP. Everything runs on
// the capture goroutine, which owns the engine.
type liveLoop struct {
	a       *app
	cfg     Config
	log     *logrus.Logger
	src     liveSource
	s       *sensor
	m       *metrics.Metrics
	started time.Time
	// readers (AF_PACKET fanout, more than one) are read by goroutines of
	// their own, each feeding its shard front; the loop then only
	// housekeeps.
	readers []frameReader
	fronts  []*shard.Front

	nextPublish, nextStats, nextEVEStats, nextLink time.Time
	link                                           *linkWatch
}

func (lp *liveLoop) run(ctx context.Context, hup <-chan os.Signal) error {
	lp.a.startupDone()
	now := time.Now()
	lp.schedule(now)
	if len(lp.fronts) > 0 {
		return lp.runReaders(ctx, hup)
	}
	n, failures := 0, 0
	for ctx.Err() == nil {
		fr, err := lp.src.Next()
		switch {
		case err == nil:
			failures = 0
			lp.s.engine.HandleFrame(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length)
			if n++; n%housekeepEvery != 0 {
				continue
			}
		case errors.Is(err, capture.ErrTimeout):
			// No traffic: advance packet time from the wall clock so that
			// quiet attacks end on time.
			lp.s.engine.Advance(time.Now())
		default:
			// A link flap or a NIC reset: ride it out.
			if err := lp.link.retry(ctx, err, failures); err != nil {
				return fmt.Errorf("capture on %s: %w", lp.cfg.Capture.Interface, err)
			}
			failures++
			lp.s.engine.Advance(time.Now())
		}
		lp.housekeep(time.Now(), hup)
	}
	return nil
}

// runReaders reads every fanout socket on its own goroutine, each feeding
// its own shard front (which routes by victim, ticks the engines when its
// socket is idle, and hands its batches to the workers), while this
// goroutine ticks the housekeeping every read timeout: figures, stats,
// SIGHUP. It returns when ctx ends or a reader fails, once every reader
// has returned.
func (lp *liveLoop) runReaders(ctx context.Context, hup <-chan os.Signal) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(lp.readers))
	var wg sync.WaitGroup
	for i, r := range lp.readers {
		wg.Add(1)
		go func(r frameReader, f *shard.Front) {
			defer wg.Done()
			errc <- readFront(rctx, r, f, lp.link)
		}(r, lp.fronts[i])
	}
	tick := time.NewTicker(lp.cfg.Capture.ReadTimeout)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			break loop
		case now := <-tick.C:
			lp.housekeep(now, hup)
		}
	}
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("capture on %s: %w", lp.cfg.Capture.Interface, err)
	}
	return nil
}

// readFront feeds f from r until ctx ends (nil) or a read fails.
func readFront(ctx context.Context, r frameReader, f *shard.Front, link *linkWatch) error {
	failures := 0
	for ctx.Err() == nil {
		fr, err := r.Next()
		switch {
		case err == nil:
			failures = 0
			f.HandleFrame(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length)
		case errors.Is(err, capture.ErrTimeout):
			f.Advance(time.Now()) // idle socket: tick the engines, hand over what waits
		case errors.Is(err, io.EOF):
			return nil
		default:
			if err := link.retry(ctx, err, failures); err != nil {
				return err
			}
			failures++
			f.Advance(time.Now())
		}
	}
	return nil
}

// frameReader is one stream of live frames (a capture, or one socket of
// an AF_PACKET fanout group).
type frameReader interface {
	Next() (capture.Frame, error)
}

// liveSource is a live capture the loop reads and reports on: libpcap or
// AF_PACKET.
type liveSource interface {
	frameReader
	Stats() (capture.Stats, error)
	Close()
}

// openLiveSource opens the capture capture.method names. With AF_PACKET
// fanout it also returns one reader per socket.
func openLiveSource(c CaptureConfig, bpf string) (liveSource, []frameReader, error) {
	lc := capture.LiveConfig{
		Interface:   c.Interface,
		SnapLen:     c.SnapLen,
		Promiscuous: c.Promiscuous,
		Immediate:   c.Immediate,
		BufferSize:  c.BufferSize,
		BPF:         bpf,
		ReadTimeout: c.ReadTimeout,
	}
	if c.Method != "afpacket" {
		src, err := capture.OpenLive(lc)
		if err != nil {
			return nil, nil, err
		}
		return src, nil, nil
	}
	n := c.Fanout
	if n == 0 {
		n = runtime.GOMAXPROCS(0) // the CPUs this process may use (affinity, cgroup limit)
	}
	src, err := capture.OpenAFPacket(capture.AFPacketConfig{LiveConfig: lc, Fanout: n})
	if err != nil {
		return nil, nil, fmt.Errorf("capture.method afpacket: %w", err)
	}
	var readers []frameReader
	if n > 1 {
		for _, s := range src.Sockets() {
			readers = append(readers, s)
		}
	}
	return src, readers, nil
}

// fronts returns n dispatchers feeding the sensor's engines, one per
// reading goroutine. A single engine goes behind a one-worker shard set
// (its rules then get the taps' observers as a set's engines do).
func (s *sensor) fronts(n int, cfg Config) ([]*shard.Front, error) {
	set, ok := s.engine.(*shard.Set)
	if !ok {
		eng, ok := s.engine.(*detector.Engine)
		if !ok {
			return nil, fmt.Errorf("capture.fanout: cannot feed pipeline %T from several readers", s.engine)
		}
		var err error
		if set, err = shard.Single(shard.Config{Tick: cfg.Engine.Tick, Decode: &cfg.Decode}, eng); err != nil {
			return nil, err
		}
		s.engine = set
		s.shared = s.observers
	}
	fs := make([]*shard.Front, n)
	for i := range fs {
		f, err := set.Front()
		if err != nil {
			return nil, fmt.Errorf("capture.fanout: %w", err)
		}
		fs[i] = f
	}
	return fs, nil
}

// schedule sets the next due times from now.
func (lp *liveLoop) schedule(now time.Time) {
	lp.nextPublish = now
	lp.nextStats, lp.nextEVEStats = time.Time{}, time.Time{}
	if d := lp.cfg.Capture.StatsInterval; d > 0 {
		lp.nextStats = now.Add(d)
	}
	if d := lp.cfg.Output.EVEStatsInterval; d > 0 && lp.s.eveFile != nil {
		lp.nextEVEStats = now.Add(d)
	}
}

func (lp *liveLoop) housekeep(now time.Time, hup <-chan os.Signal) {
	select {
	case <-hup:
		lp.reload(now)
	default:
	}
	if !now.Before(lp.nextLink) {
		lp.nextLink = now.Add(time.Second)
		lp.link.check(now)
	}
	if lp.m != nil && !now.Before(lp.nextPublish) {
		lp.publish(now)
		lp.nextPublish = now.Add(publishEvery)
	}
	if !lp.nextStats.IsZero() && !now.Before(lp.nextStats) {
		lp.nextStats = now.Add(lp.cfg.Capture.StatsInterval)
		logCaptureStats(lp.log, lp.src, "capture statistics")
		lp.s.logSummary("engine statistics")
	}
	if !lp.nextEVEStats.IsZero() && !now.Before(lp.nextEVEStats) {
		lp.nextEVEStats = now.Add(lp.cfg.Output.EVEStatsInterval)
		lp.eveStats(now)
	}
}

// captureStats returns the kernel's counters, nil if unavailable.
func (lp *liveLoop) captureStats() *output.CaptureStats {
	st, err := lp.src.Stats()
	if err != nil {
		return nil
	}
	up, downs := lp.link.state()
	return &output.CaptureStats{Packets: st.Received, Drops: st.KernelDropped, IfDrops: st.IfDropped, LinkDowns: downs, LinkUp: up}
}

// publish hands metrics a copy of the engine's figures.
func (lp *liveLoop) publish(now time.Time) {
	if lp.m == nil {
		return
	}
	lp.m.Publish(&metrics.Snapshot{
		Time:    now,
		Engine:  lp.s.engine.Stats(),
		Types:   lp.m.Observer().Counts(),
		Capture: lp.captureStats(),
	})
}

// eveStats writes one EVE stats event to the EVE file.
func (lp *liveLoop) eveStats(now time.Time) {
	f := lp.s.eveFile
	f.EmitStats(&output.StatsEvent{
		Time:          now,
		Uptime:        now.Sub(lp.started),
		Engine:        lp.s.engine.Stats(),
		Capture:       lp.captureStats(),
		AlertsDropped: lp.s.alertsDropped(),
	})
	if err := f.Flush(); err != nil {
		lp.log.WithError(err).Warn("writing the EVE stats event failed")
	}
}

// reload serves SIGHUP: reopen the EVE file, reconnect syslog, and apply
// what can change in a running sensor from the configuration file.
func (lp *liveLoop) reload(now time.Time) {
	log := lp.log.WithField("signal", "SIGHUP")
	if f := lp.s.eveFile; f != nil {
		if err := f.Reopen(); err != nil {
			log.WithError(err).Error("reopening the EVE file failed: still writing to the old one")
		} else {
			log.WithField("path", f.Path()).Info("EVE file reopened")
		}
	}
	if lp.s.syslog != nil {
		lp.s.syslog.Reconnect()
	}
	if lp.a.configPath == "" {
		return
	}
	cfg, err := loadConfig(lp.a.v, lp.a.configPath)
	if err != nil {
		log.WithError(err).Error("configuration not reloaded: keeping the running one")
		return
	}
	applied, restart := reloadDiff(lp.cfg, cfg)
	if !reflect.DeepEqual(lp.cfg.Rules, cfg.Rules) {
		if err := lp.s.reloadRules(cfg.Rules); err != nil {
			log.WithError(err).Error("rules not reloaded: keeping the running ones")
		} else {
			lp.cfg.Rules = cfg.Rules
		}
	}
	if lvl, err := logrus.ParseLevel(cfg.LogLevel); err == nil {
		lp.log.SetLevel(lvl)
	}
	lp.cfg.LogLevel = cfg.LogLevel
	lp.cfg.Output.EVEStatsInterval = cfg.Output.EVEStatsInterval
	lp.cfg.Capture.StatsInterval = cfg.Capture.StatsInterval
	lp.schedule(now)
	f := logrus.Fields{"config": lp.a.configPath}
	if len(applied) > 0 {
		f["applied"] = applied
	}
	if len(restart) > 0 {
		f["need_restart"] = restart
		log.WithFields(f).Warn("configuration reloaded; some changed keys take effect only at restart")
		return
	}
	log.WithFields(f).Info("configuration reloaded")
}

// reloadable are the keys a SIGHUP applies to a running sensor, besides
// every rules.* key (rules and thresholds; open attacks carry on).
var reloadable = map[string]bool{
	"log_level":                 true,
	"output.eve_stats_interval": true,
	"capture.stats_interval":    true,
}

// reloadDiff lists the keys that differ between old and new: those that
// SIGHUP applies, and those that need a restart.
func reloadDiff(old, new Config) (applied, restart []string) {
	o, n := flatten(old), flatten(new)
	for _, k := range slices.Sorted(maps.Keys(n)) {
		if reflect.DeepEqual(o[k], n[k]) {
			continue
		}
		if reloadable[k] || strings.HasPrefix(k, "rules.") {
			applied = append(applied, k)
		} else {
			restart = append(restart, k)
		}
	}
	return applied, restart
}

func logCaptureStats(log *logrus.Logger, src liveSource, what string) {
	st, err := src.Stats()
	if err != nil {
		log.WithError(err).Warn("capture statistics unavailable")
		return
	}
	log.WithFields(logrus.Fields{
		"received":       st.Received,
		"kernel_dropped": st.KernelDropped,
		"if_dropped":     st.IfDropped,
	}).Info(what)
}

// bpfField is what the "capturing" line says of the filter: the one
// configured, or "default" for the built-in one (2,000-odd characters, no
// first journal line to read), which is logged whole at debug level.
func bpfField(log *logrus.Logger, configured, used string) string {
	if configured != "" {
		return configured
	}
	log.WithField("bpf", used).Debug("default capture filter")
	return "default"
}
