// Package report renders a benchmark run as Markdown: the machine and versions it
// ran on, one table of medians, each load led by the proxy's cost per operation,
// with ratios to direct, to HAProxy 2 threads and to nginx and the best proxy
// per figure marked, the spread of the runs, errors by kind, and the
// control-plane figures. Chart draws every figure per peer as one SVG, which
// the Markdown links. It rewrites only its own block of BENCHMARKS.md, so
// analysis written around the block survives the next run.
package report

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes where and how a run happened.
type Machine struct {
	Date    time.Time
	Command string // as the user would type it
	Go      string
	HAProxy string // first line of haproxy -v, or why it is absent
	Nginx   string // nginx -v, or why it is absent
	Kernel  string
	CPU     string // model name
	Cores   int
	Load    string // /proc/loadavg when the run started
}

// ReadMachine gathers the Machine facts; haproxy and nginx are the binaries used.
func ReadMachine(command, haproxy, nginx string) Machine {
	m := Machine{
		Date:    time.Now().UTC(),
		Command: command,
		Go:      runtime.Version(),
		Kernel:  firstLine(readFile("/proc/sys/kernel/osrelease")),
		Cores:   runtime.NumCPU(),
		Load:    firstLine(readFile("/proc/loadavg")),
		HAProxy: versionLine(haproxy, "-v"),
		Nginx:   versionLine(nginx, "-v"),
	}
	for line := range strings.Lines(readFile("/proc/cpuinfo")) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			m.CPU = strings.TrimSpace(v)
			break
		}
	}
	return m
}

// LoadAverage is /proc/loadavg now.
func LoadAverage() string { return firstLine(readFile("/proc/loadavg")) }

func versionLine(bin, flag string) string {
	if bin == "" {
		return "absent"
	}
	out, err := exec.Command(bin, flag).CombinedOutput()
	if err != nil {
		return "absent (" + err.Error() + ")"
	}
	return firstLine(string(bytes.TrimSpace(out)))
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}
