package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
	"github.com/spf13/cobra"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/output"
	"github.com/icmpids/icmpids/output/hook"
	"github.com/icmpids/icmpids/rules"
)

// newCheckCmd is `icmpids check`: everything `run` would load and
// validate, without capturing.
func newCheckCmd(a *app) *cobra.Command {
	var (
		iface string
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "check [--config FILE] [-i IFACE] [-q]",
		Short: "Check a configuration before deploying it (like suricata -T, nginx -t)",
		Long: `Load and validate everything "icmpids run" would, without capturing: every
key and value of the configuration file, the ICMPIDS_* environment variables
(a misspelt one is an error, as an unknown key is; a near miss names the key
meant) and the flags; the capture filter (compiled by libpcap); the
interface (-i or capture.interface), if one is given; the outputs (the EVE
file's directory, the syslog URL, the TLS files).

It prints the verdict first, then any warnings (on stderr), then the
outputs alerts would go to (a TCP or TLS syslog collector is probed: dialed
once and hung up; a collector that does not answer is a warning, since run
retries with backoff; the metrics address is tried), then the effective
rules (-q leaves out the outputs and rules).

A configuration with every rule switched off is valid but useless: it is
reported as a warning.

Exit status: 0 when all is well, 2 when something is wrong (the message
names the key, file, filter or interface).`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(a.v, a.configPath)
			if err != nil {
				return err
			}
			if iface != "" {
				cfg.Capture.Interface = iface
			}
			if err := checkDeployable(cfg); err != nil {
				return configError{err}
			}
			enabled, err := rules.Enabled(cfg.Rules)
			if err != nil {
				return configError{err}
			}
			outputs, warnings := describeOutputs(cmd.Context(), cfg)
			if len(enabled) == 0 {
				warnings = append([]string{"every rule is switched off: the sensor would detect nothing"}, warnings...)
			}
			where := "the configuration"
			if a.configPath != "" {
				where = a.configPath
			}
			verdict := "OK"
			if len(warnings) > 0 {
				verdict = fmt.Sprintf("OK, %d warning(s)", len(warnings))
			}
			fmt.Fprintf(a.stdout, "%s: %s (%d of %d rules enabled)\n", where, verdict, len(enabled), len(rules.Names()))
			for _, w := range warnings {
				fmt.Fprintf(a.stderr, "icmpids: warning: %s\n", w)
			}
			if quiet {
				return nil
			}
			fmt.Fprintln(a.stdout, "\noutputs:")
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			for _, o := range outputs {
				fmt.Fprintf(tw, "  %s\t%s\n", o[0], o[1])
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "\nrules:")
			return printRules(a.stdout, cfg)
		},
	}
	cmd.Flags().StringVarP(&iface, "interface", "i", "", "also check that this interface exists (default: capture.interface)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the verdict and warnings only, not the outputs and rules")
	return cmd
}

// probeTimeout bounds check's probe of a syslog collector.
const probeTimeout = 5 * time.Second

// describeOutputs lists where alerts would go, as (output, what) pairs,
// and what deserves a warning: a syslog collector that does not answer
// its probe, a metrics address that cannot be bound, no output at all.
func describeOutputs(ctx context.Context, cfg Config) (outs [][2]string, warnings []string) {
	format := cfg.Output.Format
	if format == "auto" {
		format = "auto: eve when piped, text on a terminal"
	}
	outs = append(outs, [2]string{"stdout", format})
	eve := "none"
	if cfg.Output.EVE != "" {
		eve = cfg.Output.EVE
	}
	outs = append(outs, [2]string{"eve", eve})
	syslog := "none"
	if cfg.Output.Syslog != "" {
		syslog = cfg.Output.Syslog + " (" + probeSyslog(ctx, cfg, &warnings) + ")"
	}
	outs = append(outs, [2]string{"syslog", syslog})
	metricsAddr := "none"
	if cfg.Metrics.Addr != "" {
		metricsAddr = cfg.Metrics.Addr
		if l, err := net.Listen("tcp", cfg.Metrics.Addr); err != nil {
			warnings = append(warnings, fmt.Sprintf("metrics.addr: %s cannot be served now: %v", cfg.Metrics.Addr, err))
			metricsAddr += " (cannot be bound now)"
		} else {
			l.Close()
			metricsAddr += " (free)"
		}
	}
	outs = append(outs, [2]string{"metrics", metricsAddr})
	redis := "none"
	if r := cfg.Output.Redis; r.Server != "" {
		redis = fmt.Sprintf("%s %s:%d (%s)", r.Mode, r.Server, r.Port, r.Key)
	}
	outs = append(outs, [2]string{"redis", redis})
	kafka := "none"
	if k := cfg.Output.Kafka; len(k.Brokers) > 0 {
		kafka = fmt.Sprintf("topic %s on %s", k.Topic, strings.Join(k.Brokers, ", "))
	}
	outs = append(outs, [2]string{"kafka", kafka})
	outs = append(outs, hookOutputs(cfg)...)
	if cfg.Output.Format == "none" && cfg.Output.EVE == "" && cfg.Output.Syslog == "" &&
		len(cfg.Output.Exec.Command) == 0 && cfg.Output.Webhook.URL == "" && cfg.Output.Redis.Server == "" && len(cfg.Output.Kafka.Brokers) == 0 {
		warnings = append(warnings, "output.format is none and there is no other output: alerts would go nowhere")
	}
	return outs, warnings
}

// probeSyslog dials a TCP or TLS collector once (TLS handshake included)
// and hangs up; it says what came of it, and adds a warning when the
// collector does not answer.
func probeSyslog(ctx context.Context, cfg Config, warnings *[]string) string {
	t, err := output.ParseSyslogURL(cfg.Output.Syslog)
	if err != nil || t.Scheme == "udp" {
		return "not probed: UDP has no connection to try"
	}
	sl, err := output.NewSyslog(cfg.Output.Syslog, cfg.Syslog, output.SyslogOptions{})
	if err != nil {
		return "not probed: " + err.Error()
	}
	defer closeNow(sl)
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := sl.Check(pctx); err != nil {
		*warnings = append(*warnings, fmt.Sprintf("output.syslog: %s does not answer now (run retries with backoff; a replay would fail): %v", sl.Target(), err))
		return "probed: no answer"
	}
	return "probed: connected"
}

// checkDeployable checks what loadConfig cannot: the filter compiles, the
// interface exists, the outputs can be opened.
func checkDeployable(cfg Config) error {
	bpf := cfg.Capture.BPF
	if bpf == "" {
		bpf = capture.DefaultBPFFor(cfg.Decode.VXLANPorts, cfg.Decode.GENEVEPorts, cfg.Decode.TeredoPorts)
	}
	if _, err := pcap.NewBPF(layers.LinkTypeEthernet, cfg.Capture.SnapLen, bpf); err != nil {
		return fmt.Errorf("capture.bpf: %q does not compile: %v", bpf, err)
	}
	if name := cfg.Capture.Interface; name != "" {
		if _, err := net.InterfaceByName(name); err != nil {
			return fmt.Errorf("capture.interface: %q: %v", name, err)
		}
	}
	if eve := cfg.Output.EVE; eve != "" {
		dir := filepath.Dir(eve)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("output.eve: %s: the directory %s does not exist", eve, dir)
		}
	}
	if err := checkHooks(cfg); err != nil {
		return err
	}
	if cfg.Output.Syslog != "" {
		sl, err := output.NewSyslog(cfg.Output.Syslog, cfg.Syslog, output.SyslogOptions{}) // loads the TLS files; dials nothing
		if err != nil {
			return err
		}
		closeNow(sl)
	}
	return nil
}

// checkHooks checks what the hooks need from the machine: the exec
// command's program, the webhook's TLS files.
func checkHooks(cfg Config) error {
	if len(cfg.Output.Exec.Command) > 0 {
		if _, err := cfg.Output.Exec.Program(); err != nil {
			return err
		}
	}
	if cfg.Output.Webhook.URL != "" {
		w, err := hook.NewWebhook(cfg.Output.Webhook, hook.Options{}) // loads the TLS files; sends nothing
		if err != nil {
			return err
		}
		w.Close(context.Background())
	}
	return nil
}

// hookOutputs describes output.exec and output.webhook for check.
func hookOutputs(cfg Config) [][2]string {
	ex, wh := "none", "none"
	if c := cfg.Output.Exec; len(c.Command) > 0 {
		ex = fmt.Sprintf("%q on %s (timeout %v, at most %d at once)", c.Command, strings.Join(c.Phases, ", "), c.Timeout, c.MaxRunning)
	}
	if c := cfg.Output.Webhook; c.URL != "" {
		wh = fmt.Sprintf("POST %s (timeout %v, %d retries)", hook.Redact(c.URL), c.Timeout, c.Retries)
	}
	return [][2]string{{"exec", ex}, {"webhook", wh}}
}
