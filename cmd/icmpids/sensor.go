package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/shard"
	"github.com/icmpids/icmpids/output"
	"github.com/icmpids/icmpids/output/hook"
	"github.com/icmpids/icmpids/rules"
)

// sensor is one wired detection pipeline: rules → engine → sinks.
type sensor struct {
	stop context.Context // the command's signal context
	// grace bounds the flush at close after a signal (signalGrace,
	// shutdownGrace).
	grace time.Duration
	// meta is what events say of the sensor and its input; metas set it
	// on the outputs that write it.
	meta    output.Meta
	metas   []func(output.Meta)
	engine  pipeline
	log     *logrus.Logger
	closers []func(context.Context) error
	queues  []*output.Queue
	started time.Time
	// ops: queueNames[i] names queues[i] for metrics; eveFile is the EVE
	// file sink (SIGHUP reopens it); syslog the syslog sink (see ops_syslog.go).
	queueNames []string
	eveFile    *output.EVEFile
	syslog     *output.Syslog
	// observers are the taps' never-reporting rules, appended to every
	// rule set; shared wraps them for several engines (workers > 1).
	observers, shared []detector.Rule
	// fleet holds the outputs of fleet.go (Redis, Kafka).
	fleet fleetOutputs
	// hooks are output.exec and output.webhook (hooks.go).
	hooks []*hook.Output
}

func newLogger(level string, w io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(w)
	log.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true, TimestampFormat: time.RFC3339})
	if lvl, err := logrus.ParseLevel(level); err == nil {
		log.SetLevel(lvl)
	}
	return log
}

// isTerminal tells whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newSensor wires the pipeline. live selects non-blocking sinks (bounded
// queues that drop and count when full, so output never stalls capture);
// a replay writes synchronously and loses nothing. taps (see sensorTap)
// watch the pipeline: each tap's sink gets every event before the outputs,
// its observer every packet the rules see.
// stop is the command's signal context: once done, no output waits any
// more (a blocking replay sink drops instead).
func newSensor(stop context.Context, cfg Config, stdout io.Writer, log *logrus.Logger, live bool, taps ...sensorTap) (*sensor, error) {
	s := &sensor{log: log, started: time.Now(), stop: stop, grace: signalGrace}
	if live {
		s.grace = shutdownGrace
	}
	var sinks []detector.Sink
	format := cfg.Output.Format
	if format == "auto" {
		format = "eve"
		if isTerminal(stdout) {
			format = "text"
		}
	}
	switch format {
	case "text":
		sinks = append(sinks, output.NewText(stdout))
	case "eve":
		e := output.NewEVE(stdout)
		sinks = append(sinks, e)
		s.metas = append(s.metas, e.SetMeta)
	}
	if cfg.Output.EVE != "" {
		f, err := output.OpenEVEFile(cfg.Output.EVE)
		if err != nil {
			return nil, configError{fmt.Errorf("output.eve: %w", err)}
		}
		sinks = append(sinks, f)
		s.metas = append(s.metas, f.SetMeta)
		s.eveFile = f
		s.closers = append(s.closers, func(context.Context) error { return f.Close() })
	}
	if live {
		for i, sk := range sinks {
			q := output.NewQueue(sk, cfg.Output.QueueSize, log.WithField("component", "output"))
			sinks[i] = q
			s.queues = append(s.queues, q)
			s.queueNames = append(s.queueNames, sinkName(sk))
			s.closers = append([]func(context.Context) error{q.Close}, s.closers...)
		}
	}
	// The hooks close before syslog: a collector that is down must not
	// eat the deadline of an RTBH withdrawal on the last end events.
	hs, err := s.addHooks(cfg, live)
	if err != nil {
		return nil, err
	}
	sinks = append(sinks, hs...)
	if cfg.Output.Syslog != "" {
		// The syslog sink has its own queue: it drops and counts in live
		// mode, and blocks (loses nothing) in a replay.
		sl, err := s.addSyslog(cfg, live)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, sl)
		s.metas = append(s.metas, s.syslog.SetMeta)
	}
	fl, err := s.addFleetOutputs(cfg, live)
	if err != nil {
		return nil, err
	}
	sinks = append(sinks, fl...)
	s.meta = output.Meta{Host: sensorName(cfg)}
	if live {
		s.meta.InIface = cfg.Capture.Interface
	}
	s.setMeta(s.meta)
	rs, err := rules.Enabled(cfg.Rules)
	if err != nil {
		return nil, configError{err}
	}
	var tapped []detector.Sink
	for _, t := range taps {
		if t.sink != nil {
			tapped = append(tapped, t.sink)
		}
		if t.observer != nil {
			s.observers = append(s.observers, t.observer)
		}
	}
	sinks = append(tapped, sinks...)
	var sink detector.Sink = output.Multi(sinks)
	if cfg.Engine.Workers == 0 {
		// One per CPU the process may use (GOMAXPROCS follows the
		// affinity mask and the cgroup's CPU limit).
		cfg.Engine.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Engine.Workers != 1 {
		for _, o := range s.observers {
			s.shared = append(s.shared, shard.Shared(o))
		}
		set, err := newShards(cfg, sink, rs, s.shared, s.fleet.observe)
		if err != nil {
			return nil, configError{err}
		}
		s.engine = set
		return s, nil
	}
	eng, err := detector.New(cfg.Engine, sink, append(rs, s.observers...)...)
	if err != nil {
		return nil, configError{err}
	}
	s.fleet.observe(eng)
	s.engine = eng
	return s, nil
}

// pipeline is what the capture loops drive: one engine, or several
// sharing the targets (engine.workers, detector/shard).
type pipeline interface {
	HandleFrame(lt detector.LinkType, data []byte, ts time.Time, wireLen int)
	Advance(now time.Time)
	Close(reason string)
	Stats() detector.Stats
}

// newShards builds engine.workers engines, each with its own rules (the
// first engine gets first, which the caller built), behind one dispatcher.
// Taps' observers are shared by all engines (serialized). Echo requests to
// broadcast addresses and groups, by the definition of the enabled rule
// that has one (shard.Grouper: smurf), go to their source's engine.
func newShards(cfg Config, sink detector.Sink, first, shared []detector.Rule, made func(*detector.Engine)) (*shard.Set, error) {
	var group, bySource func(p *detector.Packet) bool
	for _, r := range first {
		if g, ok := r.(shard.Grouper); ok && group == nil {
			group = g.Group
		}
		if g, ok := r.(shard.SourceRouter); ok && bySource == nil {
			bySource = g.RoutesBySource
		}
	}
	// The caps are the sensor's, not each engine's: every engine gets its
	// share of max_attacks and of the rules' table caps, so that memory
	// under a flood of new keys does not grow with the engines.
	owners := targetOwners(cfg.Engine.Workers)
	ecfg := cfg.Engine
	ecfg.MaxAttacks = rules.EngineCap(ecfg.MaxAttacks, owners)
	rcfg := cfg.Rules.PerEngine(owners)
	return shard.New(shard.Config{Workers: cfg.Engine.Workers, Tick: cfg.Engine.Tick, Group: group, BySource: bySource, Decode: &cfg.Decode}, sink,
		func(i int, sink detector.Sink) (*detector.Engine, error) {
			rs, err := rules.Enabled(rcfg)
			if err != nil {
				return nil, err
			}
			eng, err := detector.New(ecfg, sink, append(rs, shared...)...)
			if err == nil {
				made(eng)
			}
			return eng, err
		})
}

// targetOwners is how many of workers engines own targets: with one
// producer and several workers the dispatcher's own engine owns none
// (detector/shard). Live capture with --fanout gives every engine a
// share: its caps then sum to a little more than the configuration's
// (workers/(workers-1) times).
func targetOwners(workers int) int {
	return max(1, workers-1)
}

// reloadRules swaps in rules built from cfg on every engine (SIGHUP):
// open attacks carry on under the rule of the same name, a disabled rule's
// attacks end (detector.Engine.SetRules). Taps' observers stay.
func (s *sensor) reloadRules(cfg rules.Config) error {
	switch eng := s.engine.(type) {
	case *detector.Engine:
		rs, err := rules.Enabled(cfg)
		if err != nil {
			return err
		}
		eng.SetRules(append(rs, s.observers...)...)
		return nil
	case *shard.Set:
		per := cfg.PerEngine(targetOwners(eng.Workers()))
		return eng.SetRules(func(int) ([]detector.Rule, error) {
			rs, err := rules.Enabled(per)
			if err != nil {
				return nil, err
			}
			return append(rs, s.shared...), nil
		})
	}
	return fmt.Errorf("reloading rules: unknown pipeline %T", s.engine)
}

// closeDeadline bounds how long close flushes the outputs.
const closeDeadline = 10 * time.Second

// signalGrace is how long an interrupted replay still flushes its outputs
// after the signal: local files take milliseconds, a collector that reads
// takes a queue's worth of alerts in far less, and one that does not read
// must not hold the exit (what it did not take is counted undelivered).
const signalGrace = time.Second

// shutdownGrace is the same for a live sensor and the correlator, which
// stop only on a signal and whose last events are the end events of the
// attacks still open: a little longer, for a collector or broker that is
// slow but reads.
const shutdownGrace = 3 * time.Second

// close ends the open attacks and flushes the sinks: at most closeDeadline,
// and at most grace after a signal (before or during the flush).
func (s *sensor) close(reason string) error {
	s.engine.Close(reason)
	ctx, cancel := context.WithTimeout(context.Background(), closeDeadline)
	defer cancel()
	if s.stop != nil {
		flushed := make(chan struct{})
		defer close(flushed)
		go func() {
			select {
			case <-s.stop.Done():
			case <-flushed:
				return
			}
			t := time.NewTimer(s.grace)
			defer t.Stop()
			select {
			case <-t.C:
				cancel()
			case <-flushed:
			}
		}()
	}
	var errs []error
	for _, c := range s.closers {
		if err := c(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// engines is the number of detection engines (engine.workers resolved).
func (s *sensor) engines() int {
	if set, ok := s.engine.(*shard.Set); ok {
		return set.Workers()
	}
	return 1
}

// logSummary writes the engine's figures as one log line.
func (s *sensor) logSummary(what string) {
	st := s.engine.Stats()
	f := logrus.Fields{
		"frames":          st.Frames,
		"ipv4":            st.IPv4,
		"ipv6":            st.IPv6,
		"icmp":            st.ICMP,
		"icmpv6":          st.ICMPv6,
		"fragments":       st.Fragments,
		"not_ip":          st.Decode[detector.ReasonNotIP],
		"decode_errors":   st.DecodeErrors(),
		"attacks_started": st.AttacksStarted,
		"attacks_ended":   st.AttacksEnded,
		"engines":         s.engines(),
		"elapsed":         time.Since(s.started).Round(time.Millisecond).String(),
	}
	if n := st.DecodeErrors(); n > 0 {
		var parts []string
		for r := detector.ReasonUnsupportedLink; r < detector.NumReasons; r++ {
			if c := st.Decode[r]; c > 0 {
				parts = append(parts, fmt.Sprintf("%s:%d", r, c))
			}
		}
		f["decode_error_reasons"] = strings.Join(parts, ",")
	}
	var evicted uint64
	for _, t := range st.Tables {
		evicted += t.Evicted
	}
	if evicted > 0 || st.PendingEvicted > 0 || st.AttacksDropped > 0 {
		f["evicted"] = evicted
		f["pending_evicted"] = st.PendingEvicted
		f["attacks_dropped"] = st.AttacksDropped
	}
	for _, q := range s.queues {
		if d := q.Dropped(); d > 0 {
			f["events_dropped"] = d
		}
	}
	if s.syslog != nil {
		st := s.syslog.Stats()
		f["syslog_sent"] = st.Sent
		if n := st.Dropped + st.Undelivered; n > 0 {
			f["syslog_dropped"] = n
		}
	}
	for _, st := range s.fleet.stats() {
		f[st.Name+"_sent"] = st.Sent
		if n := st.Dropped + st.Undelivered + st.Rejected; n > 0 {
			f[st.Name+"_dropped"] = n
		}
	}
	s.log.WithFields(f).Info(what)
}

// setMeta tells every output which sensor and input later events come
// from.
func (s *sensor) setMeta(m output.Meta) {
	s.meta = m
	for _, set := range s.metas {
		set(m)
	}
}

// sensorName is sensor_name, or this machine's host name.
func sensorName(cfg Config) string {
	if cfg.SensorName != "" {
		return cfg.SensorName
	}
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
