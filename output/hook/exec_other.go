//go:build !unix

package hook

import "os/exec"

// killGroup leaves cmd as it is: cancellation kills the process only.
func killGroup(*exec.Cmd) {}
