// Command icmpids is an ICMP flood and attack detector: a live sensor on a
// gateway interface (icmpids run), a forensic replayer of capture files
// (icmpids replay), and a lister of its rules (icmpids rules).
//
// Exit status: 0 done, 1 runtime failure, 2 bad usage or bad configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	resume := pauseGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runApp(ctx, &app{stdout: os.Stdout, stderr: os.Stderr, v: newViper(), started: resume}, os.Args[1:])
	resume()
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runApp(ctx, &app{stdout: stdout, stderr: stderr, v: newViper()}, args)
}

// runApp executes the command line args with a and returns the exit
// status.
func runApp(ctx context.Context, a *app, args []string) int {
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(a.stderr, "icmpids: %s\n", err)
	var ce configError
	if errors.As(err, &ce) {
		return 2
	}
	return 1
}
