package integration

import "syscall"

// serverSysProcAttr makes the kernel SIGKILL a server if the test binary
// dies without running its cleanups (e.g. on a go test -timeout panic).
func serverSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
