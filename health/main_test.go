package health

import (
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

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		for _, l := range []*testservers.Lazy{postgresServer, mariadbServer, redisServer, redisAuthServer} {
			if err := l.Stop(); err != nil {
				os.Stderr.WriteString(err.Error() + "\n")
				code = 1
			}
		}
		os.Exit(code)
	}))
}
