package testservers

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestServersStartAndStop starts each server, talks to it over loopback, and
// checks that Stop ends the process and removes its directory.
func TestServersStartAndStop(t *testing.T) {
	for name, start := range map[string]func() (*Server, error){
		"postgres": StartPostgres,
		"mariadb":  StartMariaDB,
		"redis":    func() (*Server, error) { return StartRedis() },
	} {
		t.Run(name, func(t *testing.T) {
			srv, err := start()
			if err != nil {
				Fail(t, err)
			}
			conn, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
			if err != nil {
				srv.Stop()
				t.Fatalf("dialing %s at %s: %v", name, srv.Addr, err)
			}
			conn.Close()
			pid := srv.cmd.Process.Pid
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := srv.Stop(); err != nil {
				t.Fatalf("second Stop: %v", err)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process %d still exists after Stop: %v", pid, err)
			}
			if _, err := os.Stat(srv.Dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("directory %s still exists after Stop: %v", srv.Dir, err)
			}
		})
	}
}

func TestFindBinaryMissing(t *testing.T) {
	_, err := findBinary("nothing", "/nonexistent/bin/*")
	if !errors.Is(err, ErrMissingBinary) {
		t.Fatalf("err %v, want ErrMissingBinary", err)
	}
}

func TestLazySharesOneServer(t *testing.T) {
	starts := 0
	l := NewLazy(func() (*Server, error) { starts++; return StartRedis() })
	a, b := l.Get(t), l.Get(t)
	if a != b || starts != 1 {
		t.Fatalf("two Gets started %d servers", starts)
	}
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
}
