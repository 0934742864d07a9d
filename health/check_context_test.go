package health

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestCheckContextDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx := newCheckContext(time.Second)
		if dl, ok := ctx.Deadline(); !ok || !dl.Equal(start.Add(time.Second)) {
			t.Fatalf("Deadline() = %v, %v; want %v", dl, ok, start.Add(time.Second))
		}
		if err := ctx.Err(); err != nil {
			t.Fatalf("Err() before the deadline = %v", err)
		}
		if ctx.timer != nil {
			t.Fatal("a timer was armed though nothing waits on the context")
		}
		time.Sleep(time.Second)
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err() at the deadline = %v", err)
		}
		select {
		case <-ctx.Done():
		default:
			t.Fatal("Done not closed once Err says the deadline passed")
		}
		ctx.cancel(context.Canceled) // too late: the first reason stays
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err() after a late cancel = %v", err)
		}
	})
}

func TestCheckContextDoneClosesAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx := newCheckContext(3 * time.Second)
		<-ctx.Done()
		if waited := time.Since(start); waited != 3*time.Second {
			t.Fatalf("Done closed after %v, want the 3s deadline", waited)
		}
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err() = %v", err)
		}
	})
}

func TestCheckContextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := newCheckContext(time.Hour)
		done := ctx.Done()
		ctx.cancel(context.Canceled)
		select {
		case <-done:
		default:
			t.Fatal("Done not closed by cancel")
		}
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err() = %v", err)
		}
		time.Sleep(2 * time.Hour) // the deadline's timer was stopped: nothing changes
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err() after the deadline = %v", err)
		}
		// Done asked for the first time after the end is closed.
		late := newCheckContext(time.Hour)
		late.cancel(context.Canceled)
		select {
		case <-late.Done():
		default:
			t.Fatal("Done of an ended context not closed")
		}
	})
}

func TestCheckContextDerived(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := newCheckContext(time.Hour)
		child, stopChild := context.WithCancel(ctx)
		defer stopChild()
		timed, stopTimed := context.WithTimeout(ctx, 2*time.Hour)
		defer stopTimed()
		if dl, _ := timed.Deadline(); !dl.Equal(ctx.deadline) {
			t.Fatalf("a derived context's deadline %v, want the parent's %v", dl, ctx.deadline)
		}
		called := make(chan struct{})
		context.AfterFunc(ctx, func() { close(called) })
		stopped := context.AfterFunc(ctx, func() { t.Error("a stopped AfterFunc ran") })
		if !stopped() {
			t.Fatal("stop did not prevent the call")
		}

		ctx.cancel(context.Canceled)
		<-called
		for _, c := range []context.Context{child, timed} {
			select {
			case <-c.Done():
				if !errors.Is(c.Err(), context.Canceled) {
					t.Fatalf("derived context ended with %v", c.Err())
				}
			default:
				t.Fatal("a derived context was not cancelled with its parent")
			}
		}
		after := make(chan struct{})
		context.AfterFunc(ctx, func() { close(after) }) // registered after the end: runs at once
		<-after
	})
}

func TestCheckContextDerivedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx := newCheckContext(time.Second)
		child, cancel := context.WithCancel(ctx)
		defer cancel()
		<-child.Done()
		if waited := time.Since(start); waited != time.Second || !errors.Is(child.Err(), context.DeadlineExceeded) {
			t.Fatalf("derived context ended after %v with %v, want the parent's 1s deadline", waited, child.Err())
		}
	})
}
