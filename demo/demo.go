// Package demo runs the built-in demo of `balance-l4 -demo`: three small TCP
// backends on loopback, a configuration file in front of them, and a trickle of
// client traffic, so a newcomer sees live numbers and state changes on the
// dashboard without writing anything.
//
// Each backend greets a client with its name, then echoes lines back. The line
// "HEALTH" is its health endpoint: it answers "OK <name>" while well and
// "FAIL <name>" while sick. One backend falls sick now and then, so the
// dashboard shows a backend leaving and rejoining the pool.
package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Backend is one demo backend.
type Backend struct {
	Name string
	ln   net.Listener
	sick atomic.Bool
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// StartBackend listens on a free loopback port and serves until Close.
func StartBackend(name string) (*Backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting demo backend %s: %w", name, err)
	}
	b := &Backend{Name: name, ln: ln, conns: make(map[net.Conn]struct{})}
	b.wg.Add(1)
	go b.serve()
	return b, nil
}

// Addr is the backend's host:port.
func (b *Backend) Addr() string { return b.ln.Addr().String() }

// SetSick makes the health endpoint fail (true) or pass (false).
func (b *Backend) SetSick(sick bool) { b.sick.Store(sick) }

// Close stops the backend and closes its connections.
func (b *Backend) Close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *Backend) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go b.handle(c)
	}
}

func (b *Backend) handle(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.Close()
	}()
	fmt.Fprintf(c, "hello from %s, I echo every line\r\n", b.Name)
	r := bufio.NewReader(io.LimitReader(c, 1<<20))
	for {
		line, err := r.ReadString('\n')
		if strings.TrimSpace(line) == "HEALTH" {
			verdict := "OK"
			if b.sick.Load() {
				verdict = "FAIL"
			}
			fmt.Fprintf(c, "%s %s\r\n", verdict, b.Name)
		} else if line != "" {
			if _, werr := io.WriteString(c, line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Demo is the running demo: backends, a configuration file and traffic.
type Demo struct {
	Backends    []*Backend
	ConfigPath  string
	ServiceAddr string
	AdminAddr   string
	dir         string
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// Start starts three backends and writes a configuration for them into a new
// temporary directory. Traffic starts with StartTraffic, once the service listens.
func Start() (*Demo, error) {
	d := &Demo{}
	for _, name := range []string{"demo-1", "demo-2", "demo-3"} {
		b, err := StartBackend(name)
		if err != nil {
			d.Stop()
			return nil, err
		}
		d.Backends = append(d.Backends, b)
	}
	var err error
	if d.ServiceAddr, err = freeAddr("127.0.0.1:7000"); err != nil {
		d.Stop()
		return nil, err
	}
	if d.AdminAddr, err = freeAddr("127.0.0.1:9090"); err != nil {
		d.Stop()
		return nil, err
	}
	if d.dir, err = os.MkdirTemp("", "balance-l4-demo-"); err != nil {
		d.Stop()
		return nil, fmt.Errorf("creating demo directory: %w", err)
	}
	d.ConfigPath = filepath.Join(d.dir, "balance.toml")
	if err := os.WriteFile(d.ConfigPath, []byte(d.config()), 0o600); err != nil {
		d.Stop()
		return nil, fmt.Errorf("writing demo configuration: %w", err)
	}
	return d, nil
}

// config is the demo's configuration: quick checks, so changes show within seconds.
func (d *Demo) config() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `# balance-l4 demo configuration, written by "balance-l4 -demo".
# Edit it and send SIGHUP (or POST /api/v1/reload) to see a reload.
state_file = %q
shutdown_timeout = "5s"

[admin]
listen = %q

[log]
level = "info"
access_log = false

[health_check]
type = "tcp"
send = "HEALTH\r\n"
expect = "OK"
interval = "2s"
timeout = "1s"
healthy_threshold = 2
unhealthy_threshold = 2

[[services]]
name = "demo"
listen = %q
algorithm = "round_robin"
slow_start = "10s"
`, filepath.Join(d.dir, "state.json"), d.AdminAddr, d.ServiceAddr)
	weights := []int{3, 2, 1}
	for i, b := range d.Backends {
		fmt.Fprintf(&sb, "\n[[services.backends]]\nname = %q\naddress = %q\nweight = %d\n", b.Name, b.Addr(), weights[i])
	}
	return sb.String()
}

// StartTraffic opens client connections through the service until Stop: a new
// one every 200 ms, each held for a random few seconds, at most 24 at once.
// One backend falls sick for 20 s of every 60 s.
func (d *Demo) StartTraffic() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		d.clients(ctx)
	}()
	go func() {
		defer d.wg.Done()
		d.flap(ctx)
	}()
}

func (d *Demo) clients(ctx context.Context) {
	slots := make(chan struct{}, 24)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			client(ctx, d.ServiceAddr)
		}()
	}
}

// client talks to the service for a few seconds: a line every half second.
func client(ctx context.Context, addr string) {
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	go io.Copy(io.Discard, c) // ends when c closes
	lines := 2 + rand.IntN(16)
	payload := strings.Repeat("x", 200+rand.IntN(4000))
	for i := 0; i < lines; i++ {
		if _, err := fmt.Fprintf(c, "line %d %s\n", i, payload); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (d *Demo) flap(ctx context.Context) {
	sick := d.Backends[len(d.Backends)-1]
	for {
		for _, phase := range []struct {
			sick bool
			d    time.Duration
		}{{false, 40 * time.Second}, {true, 20 * time.Second}} {
			sick.SetSick(phase.sick)
			select {
			case <-ctx.Done():
				return
			case <-time.After(phase.d):
			}
		}
	}
}

// StopTraffic ends the demo clients and waits for them.
func (d *Demo) StopTraffic() {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
}

// Stop ends traffic, stops the backends and removes the demo directory.
func (d *Demo) Stop() {
	d.StopTraffic()
	for _, b := range d.Backends {
		b.Close()
	}
	if d.dir != "" {
		os.RemoveAll(d.dir)
	}
}

// freeAddr returns preferred when it can be listened on, else a free loopback port.
func freeAddr(preferred string) (string, error) {
	for _, addr := range []string{preferred, "127.0.0.1:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		a := ln.Addr().String()
		ln.Close()
		return a, nil
	}
	return "", errors.New("no free loopback port")
}
