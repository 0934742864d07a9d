package peer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// newBalanceL4 runs the balance-l4 binary the benchmark built, with active health
// checks off (the backends are known good and checks would only add noise), the
// access log off and the admin server off.
func newBalanceL4(env Env) *procPeer {
	p := &procPeer{
		name:     BalanceL4,
		env:      env,
		describe: "balance-l4 round_robin, active health checks off, access_log off, log.level warn, admin off; passive checks, breaker and retries at their defaults",
	}
	switch {
	case env.BalanceL4 == "" && env.BuildErr != nil:
		p.absent = fmt.Errorf("%w: balance-l4 did not build: %v", ErrAbsent, env.BuildErr)
		return p
	case env.BalanceL4 == "":
		p.absent = fmt.Errorf("%w: balance-l4 binary not given", ErrAbsent)
		return p
	}
	p.command = balanceL4Command(env, env.BalanceL4)
	return p
}

// newBalanceL4B runs a second balance-l4 binary, configured as the first.
func newBalanceL4B(env Env) *procPeer {
	p := &procPeer{
		name:     BalanceL4B,
		env:      env,
		describe: "the balance-l4 binary given with -balance-l4-b, configured as balance-l4",
	}
	if env.BalanceL4B == "" {
		p.absent = fmt.Errorf("%w: no -balance-l4-b binary given", ErrAbsent)
		return p
	}
	p.command = balanceL4Command(env, env.BalanceL4B)
	return p
}

func balanceL4Command(env Env, bin string) func(dir string, fe Frontends) (*exec.Cmd, error) {
	return func(dir string, fe Frontends) (*exec.Cmd, error) {
		cfg := filepath.Join(dir, "balance-l4.toml")
		if err := os.WriteFile(cfg, []byte(BalanceL4Config(fe, env.Backends.Echo, env.Backends.Sink)), 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", cfg, err)
		}
		if err := CheckBalanceL4Config(bin, cfg); err != nil {
			return nil, err
		}
		return exec.Command(bin, "-config", cfg), nil
	}
}

// BalanceL4Config is the configuration of the balance-l4 peer (SPEC §2).
func BalanceL4Config(fe Frontends, echo, sink []string) string {
	var b strings.Builder
	b.WriteString(`shutdown_timeout = "1s"

[admin]
listen = ""

[log]
level = "warn"
access_log = false

[health_check]
enabled = false
`)
	writeBalanceService(&b, "echo", fe.Echo, echo)
	writeBalanceService(&b, "sink", fe.Sink, sink)
	return b.String()
}

func writeBalanceService(b *strings.Builder, name, listen string, backends []string) {
	fmt.Fprintf(b, "\n[[services]]\nname = %s\nlisten = %s\n", strconv.Quote(name), strconv.Quote(listen))
	for i, addr := range backends {
		fmt.Fprintf(b, "\n[[services.backends]]\nname = \"%s%d\"\naddress = %s\n", name, i, strconv.Quote(addr))
	}
}

// CheckBalanceL4Config runs balance-l4 -check on a configuration file and returns
// its complaints as the error.
func CheckBalanceL4Config(bin, cfg string) error {
	out, err := exec.Command(bin, "-config", cfg, "-check").CombinedOutput()
	if err != nil {
		return fmt.Errorf("checking %s with balance-l4 -check: %w: %s", cfg, err, strings.TrimSpace(string(out)))
	}
	return nil
}
