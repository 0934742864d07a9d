package testservers

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
)

// StartPostgres initialises a fresh cluster (trust authentication, no fsync)
// and starts PostgreSQL on a free loopback port, as the postgres user when
// running as root. Its Unix socket lives in the data directory.
func StartPostgres() (*Server, error) {
	initdb, err := findBinary("PostgreSQL initdb", "/usr/lib/postgresql/*/bin/initdb", "/usr/bin/initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := findBinary("PostgreSQL", filepath.Join(filepath.Dir(initdb), "postgres"))
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("testservers-postgres-", acct)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := run(acct, filepath.Join(dir, "initdb.log"), initdb,
		"-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--no-instructions"); err != nil {
		return nil, removeAfter(dir, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, removeAfter(dir, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	srv, err := start("postgres", dir, addr, "", "ready to accept connections", acct, postgres,
		"-D", data, "-k", dir, "-p", strconv.Itoa(port), "-h", "127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=50")
	if err != nil {
		return nil, removeAfter(dir, fmt.Errorf("postgres: %w", err))
	}
	return srv, nil
}
