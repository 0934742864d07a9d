package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// cmdTB is the little of testing.TB that etcdtest uses (Helper, Logf,
// Error, Fatal, Cleanup, TempDir, Context), for a command that starts a
// cluster outside a test. Any other method panics: the embedded TB is nil.
type cmdTB struct {
	testing.TB
	dir    string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	cleanups []func()
}

func newCmdTB(dir string) *cmdTB {
	ctx, cancel := context.WithCancel(context.Background())
	return &cmdTB{dir: dir, ctx: ctx, cancel: cancel}
}

func (t *cmdTB) Helper() {}

func (t *cmdTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func (t *cmdTB) Error(args ...any) { fmt.Fprintln(os.Stderr, args...) }

func (t *cmdTB) Errorf(format string, args ...any) { t.Logf(format, args...) }

// Fatal and Fatalf end the command, after the cleanups (the etcd members
// die with it anyway: etcdtest starts them with Pdeathsig).
func (t *cmdTB) Fatal(args ...any) {
	t.Error(args...)
	t.cleanup()
	os.Exit(1)
}

func (t *cmdTB) Fatalf(format string, args ...any) {
	t.Logf(format, args...)
	t.cleanup()
	os.Exit(1)
}

func (t *cmdTB) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}

func (t *cmdTB) TempDir() string {
	d, err := os.MkdirTemp(t.dir, "etcd-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (t *cmdTB) Context() context.Context { return t.ctx }

// cleanup runs the cleanups, last registered first, as testing does.
func (t *cmdTB) cleanup() {
	t.cancel()
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
