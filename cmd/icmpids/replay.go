package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/detector"
)

func newReplayCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "replay [flags] FILE...",
		Short: "Replay pcap/pcapng files in packet time and report the attacks in them",
		Long: `Replay capture files (pcap or pcapng, gzip-compressed or not; "-" reads
standard input) through the detector in packet time: a one-hour capture
replays in seconds and raises the same alerts, stamped with the same times,
as the live sensor would have. Files are read in the order given. Every
attack still open when the input ends is closed with an end event.

A file that cannot be opened or is not a capture stops the replay before it
starts (exit 2). A file that is cut short is reported; the alerts found
before the damage still come out, the remaining files are still read, and
the exit status is 1.`,
		Example: `  icmpids replay capture.pcap
  icmpids replay --format eve day1.pcapng day2.pcap.gz > alerts.json
  tcpdump -w - -i eth0 icmp | icmpids replay -`,
		Args: argsUsage(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.replay(cmd.Context(), args)
		},
	}
}

func (a *app) replay(ctx context.Context, paths []string) error {
	cfg, err := loadConfig(a.v, a.configPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, a.stderr)
	// Open every file first: a bad name is a usage error, before any output.
	readers := make([]*capture.FileReader, 0, len(paths))
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	for _, p := range paths {
		r, err := capture.OpenFile(p)
		if err != nil {
			return configError{err}
		}
		readers = append(readers, r)
	}
	s, err := newSensor(cfg, a.stdout, log, false)
	if err != nil {
		return err
	}
	var failed []error
	interrupted := false
files:
	for _, r := range readers {
		for n := 0; ; n++ {
			if n&4095 == 0 && ctx.Err() != nil {
				interrupted = true
				break files
			}
			fr, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					log.Error(err.Error())
					failed = append(failed, err)
				}
				break
			}
			s.engine.HandleFrame(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length)
		}
	}
	reason := detector.EndInputEnd
	if interrupted {
		reason = detector.EndShutdown
	}
	if err := s.close(reason); err != nil {
		failed = append(failed, err)
	}
	s.logSummary(fmt.Sprintf("replayed %d file(s)", len(readers)))
	if interrupted {
		return errors.New("replay interrupted")
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d problem(s) while replaying; the first: %w", len(failed), failed[0])
	}
	return nil
}
