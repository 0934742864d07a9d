package health

import (
	"fmt"
	"os"
	"testing"

	"github.com/balancel4/balance-l4/internal/testservers"
	"go.uber.org/goleak"
)

// Real servers, started on first use and shared by the package's tests.
var (
	postgresServer  = testservers.NewLazy(testservers.StartPostgres)
	mariadbServer   = testservers.NewLazy(testservers.StartMariaDB)
	redisServer     = testservers.NewLazy(func() (*testservers.Server, error) { return testservers.StartRedis() })
	redisAuthServer = testservers.NewLazy(testservers.RedisWithPassword("s3cret"))
)

// TestMain is goleak.VerifyTestMain with the shared servers stopped first:
// each has a goroutine waiting for its process until then.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, l := range []*testservers.Lazy{postgresServer, mariadbServer, redisServer, redisAuthServer} {
		if err := l.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
