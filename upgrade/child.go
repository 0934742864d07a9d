package upgrade

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Handover is what a new process inherited from the process that started it
// for an upgrade.
type Handover struct {
	Parent int // the old process's PID

	mu       sync.Mutex
	files    map[string][]*os.File // inherited sockets not taken yet, by name
	ready    *os.File
	released chan struct{}
}

// Inherit reads the hand-over the old process left in the environment and
// removes it from there (so nothing this process starts sees it). It returns
// nil, nil when the process was not started by an upgrade, and an error, with
// the hand-over ignored, when the variable is set but the file descriptors it
// names are not what it says (a variable exported by mistake).
func Inherit() (*Handover, error) {
	value, ok := os.LookupEnv(envHandover)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(envHandover)
	var he handoverEnv
	if err := json.Unmarshal([]byte(value), &he); err != nil {
		return nil, fmt.Errorf("ignoring %s: %w", envHandover, err)
	}
	for _, fd := range []int{fdReady, fdRelease} {
		if err := checkFD(fd, syscall.S_IFIFO); err != nil {
			return nil, fmt.Errorf("ignoring %s: %w", envHandover, err)
		}
	}
	for i := range he.Listeners {
		if err := checkFD(fdListeners+i, syscall.S_IFSOCK); err != nil {
			return nil, fmt.Errorf("ignoring %s: %w", envHandover, err)
		}
	}
	h := &Handover{Parent: he.Parent, files: map[string][]*os.File{}, released: make(chan struct{})}
	h.ready = inheritFile(fdReady, "upgrade-ready")
	release := inheritFile(fdRelease, "upgrade-release")
	for i, name := range he.Listeners {
		h.files[name] = append(h.files[name], inheritFile(fdListeners+i, name))
	}
	go func() {
		// EOF: the old process let go, or died.
		_, _ = io.Copy(io.Discard, release)
		release.Close()
		close(h.released)
	}()
	return h, nil
}

func checkFD(fd int, kind uint32) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fmt.Errorf("file descriptor %d: %w", fd, err)
	}
	if st.Mode&syscall.S_IFMT != kind {
		return fmt.Errorf("file descriptor %d is not a %s", fd, map[uint32]string{syscall.S_IFIFO: "pipe", syscall.S_IFSOCK: "socket"}[kind])
	}
	return nil
}

// inheritFile makes an inherited descriptor close-on-exec and non-blocking
// (so reads wait in the poller, not in a thread).
func inheritFile(fd int, name string) *os.File {
	syscall.CloseOnExec(fd)
	_ = syscall.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), name)
}

// Listener returns the inherited listener of that name, or nil when the old
// process handed over none (a service added to the configuration since, say):
// the caller then opens one. Each inherited listener is returned once; this
// process keeps no other copy of it.
func (h *Handover) Listener(name string) (net.Listener, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fs := h.files[name]
	if len(fs) == 0 {
		return nil, nil
	}
	f := fs[0]
	if len(fs) == 1 {
		delete(h.files, name)
	} else {
		h.files[name] = fs[1:]
	}
	ln, err := net.FileListener(f) // a duplicate of f
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("inheriting listener %s: %w", name, err)
	}
	return ln, nil
}

// Ready closes the inherited listeners nobody asked for (addresses gone from
// the configuration) and tells the old process this one is ready. An error
// means the old process is no longer waiting (it gave up on the upgrade, and
// will stop this process).
func (h *Handover) Ready() error {
	h.mu.Lock()
	for name, fs := range h.files {
		for _, f := range fs {
			f.Close()
		}
		delete(h.files, name)
	}
	h.mu.Unlock()
	_, err := h.ready.Write([]byte{'R'})
	if cerr := h.ready.Close(); err == nil && cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("telling the old process (pid %d) this one is ready: %w", h.Parent, err)
	}
	return nil
}

// Released is closed when the old process has let go of the state file and
// the registry entry (or died): this process is then the only one.
func (h *Handover) Released() <-chan struct{} { return h.released }
