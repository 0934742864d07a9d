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
	s := startPair(b, e, Pair{Idle: time.Hour})
	client, backend := s.client, s.backend
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
	waitResult(b, s.done)
}
