package suite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/load"
	"github.com/balancel4/balance-l4/bench/internal/peer"
	"github.com/balancel4/balance-l4/bench/internal/procstat"
)

// syscalls counts the system calls a proxy makes per connection: the
// connection-rate load (each connection a 32-byte echo, then FIN both ways)
// runs while strace -f -c counts every call of the proxy's processes and
// threads, its runtime's own included. strace slows the proxy; the count per
// connection is what is compared, not the rate.
func syscalls(ctx context.Context, o Options, p peer.Peer) measurement {
	pid := p.PID()
	if pid == 0 { // direct: no proxy to count; the load alone, for its count
		r, err := load.ConnRate(ctx, p.Frontends().Echo, o.ConnRateWorkers, o.Duration)
		if err != nil {
			return measurement{errors: r.Errors, err: err}
		}
		return measurement{errors: r.Errors, values: map[string]float64{"syscalls.conns": float64(r.Conns)}}
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		return measurement{err: fmt.Errorf("counting system calls needs strace (apt-get install strace): %w", err)}
	}
	pids, err := procstat.Descendants(pid)
	if err != nil {
		return measurement{err: err}
	}
	dir, err := os.MkdirTemp("", "l4bench-strace")
	if err != nil {
		return measurement{err: err}
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "counts.txt")
	args := []string{"-f", "-c", "-o", out}
	for _, q := range append([]int{pid}, pids...) {
		args = append(args, "-p", strconv.Itoa(q))
	}
	cmd := exec.Command(strace, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return measurement{err: fmt.Errorf("starting strace: %w", err)}
	}
	// strace says "Process N attached" once it follows each one.
	if err := sleep(ctx, 300*time.Millisecond); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return measurement{err: err}
	}
	r, lerr := load.ConnRate(ctx, p.Frontends().Echo, o.ConnRateWorkers, o.Duration)
	_ = cmd.Process.Signal(syscall.SIGINT) // detaches and writes the summary
	werr := cmd.Wait()
	if lerr != nil {
		return measurement{errors: r.Errors, err: lerr}
	}
	report, err := os.ReadFile(out)
	if err != nil {
		return measurement{errors: r.Errors, err: fmt.Errorf("strace wrote no summary (%v, %s): %w", werr, strings.TrimSpace(stderr.String()), err)}
	}
	total, err := straceTotal(string(report))
	if err != nil {
		return measurement{errors: r.Errors, err: err}
	}
	if r.Conns == 0 {
		return measurement{errors: r.Errors, err: fmt.Errorf("no connection completed (errors %v)", r.Errors)}
	}
	per := float64(total) / float64(r.Conns)
	m := measurement{errors: r.Errors, values: map[string]float64{"syscalls.per_conn": per, "syscalls.conns": float64(r.Conns)}}
	m.note = fmt.Sprintf("%.1f system calls per connection (%d calls, %d connections)", per, total, r.Conns)
	return m
}

// straceTotal reads the calls column of strace -c's total line.
func straceTotal(report string) (int, error) {
	for _, line := range strings.Split(report, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[len(f)-1] == "total" {
			return strconv.Atoi(f[3])
		}
	}
	return 0, errors.New("no total line in the strace summary")
}
