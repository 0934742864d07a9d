package l4

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestAccessLogOption: with Options.AccessLog every access line, served or
// rejected, goes there and none to Log; its duration is duration_ms, a number.
func TestAccessLogOption(t *testing.T) {
	srv := startBackend(t, echo)
	logs, access := &syncBuffer{}, &syncBuffer{}
	al := zerolog.New(access)
	rt := NewRuntime(Options{Log: zerolog.New(logs), AccessLog: &al})
	if _, err := rt.Apply(testConfig(testService("s", be("a", srv.addr)), testService("empty"))); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		rt.Shutdown(ctx)
	}()

	c := dialService(t, rt, "s")
	echoOn(t, c, "hello")
	c.Close()
	r := dialService(t, rt, "empty") // no backend: rejected
	io.Copy(io.Discard, r)
	r.Close()
	waitFor(t, "two access lines", func() bool { return strings.Count(access.String(), "connection closed") == 2 })

	for _, line := range strings.Split(strings.TrimSpace(access.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("access line %q: %v", line, err)
		}
		if _, ok := l["duration_ms"].(float64); !ok {
			t.Errorf("access line without a numeric duration_ms: %s", line)
		}
		if _, bare := l["duration"]; bare {
			t.Errorf("access line with a bare duration: %s", line)
		}
	}
	if strings.Contains(logs.String(), `"message":"connection closed"`) {
		t.Errorf("access lines in the process log too:\n%s", logs.String())
	}
}
