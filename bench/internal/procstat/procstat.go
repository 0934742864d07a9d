// Package procstat reads what a proxy process costs from /proc: CPU time, resident
// memory and open file descriptors, summed over the process and its descendants
// (nginx's master and workers are one proxy).
//
// The benchmark reads these before and after a load so it can report cost per
// operation (CPU per GB, per connection, per request; bytes and fds per idle
// connection) beside every rate: rates drift on a shared machine, costs repeat.
//
// Typical use:
//
//	before, _ := procstat.Read(pid)
//	// ... load ...
//	after, _ := procstat.Read(pid)
//	cpu := after.CPU - before.CPU
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/PID/stat. Linux fixes USER_HZ at
// 100 on every architecture Go supports, independent of the kernel's CONFIG_HZ.
const userHZ = 100

// ErrNoProcess says the process is gone.
var ErrNoProcess = errors.New("procstat: no such process")

// Usage is a sample of a process group's resources.
type Usage struct {
	CPU   time.Duration // user + system time consumed so far, 10 ms resolution
	RSS   int64         // resident set size, bytes
	FDs   int           // open file descriptors
	Procs int           // processes summed
}

// Read samples pid and all its descendants.
func Read(pid int) (Usage, error) {
	pids, err := Descendants(pid)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	for _, p := range append([]int{pid}, pids...) {
		one, err := readOne(p)
		if errors.Is(err, ErrNoProcess) && p != pid {
			continue // a worker exited between listing and reading
		}
		if err != nil {
			return Usage{}, err
		}
		u.CPU += one.CPU
		u.RSS += one.RSS
		u.FDs += one.FDs
		u.Procs++
	}
	return u, nil
}

func readOne(pid int) (Usage, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Usage{}, wrapMissing(pid, err)
	}
	st, err := ParseStat(stat)
	if err != nil {
		return Usage{}, fmt.Errorf("reading /proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return Usage{}, wrapMissing(pid, err)
	}
	rss, err := ParseVmRSS(status)
	if err != nil {
		return Usage{}, fmt.Errorf("reading /proc/%d/status: %w", pid, err)
	}
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return Usage{}, wrapMissing(pid, err)
	}
	return Usage{CPU: st.CPU, RSS: rss, FDs: len(fds), Procs: 1}, nil
}

func wrapMissing(pid int, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading process %d: %w", pid, ErrNoProcess)
	}
	return fmt.Errorf("reading process %d: %w", pid, err)
}

// Stat is the part of /proc/PID/stat the benchmark needs.
type Stat struct {
	PPID int
	CPU  time.Duration // utime + stime
}

// ParseStat parses the contents of /proc/PID/stat. The command name (field 2) may
// hold spaces and parentheses, so fields are counted from its last ')'.
func ParseStat(b []byte) (Stat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return Stat{}, errors.New("parsing stat: no command name")
	}
	// Fields after the name start at field 3 (state): ppid is field 4, utime 14, stime 15.
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 13 {
		return Stat{}, fmt.Errorf("parsing stat: %d fields after the name, want at least 13", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("parsing stat ppid %q: %w", f[1], err)
	}
	utime, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("parsing stat utime %q: %w", f[11], err)
	}
	stime, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("parsing stat stime %q: %w", f[12], err)
	}
	return Stat{PPID: ppid, CPU: time.Duration(utime+stime) * time.Second / userHZ}, nil
}

// ParseVmRSS returns VmRSS from the contents of /proc/PID/status, in bytes.
func ParseVmRSS(b []byte) (int64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parsing VmRSS %q: want \"N kB\"", strings.TrimSpace(string(rest)))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing VmRSS %q: %w", f[0], err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("parsing status: no VmRSS line (kernel thread or zombie)")
}

// Descendants lists the live descendants of pid (children, grandchildren, ...),
// found by scanning every process's parent in /proc.
func Descendants(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing /proc: %w", err)
	}
	children := make(map[int][]int)
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited while we listed
		}
		st, err := ParseStat(b)
		if err != nil {
			return nil, fmt.Errorf("reading /proc/%d/stat: %w", p, err)
		}
		children[st.PPID] = append(children[st.PPID], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out, nil
}
