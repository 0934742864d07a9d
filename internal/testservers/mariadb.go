package testservers

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
)

// StartMariaDB initialises a fresh data directory and starts MariaDB (or
// MySQL) on a free loopback port, as the mysql user when running as root,
// with its normal grant tables.
func StartMariaDB() (*Server, error) {
	mysqld, err := findBinary("MariaDB server", "/usr/sbin/mariadbd", "/usr/sbin/mysqld", "/usr/bin/mariadbd")
	if err != nil {
		return nil, err
	}
	install, err := findBinary("mariadb-install-db", "/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db")
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount("mysql")
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("testservers-mariadb-", acct)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	installArgs := []string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}
	if acct != nil {
		installArgs = append(installArgs, "--user="+acct.name)
	}
	if err := run(acct, filepath.Join(dir, "install.log"), install, installArgs...); err != nil {
		return nil, removeAfter(dir, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, removeAfter(dir, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	errorLog := filepath.Join(dir, "error.log")
	// It listens before it is ready, and loses a SIGTERM until it is.
	srv, err := start("mariadb", dir, addr, errorLog, "ready for connections", acct, mysqld,
		"--no-defaults", "--datadir="+data, "--socket="+filepath.Join(dir, "mysqld.sock"),
		"--pid-file="+filepath.Join(dir, "mysqld.pid"), "--port="+strconv.Itoa(port),
		"--bind-address=127.0.0.1", "--skip-name-resolve", "--skip-log-bin",
		"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M", "--performance-schema=OFF",
		"--log-error="+errorLog)
	if err != nil {
		return nil, removeAfter(dir, fmt.Errorf("mariadb: %w", err))
	}
	return srv, nil
}
