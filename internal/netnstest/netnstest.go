// Package netnstest runs a piece of a test inside a network namespace the
// test created (ip netns add), so that the sockets it opens — a listener,
// a pcap handle — live there while the rest of the test stays outside.
package netnstest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has entered the named namespace
// (/run/netns/NAME); sockets fn opens stay in it afterwards. The test
// fails if the namespace cannot be entered or fn fails.
func Do(t testing.TB, ns string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			done <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime ends it with the goroutine.
			done <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
