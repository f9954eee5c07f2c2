package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/output"
	"github.com/icmpids/icmpids/output/report"
)

// replayOptions are the replay command's own flags.
type replayOptions struct {
	bpf          string
	since, until string
	progress     bool
	quiet        bool
	summary      bool
	summaryJSON  string
	reportPath   string
}

func newReplayCmd(a *app) *cobra.Command {
	var o replayOptions
	cmd := &cobra.Command{
		Use:   "replay [flags] FILE|DIR...",
		Short: "Replay capture files in packet time and report the attacks in them",
		Long: `Replay capture files (pcap or pcapng, gzip-compressed or not; "-" reads
standard input) through the detector in packet time: a one-hour capture
replays in seconds and raises the same alerts, stamped with the same times,
as the live sensor would have. Every attack still open when the input ends
is closed with an end event. --workers engines (default: one per CPU) share
the work; the alerts are the same, in the same order, whatever their number.

Files and directories (walked recursively) may be mixed. All files are
merged into one stream in packet-time order, whatever their names, so a
rotated capture set (tcpdump -G / -C) or captures taken side by side replay
as the sensor would have seen them; packets of equal time keep the order
of the files (directory entries in natural order: cap.pcap2 before
cap.pcap10).

Bad input: a file named on the command line that cannot be opened or is
not a capture stops the replay before it starts (exit 2). A file found in a
directory that is not a capture (notes, checksums, an empty file) is
skipped with a warning. A file that is damaged (cut short, corrupt) is
reported in one line naming it; what came before the damage still counts,
the other files are still read, and the exit status is 1.

Output: alerts own stdout (--format). The progress line (files, bytes,
packets, packets/s, time left) and the summary are for the analyst and go
to stderr, by default only when stderr is a terminal. --summary-json writes
the summary for scripts ("-": stdout, with --format none); --report writes
a self-contained HTML report with a timeline of the capture and its
attacks.`,
		Example: `  icmpids replay capture.pcap
  icmpids replay --report incident.html --summary-json incident.json /evidence/captures/
  icmpids replay --bpf 'host 10.0.0.5' --since 2026-11-27T10:00:00Z --until 2026-11-27T11:00:00Z day.pcap.gz
  icmpids replay --format none --summary-json - captures/ | jq '.attacks[].target'
  tcpdump -w - -i eth0 icmp | icmpids replay -`,
		Args: argsUsage(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("summary") {
				o.summary = isTerminal(a.stderr) && !o.quiet
			}
			if !cmd.Flags().Changed("progress") {
				o.progress = isTerminal(a.stderr)
			}
			if o.quiet {
				o.progress = false
			}
			return a.replay(cmd.Context(), args, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.bpf, "bpf", "", "replay only the frames that match this BPF expression (libpcap syntax)")
	f.StringVar(&o.since, "since", "", "replay only packets at or after this packet time (RFC 3339)")
	f.StringVar(&o.until, "until", "", "replay only packets before this packet time (RFC 3339)")
	f.BoolVar(&o.progress, "progress", false, "show progress on stderr (default: when stderr is a terminal)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress, no summary on stderr, warnings and errors only")
	f.BoolVar(&o.summary, "summary", false, "print the summary on stderr at the end (default: when stderr is a terminal)")
	f.StringVar(&o.summaryJSON, "summary-json", "", `write the summary as JSON to this file ("-": stdout, needs --format none)`)
	f.StringVar(&o.reportPath, "report", "", "write a self-contained HTML report to this file")
	return cmd
}

// replayInput is what narrows a replay: time bounds and a BPF filter.
type replayInput struct {
	since, until time.Time
	filter       *capture.Filter
	filteredOut  uint64
	linkErrs     map[uint16]bool
}

func parseReplayInput(o replayOptions) (*replayInput, error) {
	in := &replayInput{linkErrs: map[uint16]bool{}}
	var err error
	if o.since != "" {
		if in.since, err = time.Parse(time.RFC3339Nano, o.since); err != nil {
			return nil, fmt.Errorf("--since %q: not an RFC 3339 time (like 2026-11-27T10:00:00Z)", o.since)
		}
	}
	if o.until != "" {
		if in.until, err = time.Parse(time.RFC3339Nano, o.until); err != nil {
			return nil, fmt.Errorf("--until %q: not an RFC 3339 time (like 2026-11-27T11:00:00Z)", o.until)
		}
	}
	if !in.since.IsZero() && !in.until.IsZero() && !in.until.After(in.since) {
		return nil, fmt.Errorf("--until %s is not after --since %s", o.until, o.since)
	}
	if o.bpf != "" {
		if in.filter, err = capture.NewFilter(o.bpf); err != nil {
			return nil, fmt.Errorf("--bpf: %w", err)
		}
	}
	return in, nil
}

// pass tells whether fr is replayed. A link type the BPF expression does
// not compile for is reported once and its frames are left out.
func (in *replayInput) pass(fr *capture.Frame) (bool, error) {
	if !in.since.IsZero() && fr.Timestamp.Before(in.since) ||
		!in.until.IsZero() && !fr.Timestamp.Before(in.until) {
		in.filteredOut++
		return false, nil
	}
	if in.filter != nil {
		ok, err := in.filter.Match(fr)
		if !ok {
			in.filteredOut++
		}
		return ok, err
	}
	return true, nil
}

func (in *replayInput) summary(o replayOptions) *report.Filter {
	if o.bpf == "" && in.since.IsZero() && in.until.IsZero() {
		return nil
	}
	return &report.Filter{BPF: o.bpf, Since: in.since.UTC(), Until: in.until.UTC(), FilteredOut: in.filteredOut}
}

func (a *app) replay(ctx context.Context, paths []string, o replayOptions) error {
	in, err := parseReplayInput(o)
	if err != nil {
		return configError{err}
	}
	cfg, err := loadConfig(a.v, a.configPath)
	if err != nil {
		return err
	}
	if o.summaryJSON == "-" && cfg.Output.Format != "none" {
		return configError{errors.New(`--summary-json -: stdout carries the alerts; add --format none to get the summary there`)}
	}
	var prog *progress
	log := newLogger(cfg.LogLevel, clearingWriter{a.stderr, &prog})
	if o.quiet && log.GetLevel() > logrus.WarnLevel {
		log.SetLevel(logrus.WarnLevel)
	}
	// Open every input first: a bad name is a usage error, before any output.
	set, err := capture.OpenSetContext(ctx, paths, func(path string) {
		log.WithField("file", path).Info("waiting for a writer on the FIFO (SIGINT or SIGTERM ends the wait)")
	})
	if errors.Is(err, capture.ErrInterrupted) {
		return err
	}
	if err != nil {
		return configError{err}
	}
	defer set.Close()
	// Create the report files now, so a bad path fails before the replay.
	var jsonOut, htmlOut *os.File
	for _, out := range []struct {
		path string
		f    **os.File
		flag string
	}{{o.summaryJSON, &jsonOut, "--summary-json"}, {o.reportPath, &htmlOut, "--report"}} {
		if out.path == "" || out.path == "-" {
			continue
		}
		f, err := os.Create(out.path)
		if err != nil {
			return configError{fmt.Errorf("%s: %w", out.flag, err)}
		}
		defer f.Close()
		*out.f = f
	}
	for _, err := range set.Skipped() {
		log.Warnf("skipped: %v", err)
	}

	collector := report.NewCollector()
	var timeline *report.Timeline
	if htmlOut != nil {
		timeline = report.NewTimeline()
	}
	tap := sensorTap{sink: detector.SinkFunc(func(ev *detector.Event) {
		prog.clear() // the alert may go to the same terminal
		collector.Emit(ev)
	})}
	if timeline != nil {
		tap.observer = timeline
	}
	s, err := newSensor(ctx, cfg, a.stdout, log, false, tap)
	if err != nil {
		return err
	}
	if o.progress {
		prog = newProgress(a.stderr, set)
	}

	var failed []error
	interrupted := false
	var first, last, nextStats time.Time
	var statsEvery time.Duration
	if s.eveFile != nil {
		statsEvery = cfg.Output.EVEStatsInterval
	}
	a.startupDone()
	for n := 0; ; n++ {
		if n%progressEvery == 0 {
			if ctx.Err() != nil {
				interrupted = true
				break
			}
			prog.update()
		}
		fr, err := set.NextRef()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if ctx.Err() != nil { // a stream closed by the signal
				interrupted = true
				break
			}
			log.Error(err.Error())
			failed = append(failed, err)
			continue
		}
		if path := set.CurrentPath(); path != s.meta.CaptureFile {
			m := s.meta
			m.CaptureFile = path
			s.setMeta(m)
		}
		ok, err := in.pass(fr)
		if err != nil && !in.linkErrs[fr.LinkType] {
			in.linkErrs[fr.LinkType] = true
			log.Errorf("%v; frames of link type %d are left out", err, fr.LinkType)
			failed = append(failed, err)
		}
		if !ok {
			continue
		}
		if first.IsZero() {
			first = fr.Timestamp
			nextStats = first.Add(statsEvery)
		}
		last = fr.Timestamp
		s.engine.HandleFrame(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length)
		if statsEvery > 0 && !fr.Timestamp.Before(nextStats) {
			// EVE stats in packet time, as the live sensor would have
			// written them at that moment.
			for !fr.Timestamp.Before(nextStats) {
				nextStats = nextStats.Add(statsEvery)
			}
			s.eveFile.EmitStats(&output.StatsEvent{Time: fr.Timestamp, Uptime: fr.Timestamp.Sub(first),
				Engine: s.engine.Stats(), AlertsDropped: s.alertsDropped()})
		}
	}
	reason := detector.EndInputEnd
	if interrupted {
		reason = detector.EndShutdown
	}
	if err := s.close(reason); err != nil {
		failed = append(failed, err)
	}
	prog.finish()
	prog = nil

	sum := report.Build(report.Inputs{
		Tool:    "icmpids " + version,
		Stats:   s.engine.Stats(),
		Files:   summaryFiles(set),
		Filter:  in.summary(o),
		First:   first,
		Last:    last,
		Elapsed: time.Since(s.started),
	}, collector.Attacks(), timeline)
	sum.AttacksOmitted = collector.Omitted()
	if o.summary {
		if err := report.WriteText(a.stderr, sum); err != nil {
			failed = append(failed, fmt.Errorf("summary: %w", err))
		}
	} else {
		s.logSummary(fmt.Sprintf("replayed %d file(s)", sum.Capture.FilesRead))
	}
	if o.summaryJSON != "" {
		var w io.Writer = a.stdout
		if jsonOut != nil {
			w = jsonOut
		}
		if err := writeBuffered(w, func(w io.Writer) error { return report.WriteJSON(w, sum) }); err != nil {
			failed = append(failed, fmt.Errorf("--summary-json %s: %w", o.summaryJSON, err))
		} else if jsonOut != nil {
			if err := jsonOut.Close(); err != nil {
				failed = append(failed, fmt.Errorf("--summary-json %s: %w", o.summaryJSON, err))
			}
		}
	}
	if htmlOut != nil {
		if err := writeBuffered(htmlOut, func(w io.Writer) error { return report.WriteHTML(w, sum) }); err != nil {
			failed = append(failed, fmt.Errorf("--report %s: %w", o.reportPath, err))
		} else if err := htmlOut.Close(); err != nil {
			failed = append(failed, fmt.Errorf("--report %s: %w", o.reportPath, err))
		}
	}
	if interrupted {
		return errors.New("replay interrupted")
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d problem(s) while replaying; the first: %w", len(failed), failed[0])
	}
	return nil
}

// writeBuffered runs write through a buffer and flushes it.
func writeBuffered(w io.Writer, write func(io.Writer) error) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := write(bw); err != nil {
		return err
	}
	return bw.Flush()
}
