package testservers

import (
	"fmt"
	"net"
	"strconv"
)

// StartRedis starts redis-server on a free loopback port with no persistence;
// extra args are appended (e.g. "--requirepass", "secret"). It runs as the
// redis user when running as root.
func StartRedis(extra ...string) (*Server, error) {
	bin, err := findBinary("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount("redis")
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("testservers-redis-", acct)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, removeAfter(dir, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir, "--daemonize", "no"}, extra...)
	srv, err := start("redis", dir, addr, "", "", acct, bin, args...)
	if err != nil {
		return nil, removeAfter(dir, fmt.Errorf("redis: %w", err))
	}
	return srv, nil
}

// RedisWithPassword returns a start func for a Redis that requires password.
func RedisWithPassword(password string) func() (*Server, error) {
	return func() (*Server, error) { return StartRedis("--requirepass", password) }
}
