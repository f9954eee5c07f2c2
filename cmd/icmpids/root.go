package main

import (
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"github.com/twmb/franz-go/pkg/kgo"
)

// app carries what every subcommand shares: the streams and the viper
// instance the flags are bound to.
type app struct {
	stdout, stderr io.Writer
	v              *viper.Viper
	configPath     string
	// consumerOpts are added to the correlator's Kafka client options
	// (tests: a fetch size small enough to split a backlog).
	consumerOpts []kgo.Opt
	// started, when set, is called when start-up is over (the packet loop
	// begins): main's pauseGC resume. Tests leave it nil.
	started func()
}

// startupDone tells main that start-up is over (see pauseGC).
func (a *app) startupDone() {
	if a.started != nil {
		a.started()
	}
}

func newRootCmd(a *app) *cobra.Command {
	stdout := a.stdout
	var showVersion bool
	root := &cobra.Command{
		Use:   "icmpids",
		Short: "ICMP flood and attack detector (live sensor and forensic replay)",
		Long: `icmpids detects ICMP and ICMPv6 attacks: echo floods from one or many spoofed
sources and carpet-bombing floods over a prefix, BlackNurse, Ping of Death
and other fragment attacks, Smurf reflection, forged redirects, host sweeps,
covert tunnels in echo payloads, forged ICMP errors, and IPv6
neighbor-discovery attacks (RA floods, rogue routers, neighbor-cache floods
and spoofing) — 18 rules, listed by "icmpids rules".

It runs as a live sensor on a gateway interface (icmpids run -i eth0) or
replays capture files in packet time (icmpids replay capture.pcap), and
writes one alert per attack phase (start, update, end) as readable text or
as Suricata-compatible EVE JSON.

Configuration: defaults < --config FILE (YAML, see configs/icmpids.yaml) <
ICMPIDS_* environment variables (ICMPIDS_RULES_ICMP_FLOOD_ECHO_PPS=5000) <
flags. Unknown keys and bad values are errors.

Exit status: 0 done, 1 runtime failure, 2 bad usage or bad configuration.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// An unknown command is bad usage (exit 2); no command shows help.
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				printVersion(stdout)
				return nil
			}
			return cmd.Help()
		},
	}
	// --version and -V print what `icmpids version` prints (install checks
	// and provisioning scripts call them).
	root.Flags().BoolVarP(&showVersion, "version", "V", false, "print the version (as icmpids version does) and exit")
	root.SetOut(stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return configError{err}
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&a.configPath, "config", "c", "", "YAML configuration file (see configs/icmpids.yaml)")
	pf.String("format", "auto", "what stdout carries: text, eve, none, or auto (text on a terminal, eve otherwise)")
	pf.String("eve", "", "append EVE JSON alerts to this file")
	pf.String("syslog", "", "send alerts to a syslog collector: udp://host:514, tcp://host:601, tls://host:6514")
	pf.String("kafka", "", "Kafka brokers, host:port[,host:port…]: produce every EVE event (and fleet observations) to them")
	pf.String("log-level", "info", "diagnostics on stderr: error, warn, info, debug")
	pf.Int("workers", 0, "detection engines, each owning a shard of targets; 0 (the default): one per CPU")
	bind(a.v, pf, map[string]string{
		"format":    "output.format",
		"eve":       "output.eve",
		"syslog":    "output.syslog",
		"kafka":     "output.kafka.brokers",
		"log-level": "log_level",
		"workers":   "engine.workers",
	})
	root.AddCommand(newRunCmd(a), newReplayCmd(a), newCorrelateCmd(a), newRulesCmd(a), newCheckCmd(a), newVersionCmd(a), newManCmd(a))
	return root
}

// bind ties flags to configuration keys, so a flag given on the command
// line overrides the environment and the file.
func bind(v *viper.Viper, fs *pflag.FlagSet, keys map[string]string) {
	for flag, key := range keys {
		// BindPFlag fails only for a nil flag; the CLI tests cover every binding.
		_ = v.BindPFlag(key, fs.Lookup(flag))
	}
}

// argsUsage wraps cobra's argument validators so that a wrong argument count
// is a usage error (exit 2).
func argsUsage(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return configError{err}
		}
		return nil
	}
}
