package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/detector"
)

func newRunCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "run -i IFACE [flags]",
		Short: "Watch a network interface live and raise alerts while an attack is under way",
		Long: `Capture from a network interface with libpcap and report ICMP attacks as
they happen. Needs CAP_NET_RAW (root, or the capabilities the systemd unit
grants). By default only ICMP, ICMPv6 and IP fragments are captured (see
--bpf). Capture statistics (packets received, dropped by the kernel and by
the interface) are logged every --stats-interval and on exit. SIGINT or
SIGTERM stops the sensor; open attacks are closed with an end event.`,
		Example: `  icmpids run -i eth0
  icmpids run -i eth0 --format eve --eve /var/log/icmpids/eve.json
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
	bind(a.v, f, map[string]string{
		"interface":      "capture.interface",
		"bpf":            "capture.bpf",
		"snaplen":        "capture.snaplen",
		"promisc":        "capture.promiscuous",
		"immediate":      "capture.immediate",
		"buffer-size":    "capture.buffer_size",
		"stats-interval": "capture.stats_interval",
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
		bpf = capture.DefaultBPF()
	}
	src, err := capture.OpenLive(capture.LiveConfig{
		Interface:   cfg.Capture.Interface,
		SnapLen:     cfg.Capture.SnapLen,
		Promiscuous: cfg.Capture.Promiscuous,
		Immediate:   cfg.Capture.Immediate,
		BufferSize:  cfg.Capture.BufferSize,
		BPF:         bpf,
		ReadTimeout: cfg.Capture.ReadTimeout,
	})
	if err != nil {
		if errors.Is(err, capture.ErrNoSuchInterface) || errors.Is(err, capture.ErrBadFilter) {
			return configError{err}
		}
		return err
	}
	defer src.Close()
	s, err := newSensor(cfg, a.stdout, log, true)
	if err != nil {
		return err
	}
	log.WithFields(logrus.Fields{"interface": cfg.Capture.Interface, "bpf": bpf}).Info("capturing")

	var nextStats time.Time
	if cfg.Capture.StatsInterval > 0 {
		nextStats = time.Now().Add(cfg.Capture.StatsInterval)
	}
	var runErr error
	for ctx.Err() == nil {
		fr, err := src.Next()
		switch {
		case err == nil:
			s.engine.HandleFrame(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length)
		case errors.Is(err, capture.ErrTimeout):
			// No traffic: advance packet time from the wall clock so that
			// quiet attacks end on time.
			s.engine.Advance(time.Now())
		default:
			runErr = fmt.Errorf("capture on %s: %w", cfg.Capture.Interface, err)
		}
		if runErr != nil {
			break
		}
		if !nextStats.IsZero() && time.Now().After(nextStats) {
			nextStats = time.Now().Add(cfg.Capture.StatsInterval)
			logCaptureStats(log, src, "capture statistics")
			s.logSummary("engine statistics")
		}
	}
	closeErr := s.close(detector.EndShutdown)
	logCaptureStats(log, src, "capture statistics at exit")
	s.logSummary("sensor stopped")
	if runErr != nil {
		return runErr
	}
	return closeErr
}

func logCaptureStats(log *logrus.Logger, src *capture.Live, what string) {
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
