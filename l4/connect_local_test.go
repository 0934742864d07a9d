package l4

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestLocalDialErrorsAreNotTheBackendsFault(t *testing.T) {
	wrap := func(errno syscall.Errno, call string) error {
		return fmt.Errorf("dialing backend 127.0.0.1:1: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError(call, errno)})
	}
	for _, tc := range []struct {
		err   error
		local bool
	}{
		{wrap(syscall.EMFILE, "socket"), true},
		{wrap(syscall.ENFILE, "socket"), true},
		{wrap(syscall.EADDRNOTAVAIL, "connect"), true},
		{wrap(syscall.ECONNREFUSED, "connect"), false},
		{wrap(syscall.ETIMEDOUT, "connect"), false},
		{wrap(syscall.EHOSTUNREACH, "connect"), false},
		{errors.New("i/o timeout"), false},
	} {
		if got := isLocalDialError(tc.err); got != tc.local {
			t.Errorf("isLocalDialError(%v) = %v, want %v", tc.err, got, tc.local)
		}
	}
}
