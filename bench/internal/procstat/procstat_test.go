package procstat

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "42 (haproxy) S 7 42 42 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 2 0 100 1000 200",
			want: Stat{PPID: 7, CPU: 3800 * time.Millisecond},
		},
		{
			name: "name with spaces and parens",
			in:   "9 (nginx: (worker) x) R 8 9 9 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 6 7",
			want: Stat{PPID: 8, CPU: 30 * time.Millisecond},
		},
		{name: "no name", in: "9 nginx R 8", wantErr: true},
		{name: "short", in: "9 (x) R 8 9 9", wantErr: true},
		{name: "bad utime", in: "9 (x) R 8 9 9 0 -1 0 0 0 0 0 z 2 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStat error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("ParseStat = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	got, err := ParseVmRSS([]byte("Name:\tx\nVmPeak:\t 100 kB\nVmRSS:\t    2048 kB\nThreads: 3\n"))
	if err != nil || got != 2048*1024 {
		t.Fatalf("ParseVmRSS = %d, %v; want %d", got, err, 2048*1024)
	}
	for _, bad := range []string{"Name:\tkthread\n", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n"} {
		if _, err := ParseVmRSS([]byte(bad)); err == nil {
			t.Errorf("ParseVmRSS(%q) succeeded, want an error", bad)
		}
	}
}

func TestReadCountsChildren(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	cmd := exec.Command(sleep, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	kids, err := Descendants(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(kids, cmd.Process.Pid) {
		t.Fatalf("Descendants(self) = %v, want it to hold child %d", kids, cmd.Process.Pid)
	}
	self, err := readOne(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	all, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if all.Procs < 2 || all.RSS <= self.RSS || all.FDs <= self.FDs {
		t.Fatalf("Read(self) = %+v, want more than self alone %+v", all, self)
	}
}

func TestReadCPUGrows(t *testing.T) {
	before, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the kernel's 10 ms accounting shows it, for at most 5 s.
	x := 1
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		for range 1_000_000 {
			x = x*31 + 7
		}
		after, err := Read(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after.CPU > before.CPU {
			return
		}
	}
	t.Fatalf("CPU time did not grow (x=%d)", x)
}

func TestReadMissing(t *testing.T) {
	_, err := Read(1 << 30)
	if !errors.Is(err, ErrNoProcess) {
		t.Fatalf("Read(no such pid) error = %v, want ErrNoProcess", err)
	}
}
