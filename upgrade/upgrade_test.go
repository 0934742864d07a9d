package upgrade

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The test binary plays the new process when UPGRADE_TEST_CHILD says how.
func TestMain(m *testing.M) {
	if mode := os.Getenv("UPGRADE_TEST_CHILD"); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// child is the new process: it inherits "svc", serves one greeting on it,
// reports ready, and exits once released.
func child(mode string) int {
	h, err := Inherit()
	if err != nil || h == nil {
		fmt.Fprintln(os.Stderr, "inherit:", h, err)
		return 3
	}
	if mode == "exit" {
		return 7
	}
	ln, err := h.Listener("svc")
	if err != nil || ln == nil {
		fmt.Fprintln(os.Stderr, "listener:", ln, err)
		return 4
	}
	if again, _ := h.Listener("svc"); again != nil {
		return 5 // each inherited listener is given once
	}
	if mode == "stall" {
		time.Sleep(time.Minute)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "child %d\n", os.Getpid())
			c.Close()
		}
	}()
	if err := h.Ready(); err != nil {
		return 6
	}
	select {
	case <-h.Released():
		return 0
	case <-time.After(30 * time.Second):
		return 8
	}
}

func testBinary(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func greeting(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading greeting: %v", err)
	}
	return strings.TrimSpace(line)
}

func startChild(t *testing.T, mode string, ln *net.TCPListener) *Child {
	t.Helper()
	c, err := Start(Options{
		Path:      testBinary(t),
		Env:       append(os.Environ(), "UPGRADE_TEST_CHILD="+mode),
		Listeners: []Listener{{Name: "svc", Conn: ln}, {Name: "unused", Conn: ln}},
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { c.Stop(time.Second) })
	return c
}

func TestHandOverTheSameSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.(*net.TCPListener)
	addr := ln.Addr().String()
	c := startChild(t, "serve", ln)
	if err := c.WaitReady(context.Background(), 20*time.Second); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	// The parent stops accepting; the socket, with its queue, is the child's.
	ln.Close()
	for range 3 {
		if got, want := greeting(t, addr), fmt.Sprintf("child %d", c.Pid); got != want {
			t.Fatalf("greeting %q, want %q", got, want)
		}
	}
	c.Release()
	select {
	case <-c.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("child did not exit after Release")
	}
	if s := c.ExitStatus(); s != "exited with status 0" {
		t.Fatalf("child %s", s)
	}
}

func TestChildThatExitsOrStalls(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ln := l.(*net.TCPListener)

	c := startChild(t, "exit", ln)
	err = c.WaitReady(context.Background(), 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited with status 7 before it was ready") {
		t.Fatalf("WaitReady for a child that exits: %v", err)
	}

	c = startChild(t, "stall", ln)
	start := time.Now()
	err = c.WaitReady(context.Background(), 300*time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("WaitReady for a stalled child: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	c.Stop(5 * time.Second)
	if s := c.ExitStatus(); !strings.Contains(s, "signal") {
		t.Fatalf("stopped child %s, want killed by a signal", s)
	}

	// The parent's listener is untouched by all this.
	go func() {
		if conn, err := ln.Accept(); err == nil {
			conn.Write([]byte("parent\n"))
			conn.Close()
		}
	}()
	if got := greeting(t, ln.Addr().String()); got != "parent" {
		t.Fatalf("greeting %q, want parent", got)
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644)
	for _, path := range []string{filepath.Join(dir, "missing"), notExec} {
		if c, err := Start(Options{Path: path}); err == nil {
			c.Stop(time.Second)
			t.Errorf("Start(%s) succeeded", path)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("Start(%s): %v does not name the path", path, err)
		}
	}
}

func TestInheritIgnoresAStrayVariable(t *testing.T) {
	t.Setenv(envHandover, `{"parent": 1, "listeners": ["x"]}`)
	// Descriptors 3 and 4 of the test binary are not the pipes it names.
	if h, err := Inherit(); h != nil || err == nil {
		t.Fatalf("Inherit with a stray variable: %v, %v", h, err)
	}
	if _, ok := os.LookupEnv(envHandover); ok {
		t.Fatal("the variable is still set")
	}
	os.Unsetenv(envHandover)
	if h, err := Inherit(); h != nil || err != nil {
		t.Fatalf("Inherit without the variable: %v, %v", h, err)
	}
}

func TestPIDFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "balance-l4.pid")
	if err := WritePIDFile(path, 1234); err != nil {
		t.Fatal(err)
	}
	if pid, err := ReadPIDFile(path); err != nil || pid != 1234 {
		t.Fatalf("ReadPIDFile: %d, %v", pid, err)
	}
	if err := RemovePIDFile(path, 99); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal("the file of another PID was removed")
	}
	if err := RemovePIDFile(path, 1234); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("own PID file not removed: %v", err)
	}
	if err := RemovePIDFile(path, 1234); err != nil {
		t.Fatalf("removing a missing file: %v", err)
	}
}

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v, %v", sent, err)
	}
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if sent, err := Notify("MAINPID=42\nREADY=1"); !sent || err != nil {
		t.Fatalf("Notify: %v, %v", sent, err)
	}
	buf := make([]byte, 100)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "MAINPID=42\nREADY=1" {
		t.Fatalf("received %q, %v", buf[:n], err)
	}
}
