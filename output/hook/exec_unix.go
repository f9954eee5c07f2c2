//go:build unix

package hook

import (
	"os/exec"
	"syscall"
)

// killGroup runs cmd in a process group of its own and makes its
// cancellation kill the whole group, so that what a hook script started
// (sleep, curl) dies with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
