//go:build !linux

package integration

import "syscall"

func serverSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
