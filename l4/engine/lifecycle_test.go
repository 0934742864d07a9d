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
func waitResult(t testing.TB, done ended) Result {
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
	s := startPair(t, e, Pair{})
	c, done := s.c, s.done
	if !c.Abort(FirstAbortReason+3, true) {
		t.Fatal("the first Abort did not end the connection")
	}
	if c.Abort(FirstAbortReason, true) {
		t.Fatal("a second Abort claimed the end too")
	}
	if r := waitResult(t, done); r.Reason != FirstAbortReason+3 {
		t.Fatalf("reason %d, want the Abort's", r.Reason)
	}
	for name, peer := range map[string]*net.TCPConn{"client": s.client, "backend": s.backend} {
		_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(peer); !isReset(err) {
			t.Fatalf("%s read %v, want a reset", name, err)
		}
	}
	if c.Abort(FirstAbortReason, true) {
		t.Fatal("an Abort of an ended connection reported true")
	}
	e.Close() // the loops have stopped: any second end was heard by now
	select {
	case r := <-done:
		t.Fatalf("the owner heard of a second end: %+v", r)
	default:
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
	old := startPair(t, e, Pair{})
	_ = old.client.SetLinger(0)
	_ = old.client.Close()
	if r := waitResult(t, old.done); r.Reason != ClientReset {
		t.Fatalf("reason %d, want ClientReset", r.Reason)
	}
	next := startPair(t, e, Pair{})
	if next.c.idx != old.c.idx {
		t.Fatalf("the second connection took slot %d, not the freed %d", next.c.idx, old.c.idx)
	}
	if old.c.Abort(FirstAbortReason, true) {
		t.Fatal("the stale Conn aborted the slot's next connection")
	}
	pass(t, next.client, next.backend, "still here")
}

// TestIdleTimeoutCloses: a connection with no byte either way for the idle
// timeout is closed without a reset; one that keeps talking stays.
func TestIdleTimeoutCloses(t *testing.T) {
	e := newEngine(t)
	const idle = 300 * time.Millisecond // the busy one talks every 50 ms: a slow machine's pauses fit
	start := time.Now()
	quiet, busy := startPair(t, e, Pair{Idle: idle}), startPair(t, e, Pair{Idle: idle})
	quietPeer, quietDone := quiet.client, quiet.done
	busyPeer, busyBackend, busyDone := busy.client, busy.backend, busy.done
	_ = busyPeer.SetDeadline(time.Now().Add(10 * time.Second))
	_ = busyBackend.SetDeadline(time.Now().Add(10 * time.Second))
	// The busy one talks every idle/3, for three timeouts.
	talked := make(chan error, 1)
	go func() {
		buf := make([]byte, 1)
		for range 18 { // three timeouts
			if _, err := busyPeer.Write([]byte("x")); err != nil {
				talked <- err
				return
			}
			if _, err := io.ReadFull(busyBackend, buf); err != nil {
				talked <- err
				return
			}
			time.Sleep(idle / 6)
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
	var in atomic.Int64
	s := startPair(t, e, Pair{Header: []byte("HDR "), First: []byte("hello "), In: &in})
	client, backend, done := s.client, s.backend, s.done
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
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
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
	var live []spliced
	for range 4 {
		live = append(live, startPair(t, e, Pair{}))
	}
	e.Close()
	for _, s := range live {
		if r := waitResult(t, s.done); r.Reason != ShutdownReason {
			t.Fatalf("reason %d, want ShutdownReason", r.Reason)
		}
		_ = s.client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(s.client); !isReset(err) {
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
	fd := rawFD(t, f)
	cfd, _ := socketPair(t)
	done := make(ended, 1)
	if _, err := e.Start(Pair{Client: cfd, Backend: fd, Owner: done}); !errors.Is(err, unix.EPERM) {
		t.Fatalf("Start with a regular file = %v, want EPERM", err)
	}
	if st := e.Stats(); st.Conns != 0 {
		t.Fatalf("%d connections after a failed Start", st.Conns)
	}
	e.Close() // the loops have stopped: whatever they would say was said
	select {
	case r := <-done:
		t.Fatalf("the owner heard %+v", r)
	default:
	}
}
