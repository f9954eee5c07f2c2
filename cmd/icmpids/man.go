package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd is the hidden `icmpids man DIR`: it writes the manual pages
// (icmpids(1), icmpids-run(1), ...) from the commands' own help, for the
// Debian package (packaging/deb.sh).
func newManCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the manual pages, generated from the commands' help, into DIR",
		Hidden: true,
		Args:   argsUsage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // reproducible pages: no date line
			header := &doc.GenManHeader{Title: "ICMPIDS", Section: "1", Source: "icmpids " + version, Manual: "icmpids manual"}
			if err := doc.GenManTree(root, header, args[0]); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			return nil
		},
	}
}
