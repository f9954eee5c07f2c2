package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
			if err := writeManTree(cmd.Root(), args[0]); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			return nil
		},
	}
}

// writeManTree writes the page of cmd and of each of its available
// commands (not hidden, not help topics), recursively, into dir, named
// after the command path (icmpids-replay.1). The pages are written as roff
// here rather than by cobra/doc, whose markdown converter (go-md2man,
// blackfriday) every icmpids start paid for: blackfriday's package
// initialisation was a quarter of a 1-packet replay's instructions once
// the collector was off for start-up. No date line: the pages are
// reproducible.
func writeManTree(cmd *cobra.Command, dir string) error {
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := writeManTree(c, dir); err != nil {
			return err
		}
	}
	name := strings.ReplaceAll(cmd.CommandPath(), " ", "-")
	return os.WriteFile(filepath.Join(dir, name+".1"), []byte(manPage(cmd)), 0o644)
}

// manPage is cmd's manual page in roff: NAME, SYNOPSIS, DESCRIPTION,
// OPTIONS, OPTIONS INHERITED FROM PARENT COMMANDS, EXAMPLE, SEE ALSO.
func manPage(cmd *cobra.Command) string {
	cmd.InitDefaultHelpFlag() // -h, --help: cobra adds it to the running command only
	var b strings.Builder
	name := strings.ReplaceAll(cmd.CommandPath(), " ", "-")
	fmt.Fprintf(&b, ".nh\n.TH \"ICMPIDS\" \"1\" \"\" \"icmpids %s\" \"icmpids manual\"\n", roffEscape(version))
	fmt.Fprintf(&b, "\n.SH NAME\n%s \\- %s\n", roffEscape(name), roffEscape(cmd.Short))
	if cmd.Runnable() {
		fmt.Fprintf(&b, "\n.SH SYNOPSIS\n\\fB%s\\fP\n", roffEscape(cmd.UseLine()))
	}
	long := cmd.Long
	if long == "" {
		long = cmd.Short
	}
	b.WriteString("\n.SH DESCRIPTION\n")
	roffParagraphs(&b, long)
	if cmd.HasAvailableLocalFlags() {
		b.WriteString("\n.SH OPTIONS\n")
		roffFlags(&b, cmd.NonInheritedFlags())
	}
	if cmd.HasAvailableInheritedFlags() {
		b.WriteString("\n.SH OPTIONS INHERITED FROM PARENT COMMANDS\n")
		roffFlags(&b, cmd.InheritedFlags())
	}
	if cmd.HasExample() {
		fmt.Fprintf(&b, "\n.SH EXAMPLE\n.PP\n.RS\n.nf\n%s\n.fi\n.RE\n", roffEscape(cmd.Example))
	}
	var see []string
	if cmd.HasParent() {
		see = append(see, strings.ReplaceAll(cmd.Parent().CommandPath(), " ", "-"))
	}
	var children []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() && !c.IsAdditionalHelpTopicCommand() {
			children = append(children, strings.ReplaceAll(c.CommandPath(), " ", "-"))
		}
	}
	sort.Strings(children)
	see = append(see, children...)
	if len(see) > 0 {
		for i, s := range see {
			see[i] = "\\fB" + roffEscape(s) + "(1)\\fP"
		}
		fmt.Fprintf(&b, "\n.SH SEE ALSO\n%s\n", strings.Join(see, ", "))
	}
	return b.String()
}

// roffParagraphs writes text's paragraphs (blank-line separated) as roff
// paragraphs; one whose lines are indented (a list, an example) keeps its
// layout, and a markdown heading (cobra's completion help has them) loses
// its #s.
func roffParagraphs(b *strings.Builder, text string) {
	for i, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		para = strings.Trim(para, "\n")
		if h := strings.TrimLeft(para, "#"); h != para && strings.HasPrefix(h, " ") && !strings.Contains(h, "\n") {
			para = strings.TrimSpace(h)
		}
		if para == "" {
			continue
		}
		if i > 0 {
			b.WriteString(".PP\n")
		}
		indented := false
		for _, l := range strings.Split(para, "\n") {
			if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
				indented = true
				break
			}
		}
		if indented {
			fmt.Fprintf(b, ".nf\n%s\n.fi\n", roffEscape(para))
		} else {
			fmt.Fprintf(b, "%s\n", roffEscape(para))
		}
	}
}

// roffFlags lists flags as cobra's help does: -s, --name=default and the
// usage below.
func roffFlags(b *strings.Builder, flags *pflag.FlagSet) {
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" {
			return
		}
		name := "\\fB\\-\\-" + roffEscape(f.Name) + "\\fP"
		if f.Shorthand != "" && f.ShorthandDeprecated == "" {
			name = "\\fB\\-" + roffEscape(f.Shorthand) + "\\fP, " + name
		}
		def := f.DefValue
		if f.Value.Type() == "string" {
			def = fmt.Sprintf("%q", def)
		}
		def = "=" + def
		if f.NoOptDefVal != "" {
			def = "[" + def + "]"
		}
		fmt.Fprintf(b, ".TP\n%s%s\n%s\n", name, roffEscape(def), roffEscape(f.Usage))
	})
}

// roffEscape makes text safe as roff input: backslashes escaped, and a
// line starting with a control character (. or ') made text.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
