package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/icmpids/icmpids/rules"
)

func newRulesCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rules",
		Short: "List the rules with their ids and effective thresholds",
		Long: `List every rule: its stable name, signature id, whether it is enabled, and
its effective settings after the configuration file, ICMPIDS_* environment
variables and flags are applied (keys as in configs/icmpids.yaml, under
rules.<name>).`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			cfg, err := loadConfig(a.v, a.configPath)
			if err != nil {
				return err
			}
			return printRules(a.stdout, cfg)
		},
	}
}

// printRules prints every rule with its state and effective settings.
func printRules(w io.Writer, cfg Config) error {
	specs, err := rules.Specs(cfg.Rules)
	if err != nil {
		return configError{err}
	}
	for i, s := range specs {
		info := s.Rule.Info()
		state := "enabled"
		if !s.Enabled {
			state = "disabled"
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s — %s\n  sid %d, rev %d, severity %d, %s\n",
			info.Name, info.Signature, info.SignatureID, info.Rev, info.Severity, state)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, kv := range rules.Fields(s.Settings) {
			if kv.Key != "enabled" {
				fmt.Fprintf(tw, "  rules.%s.%s\t%s\n", info.Name, kv.Key, rules.FormatValue(kv.Value))
			}
		}
		for j, o := range s.Overrides {
			fmt.Fprintf(tw, "  rules.%s.overrides[%d]\t%s\n", info.Name, j, describeOverride(o))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// describeOverride spells an override: its networks and the keys it sets.
func describeOverride(o rules.Override) string {
	nets := make([]string, len(o.Networks))
	for i, n := range o.Networks {
		nets[i] = n.String()
	}
	values := map[string]any{}
	for _, kv := range rules.Fields(o.Settings) {
		values[kv.Key] = kv.Value
	}
	parts := []string{"networks: [" + strings.Join(nets, ", ") + "]"}
	for _, k := range o.Keys {
		parts = append(parts, k+": "+rules.FormatValue(values[k]))
	}
	return strings.Join(parts, ", ")
}
