package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/google/gopacket/pcap"
	"github.com/spf13/cobra"
)

// version is icmpids's release version.
const version = "0.1.0"

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of icmpids, Go and libpcap",
		Args:  argsUsage(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			printVersion(a.stdout)
			return nil
		},
	}
}

// printVersion writes what `icmpids version` (and --version, -V) prints:
// icmpids's version and revision, Go's, and libpcap's.
func printVersion(w io.Writer) {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " (" + s.Value[:12] + ")"
			}
		}
	}
	fmt.Fprintf(w, "icmpids %s%s\n%s %s/%s\n%s\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH, pcap.Version())
}
