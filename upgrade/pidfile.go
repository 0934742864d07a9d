package upgrade

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// WritePIDFile writes pid to path atomically (a temporary file in the same
// directory renamed over it), so a reader never sees an empty or half file.
func WritePIDFile(path string, pid int) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing PID file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.WriteString(strconv.Itoa(pid) + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing PID file %s: %w", path, err)
	}
	return nil
}

// ReadPIDFile returns the PID in path.
func ReadPIDFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data)))
	if err != nil {
		return 0, fmt.Errorf("PID file %s: %w", path, err)
	}
	return pid, nil
}

// RemovePIDFile removes path if it still holds pid: a process that leaves
// never removes the file of the process that replaced it.
func RemovePIDFile(path string, pid int) error {
	got, err := ReadPIDFile(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && got != pid {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Remove(path)
}

// Notify sends state to systemd's notification socket ($NOTIFY_SOCKET), as
// sd_notify(3) does: "READY=1" once serving; "MAINPID=N\nREADY=1" from a new
// process that took over (the unit needs NotifyAccess=all for that). It does
// nothing and returns false without NOTIFY_SOCKET.
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if path[0] == '@' { // the abstract namespace
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}
