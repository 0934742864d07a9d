package etcdtest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// BinaryEnv names a prebuilt etcd server to use instead of building one.
const BinaryEnv = "BALANCE_ETCD_BIN"

const modulePath = "github.com/balancel4/balance-l4"

// The binary of this test process, built (or found) once.
var binary struct {
	sync.Mutex
	path string
	err  error // a failed build is not tried again
}

// Binary returns the path of an etcd server built from tools/etcd, or of
// $BALANCE_ETCD_BIN when set. The build is cached in the user's cache
// directory under a hash of tools/etcd's sources, shared by later runs and
// by test packages running in parallel (a file lock makes one of them build
// while the others wait). A failed build fails tb with the build's output.
func Binary(tb testing.TB) string {
	tb.Helper()
	binary.Lock()
	defer binary.Unlock()
	if binary.path == "" && binary.err == nil {
		binary.path, binary.err = findOrBuild(tb)
	}
	if binary.err != nil {
		tb.Fatal(binary.err)
	}
	return binary.path
}

func findOrBuild(tb testing.TB) (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("$%s: %w", BinaryEnv, err)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "tools", "etcd")
	sum, err := sourceHash(src)
	if err != nil {
		return "", err
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "etcd-"+sum)
	if checkExecutable(path) == nil {
		return path, nil
	}

	// Another test process may be building the same binary: take the lock,
	// then look again.
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("opening build lock: %w", err)
	}
	defer lock.Close() // releases the lock
	if err := flock(lock); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	if checkExecutable(path) == nil {
		return path, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	defer os.Remove(tmp) // left only by a failed build
	tb.Logf("etcdtest: building the etcd server from %s (once; cached as %s)", src, path)
	cmd := exec.CommandContext(tb.Context(), "go", "build", "-mod=readonly", "-buildvcs=false", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building etcd in %s: %w\n%s", src, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("installing the etcd binary: %w", err)
	}
	return path, nil
}

// flock takes an exclusive lock on f, retrying when a signal interrupts.
func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// repoRoot walks up from the working directory to this module's root.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for dir := wd; ; {
		if isRoot, err := isModuleRoot(dir); err != nil {
			return "", err
		} else if isRoot {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above %s", modulePath, wd)
		}
		dir = parent
	}
}

// isModuleRoot reports whether dir holds the go.mod of modulePath.
func isModuleRoot(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("reading go.mod: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == modulePath, nil
		}
	}
	return false, nil
}

// sourceHash is a short hash of what the build depends on in src.
func sourceHash(src string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", fmt.Errorf("hashing the etcd sources: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// cacheDir is where built binaries live: the user's cache directory, or the
// temporary directory when there is none (no $HOME).
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "balance-l4")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("making the cache directory: %w", err)
	}
	return dir, nil
}
