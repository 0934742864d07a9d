package main

// The logs' conventions (README "Logs"): timestamps in UTC to the
// millisecond; every duration field named *_ms and written as a number of
// milliseconds; colour only on a terminal and never with NO_COLOR; the access
// log on stderr with the rest, or in its own file that every reload reopens.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/diode"

	"github.com/balancel4/balance-l4/config"
)

// timeFormat is RFC 3339 with milliseconds, always three digits so lines
// align and sort as text: 2026-12-07T16:23:59.042Z.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// zerolog's settings are global; they are set once, before any logger of the
// process (or of a test) writes.
func init() {
	zerolog.TimeFieldFormat = timeFormat
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
	// Dur fields: a number of milliseconds (fractional below one), so every
	// duration field is named *_ms. These are zerolog's defaults, written
	// out because the field names depend on them.
	zerolog.DurationFieldUnit = time.Millisecond
	zerolog.DurationFieldFormat = zerolog.DurationFormatFloat
}

// newLogger returns the process's logger writing to w in the configured
// format; color applies to the console format only.
func newLogger(c config.Log, w io.Writer, color bool) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel // config validation already rejects bad levels
	}
	return zerolog.New(formatted(c.Format, w, color)).Level(level).With().Timestamp().Logger()
}

// newAccessLogger returns the logger of the access log's own file: the same
// format, never coloured, and every line whatever log.level says (the
// level filters the error log; access_log turns the access log on and off).
func newAccessLogger(c config.Log, w io.Writer) zerolog.Logger {
	return zerolog.New(formatted(c.Format, w, false)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
}

func formatted(format string, w io.Writer, color bool) io.Writer {
	if format != "console" {
		return w // json: never any escape sequence
	}
	return zerolog.ConsoleWriter{Out: w, NoColor: !color, TimeFormat: timeFormat, TimeLocation: time.UTC}
}

// useColor reports whether console logs written to w get colour: only when w
// is a terminal (journald, docker logs and files get plain text).
func useColor(w io.Writer, getenv func(string) string) bool {
	return colorDecision(isTerminal(w), getenv)
}

// colorDecision: colour on a terminal, unless NO_COLOR is set to anything
// (no-color.org) or the terminal says it cannot show it (TERM=dumb).
func colorDecision(terminal bool, getenv func(string) string) bool {
	return terminal && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && isatty.IsTerminal(f.Fd())
}

// logFile is an access log file, appended to and reopened on demand: after
// logrotate renames it, a reopen creates a new file at the path while the
// renamed one keeps every line written before. Writes from many connections
// go through concurrently; a reopen waits for those under way.
type logFile struct {
	path string
	mu   sync.RWMutex
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, f: f}, nil
}

// openAppend opens path for appending, creating it (0640: it holds client
// addresses) if need be. O_APPEND keeps whole lines from two processes
// apart, as during an upgrade.
func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("log.access_log_file: %w", err)
	}
	return f, nil
}

// Write writes one log line (zerolog writes each in one call).
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.f.Write(p)
}

// Reopen opens the path again and writes there from now on. When it cannot
// be opened the old file stays in use, so no line is lost.
func (l *logFile) Reopen() error {
	f, err := openAppend(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

// Close closes the file; nothing may be written after.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// logRing is how many lines a log's writer holds for a reader that fell
// behind (about 2 MiB of access log lines).
const logRing = 8192

// nonBlocking wraps w so that writing a log line never blocks the writer:
// lines go through a ring that a goroutine of their own writes out in order.
// The copy engine's loops write the access log and the connect warnings; a
// reader that stops reading (a wedged journald, a paused `docker logs`) would
// otherwise stall every connection of a loop once the pipe is full. When
// the reader falls logRing lines behind, the oldest lines give way and a
// warning made by dropped says how many went. flush writes out what the ring
// holds and stops the goroutine. zerolog's diode is that ring; it copies
// each line, since zerolog reuses its buffers.
func nonBlocking(w io.Writer, dropped func(n int) []byte) (_ io.Writer, flush func()) {
	// Only w's Write: the diode's Close would close a Closer (stderr).
	d := diode.NewWriter(struct{ io.Writer }{w}, logRing, 0, func(n int) {
		_, _ = w.Write(dropped(n)) // on the ring's goroutine, in order with the lines
	})
	return d, func() { _ = d.Close() }
}

// droppedLine formats the warning for n lines dropped, as a logger made by
// newLogger (c, color) or newAccessLogger (c, false) writes it.
func droppedLine(c config.Log, color bool) func(n int) []byte {
	return func(n int) []byte {
		var b bytes.Buffer
		l := zerolog.New(formatted(c.Format, &b, color)).With().Timestamp().Logger()
		l.Warn().Int("dropped", n).Msg("log lines dropped: the log's reader fell behind")
		return b.Bytes()
	}
}
