package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/balancel4/balance-l4/bench/internal/peer"
)

// Options say how to run balance-l4 and its backends.
type Options struct {
	BalanceL4 string       // path of the balance-l4 binary
	Dir       string       // scratch directory for configurations and logs
	Spawn     peer.Spawner // runs the benchmark binary as a backend child
	Log       io.Writer    // progress lines; nil = none
}

func (o Options) log(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// instance is a running balance-l4 with its admin server and echo backends.
type instance struct {
	proc   *peer.Process
	be     *peer.Backends
	admin  string // base URL
	client *http.Client
}

// startTimeout bounds how long balance-l4 gets to serve its admin API; a
// configuration of 10 000 backends checks them all at once at start.
const startTimeout = 60 * time.Second

// start runs balance-l4 with services × perSvc backends spread over up to 100
// echo servers, and waits for its admin server.
func start(ctx context.Context, o Options, name string, services, perSvc int, checks bool, interval time.Duration) (*instance, error) {
	if o.BalanceL4 == "" {
		return nil, fmt.Errorf("starting %s: no balance-l4 binary", name)
	}
	be, err := peer.StartBackends(ctx, o.Spawn, o.Dir, name+"-backends", min(perSvc, 100), 0)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	inst := &instance{be: be, client: &http.Client{Timeout: 60 * time.Second}}
	if err := inst.launch(ctx, o, name, services, perSvc, checks, interval); err != nil {
		_ = inst.stop()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return inst, nil
}

func (i *instance) launch(ctx context.Context, o Options, name string, services, perSvc int, checks bool, interval time.Duration) error {
	ports, err := peer.FreePorts(services + 1)
	if err != nil {
		return err
	}
	cfg := filepath.Join(o.Dir, name+".toml")
	text := Config(Scale{
		Listens:  ports[1:],
		Backends: i.be.Addrs.Echo,
		PerSvc:   perSvc,
		Admin:    ports[0],
		Checks:   checks,
		Interval: interval,
		Timeout:  time.Second,
	})
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", cfg, err)
	}
	if err := peer.CheckBalanceL4Config(o.BalanceL4, cfg); err != nil {
		return err
	}
	proc, err := peer.StartProcess(name, exec.Command(o.BalanceL4, "-config", cfg), filepath.Join(o.Dir, name+".log"))
	if err != nil {
		return err
	}
	i.proc = proc
	i.admin = "http://" + ports[0]
	return i.waitHealthy(ctx)
}

// waitHealthy polls /healthz until it answers 200, the process exits, or
// startTimeout passes.
func (i *instance) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		if err := i.proc.Alive(); err != nil {
			return err
		}
		status, _, err := i.get(ctx, "/healthz")
		if err == nil && status == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s/healthz: %w (last: status %d, %v)", i.admin, ctx.Err(), status, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// get fetches path from the admin server and returns the status and body.
func (i *instance) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, i.admin+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("requesting %s: %w", path, err)
	}
	resp, err := i.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("requesting %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return resp.StatusCode, body, nil
}

// apiBackend is the part of the admin API's backend object (SPEC §4) read here.
// The check counters are balance-l4 extras; nil when the API lacks them.
type apiBackend struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	LastCheck *struct {
		Time time.Time `json:"time"`
		OK   bool      `json:"ok"`
	} `json:"last_check"`
	ChecksSuccess *int64 `json:"checks_success"`
	ChecksFailure *int64 `json:"checks_failure"`
}

type apiService struct {
	Name     string       `json:"name"`
	Backends []apiBackend `json:"backends"`
}

// snapshot is GET /api/v1/services with when it was asked and how long it took.
type snapshot struct {
	sent     time.Time
	took     time.Duration
	services []apiService
}

func (i *instance) services(ctx context.Context) (snapshot, error) {
	s := snapshot{sent: time.Now()}
	status, body, err := i.get(ctx, "/api/v1/services")
	s.took = time.Since(s.sent)
	if err != nil {
		return s, err
	}
	if status != http.StatusOK {
		return s, fmt.Errorf("GET /api/v1/services: status %d: %.200s", status, body)
	}
	if err := json.Unmarshal(body, &s.services); err != nil {
		return s, fmt.Errorf("decoding /api/v1/services: %w", err)
	}
	return s, nil
}

func (i *instance) stop() error {
	if i.client != nil {
		i.client.CloseIdleConnections()
	}
	var err error
	if i.proc != nil {
		err = i.proc.Stop()
	}
	if berr := i.be.Stop(); err == nil {
		err = berr
	}
	return err
}
