package engine

import (
	"io"
	"testing"
	"time"
)

// BenchmarkRoundTrip: a 64-byte message through the engine to an echo on
// the backend's side and back: two flows, one message each.
func BenchmarkRoundTrip(b *testing.B) {
	e, err := New(Options{Loops: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	cfd, client := socketPair(b)
	bfd, backend := socketPair(b)
	done := make(ended, 1)
	if _, err := e.Start(Pair{Client: cfd, Backend: bfd, Idle: time.Hour, Owner: done}); err != nil {
		b.Fatal(err)
	}
	go func() { _, _ = io.Copy(backend, backend) }()
	msg, reply := make([]byte, 64), make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, reply); err != nil {
			b.Fatal(err)
		}
	}
	_ = client.Close()
	_ = backend.Close()
	<-done
}
