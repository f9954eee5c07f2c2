package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
	"github.com/spf13/cobra"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/output"
	"github.com/icmpids/icmpids/rules"
)

// newCheckCmd is `icmpids check`: everything `run` would load and
// validate, without capturing.
func newCheckCmd(a *app) *cobra.Command {
	var iface string
	cmd := &cobra.Command{
		Use:   "check [--config FILE] [-i IFACE]",
		Short: "Check a configuration before deploying it (like suricata -T, nginx -t)",
		Long: `Load and validate everything "icmpids run" would, without capturing: every
key and value of the configuration file, the ICMPIDS_* environment variables
(a misspelt one is an error, as an unknown key is) and the flags; the
capture filter (compiled by libpcap); the interface (-i or
capture.interface), if one is given; the outputs (the EVE file's directory,
the syslog URL, the TLS files); then print the effective rules.

A configuration with every rule switched off is valid but useless: it is
reported as a warning.

Exit status: 0 when all is well, 2 when something is wrong (the message
names the key, file, filter or interface).`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
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
			if err := printRules(a.stdout, cfg); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout)
			if len(enabled) == 0 {
				fmt.Fprintln(a.stderr, "icmpids: warning: every rule is switched off: the sensor would detect nothing")
			}
			where := "the configuration"
			if a.configPath != "" {
				where = a.configPath
			}
			fmt.Fprintf(a.stdout, "%s: OK (%d of %d rules enabled)\n", where, len(enabled), len(rules.Names()))
			return nil
		},
	}
	cmd.Flags().StringVarP(&iface, "interface", "i", "", "also check that this interface exists (default: capture.interface)")
	return cmd
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
	if cfg.Output.Syslog != "" {
		sl, err := output.NewSyslog(cfg.Output.Syslog, cfg.Syslog, output.SyslogOptions{}) // loads the TLS files; dials nothing
		if err != nil {
			return err
		}
		closeNow(sl)
	}
	return nil
}
