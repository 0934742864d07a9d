package engine

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitResult waits for the owner to hear of the end.
func waitResult(t *testing.T, done ended) Result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the owner never heard of the end")
	}
	return Result{}
}

func isReset(err error) bool {
	return errors.Is(err, unix.ECONNRESET)
}

// TestAbortResetsBothSidesOnce: an Abort ends the connection once, with its
// reason, resetting both sides; a second Abort and an Abort of the ended
// connection report false.
func TestAbortResetsBothSidesOnce(t *testing.T) {
	e := newEngine(t)
	cfd, client := socketPair(t)
	bfd, backend := socketPair(t)
	done := make(ended, 2)
	c, err := e.Start(Pair{Client: cfd, Backend: bfd, Owner: done})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Abort(FirstAbortReason+3, true) {
		t.Fatal("the first Abort did not end the connection")
	}
	if c.Abort(FirstAbortReason, true) {
		t.Fatal("a second Abort claimed the end too")
	}
	if r := waitResult(t, done); r.Reason != FirstAbortReason+3 {
		t.Fatalf("reason %d, want the Abort's", r.Reason)
	}
	for name, peer := range map[string]*net.TCPConn{"client": client, "backend": backend} {
		_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(peer); !isReset(err) {
			t.Fatalf("%s read %v, want a reset", name, err)
		}
	}
	if c.Abort(FirstAbortReason, true) {
		t.Fatal("an Abort of an ended connection reported true")
	}
	select {
	case r := <-done:
		t.Fatalf("the owner heard of a second end: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
}

// TestStaleConnDoesNotTouchTheSlotsNextTenant: a Conn whose connection ended
// cannot abort the connection that took its slot.
func TestStaleConnDoesNotTouchTheSlotsNextTenant(t *testing.T) {
	e, err := New(Options{Loops: 1, Tick: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cfd, client := socketPair(t)
	bfd, _ := socketPair(t)
	done := make(ended, 1)
	old, err := e.Start(Pair{Client: cfd, Backend: bfd, Owner: done})
	if err != nil {
		t.Fatal(err)
	}
	_ = client.SetLinger(0)
	_ = client.Close()
	if r := waitResult(t, done); r.Reason != ClientReset {
		t.Fatalf("reason %d, want ClientReset", r.Reason)
	}
	cfd2, client2 := socketPair(t)
	bfd2, backend2 := socketPair(t)
	done2 := make(ended, 1)
	next, err := e.Start(Pair{Client: cfd2, Backend: bfd2, Owner: done2})
	if err != nil {
		t.Fatal(err)
	}
	if next.idx != old.idx {
		t.Fatalf("the second connection took slot %d, not the freed %d", next.idx, old.idx)
	}
	if old.Abort(FirstAbortReason, true) {
		t.Fatal("the stale Conn aborted the slot's next connection")
	}
	pass(t, client2, backend2, "still here")
}

// TestIdleTimeoutCloses: a connection with no byte either way for the idle
// timeout is closed without a reset; one that keeps talking stays.
func TestIdleTimeoutCloses(t *testing.T) {
	e := newEngine(t)
	const idle = 60 * time.Millisecond
	quietC, quietPeer := socketPair(t)
	quietB, _ := socketPair(t)
	busyC, busyPeer := socketPair(t)
	busyB, busyBackend := socketPair(t)
	quietDone, busyDone := make(ended, 1), make(ended, 1)
	start := time.Now()
	if _, err := e.Start(Pair{Client: quietC, Backend: quietB, Idle: idle, Owner: quietDone}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start(Pair{Client: busyC, Backend: busyB, Idle: idle, Owner: busyDone}); err != nil {
		t.Fatal(err)
	}
	// The busy one talks every idle/3, for three timeouts.
	talked := make(chan error, 1)
	go func() {
		buf := make([]byte, 1)
		for range 9 {
			if _, err := busyPeer.Write([]byte("x")); err != nil {
				talked <- err
				return
			}
			if _, err := io.ReadFull(busyBackend, buf); err != nil {
				talked <- err
				return
			}
			time.Sleep(idle / 3)
		}
		talked <- nil
	}()
	_ = quietPeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(quietPeer); err != nil {
		t.Fatalf("the idle connection ended with %v, want EOF", err)
	}
	if r := waitResult(t, quietDone); r.Reason != IdleTimeout {
		t.Fatalf("reason %d, want IdleTimeout", r.Reason)
	}
	if waited := time.Since(start); waited < idle {
		t.Fatalf("closed after %v, before the idle timeout %v", waited, idle)
	}
	if err := <-talked; err != nil {
		t.Fatalf("the busy connection: %v", err)
	}
	select {
	case r := <-busyDone:
		t.Fatalf("the busy connection ended: %+v", r)
	default:
	}
}

// TestFirstBytesGoFirst: the header and the first bytes reach the backend
// before the client's, and only the first bytes are counted.
func TestFirstBytesGoFirst(t *testing.T) {
	e := newEngine(t)
	cfd, client := socketPair(t)
	bfd, backend := socketPair(t)
	var in atomic.Int64
	done := make(ended, 1)
	if _, err := e.Start(Pair{Client: cfd, Backend: bfd, Header: []byte("HDR "), First: []byte("hello "), In: &in, Owner: done}); err != nil {
		t.Fatal(err)
	}
	_ = backend.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	_ = client.CloseWrite()
	got, err := io.ReadAll(backend)
	if err != nil || string(got) != "HDR hello world" {
		t.Fatalf("the backend got %q, %v", got, err)
	}
	_ = backend.CloseWrite()
	_, _ = io.ReadAll(client)
	if r := waitResult(t, done); r.In != int64(len("hello world")) || in.Load() != r.In {
		t.Fatalf("counted %d (live %d), want %d", r.In, in.Load(), len("hello world"))
	}
}

// TestCloseEndsLiveConnections: Close resets what is still live, tells the
// owners, closes the pipes and returns; Start afterwards is not possible.
func TestCloseEndsLiveConnections(t *testing.T) {
	e, err := New(Options{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	dones := make(ended, 4)
	var peers []*net.TCPConn
	for range 4 {
		cfd, client := socketPair(t)
		bfd, _ := socketPair(t)
		peers = append(peers, client)
		if _, err := e.Start(Pair{Client: cfd, Backend: bfd, Owner: dones}); err != nil {
			t.Fatal(err)
		}
	}
	e.Close()
	for range 4 {
		if r := waitResult(t, dones); r.Reason != ShutdownReason {
			t.Fatalf("reason %d, want ShutdownReason", r.Reason)
		}
	}
	for _, p := range peers {
		_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(p); !isReset(err) {
			t.Fatalf("a peer read %v after Close, want a reset", err)
		}
	}
	if st := e.Stats(); st.Conns != 0 || st.OpenPipes != 0 {
		t.Fatalf("after Close: %+v", st)
	}
}

// TestStartRefusesABadDescriptor: a descriptor epoll cannot take fails
// Start with nothing registered, and the owner hears nothing.
func TestStartRefusesABadDescriptor(t *testing.T) {
	e := newEngine(t)
	f, err := os.CreateTemp(t.TempDir(), "not-a-socket")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	cfd, _ := socketPair(t)
	done := make(ended, 1)
	if _, err := e.Start(Pair{Client: cfd, Backend: fd, Owner: done}); !errors.Is(err, unix.EPERM) {
		t.Fatalf("Start with a regular file = %v, want EPERM", err)
	}
	if st := e.Stats(); st.Conns != 0 {
		t.Fatalf("%d connections after a failed Start", st.Conns)
	}
	select {
	case r := <-done:
		t.Fatalf("the owner heard %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
}
