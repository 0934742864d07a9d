package l4

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The copy loops' system calls bypass the scheduler's syscall bookkeeping.
//
// unix.Read and friends tell the runtime a system call may block, and a
// processor whose goroutine spends more than 20 µs in one is taken from it
// by sysmon and handed to another thread. On the copy loops' non-blocking
// sockets and pipes nothing blocks: a call takes long only when the kernel
// gives the CPU to another process meanwhile, which on a busy machine is
// often. The profile under a high connection rate showed the cost: sysmon
// waking every 20 µs, processors handed off and threads woken and parked,
// 10 % of the proxy's CPU. Raw calls keep the processor with the goroutine
// for the few microseconds a call lasts, as any computation would.
//
// Only calls that cannot block belong here.

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawWrite is write(2) on a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawSplice is splice(2) without offsets; flags must hold SPLICE_F_NONBLOCK
// and both descriptors must be non-blocking.
func rawSplice(in, out, n int, flags int) (int64, error) {
	m, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), uintptr(flags))
	if e != 0 {
		return 0, e
	}
	return int64(m), nil
}
