package admin

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Options configures the admin server. Zero values mean the defaults given.
type Options struct {
	Listen string // host:port
	// ListenFunc opens the listener for Listen ("tcp", Listen); nil means
	// net.Listen. An upgrade sets it to take the listener the old process
	// handed over.
	ListenFunc  func(network, addr string) (net.Listener, error)
	Version     string // this binary's version, for GET /api/v1/info and the dashboard
	Token       string // "" = no auth (the config layer guarantees loopback then)
	ReadToken   string // read-only access (SPEC §9); needs Token
	Log         zerolog.Logger
	Controller  Controller
	Now         func() time.Time // nil = time.Now (for the sparkline sampler and "time since")
	SampleEvery time.Duration    // sparkline sampling period; 0 = 5s

	// RequestTimeout bounds one request's handling; past it the client gets a
	// JSON 503 and the connection is free again. 0 = 10s.
	RequestTimeout time.Duration

	// Certificate, when set, makes the server HTTPS only. SetCertificate
	// replaces it while serving; nil = plain HTTP until a restart.
	Certificate *tls.Certificate
}

// Defaults of Options and of the HTTP server.
const (
	defaultSampleEvery    = 5 * time.Second
	defaultRequestTimeout = 10 * time.Second
	readHeaderTimeout     = 5 * time.Second
	idleTimeout           = 2 * time.Minute
	maxHeaderBytes        = 64 << 10
)

// Server is the admin HTTP server. Handler serves without listening (tests);
// Start listens and serves in the background until Shutdown.
type Server struct {
	log     zerolog.Logger
	ctrl    Controller
	fleet   FleetController // ctrl when it can be part of a fleet, else nil
	now     func() time.Time
	every   time.Duration
	auth    tokenAuth
	history *history
	pages   *template.Template
	assets  *assets
	metrics *prometheus.Registry
	handler http.Handler
	http    *http.Server
	listen  func(network, addr string) (net.Listener, error)
	info    Info
	tls     bool                            // HTTPS only; fixed at New (http.Server.Serve sets its own TLSConfig)
	cert    atomic.Pointer[tls.Certificate] // served over TLS; nil for plain HTTP

	mu      sync.Mutex
	ln      net.Listener
	started bool
	stop    chan struct{} // closed by Shutdown to stop the sampler
	done    sync.WaitGroup
}

// New checks o and builds the server; it does not listen yet.
func New(o Options) (*Server, error) {
	if o.Controller == nil {
		return nil, errors.New("admin: creating server: no Controller")
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return nil, fmt.Errorf("admin: creating server: listen address %q: %w", o.Listen, err)
	}
	if o.SampleEvery < 0 || o.RequestTimeout < 0 {
		return nil, errors.New("admin: creating server: SampleEvery and RequestTimeout must not be negative")
	}
	if o.ReadToken != "" && (o.Token == "" || sameSecret(o.ReadToken, o.Token)) {
		return nil, errors.New("admin: creating server: a ReadToken needs a Token, and must differ from it")
	}
	s := &Server{
		log:    o.Log.With().Str("component", "admin").Logger(),
		ctrl:   o.Controller,
		now:    o.Now,
		every:  o.SampleEvery,
		auth:   newTokenAuth(o.Token, o.ReadToken),
		stop:   make(chan struct{}),
		listen: o.ListenFunc,
	}
	if s.listen == nil {
		s.listen = net.Listen
	}
	s.fleet, _ = o.Controller.(FleetController)
	if s.now == nil {
		s.now = time.Now
	}
	if s.every == 0 {
		s.every = defaultSampleEvery
	}
	s.info = Info{Version: o.Version, PID: os.Getpid(), Started: s.now().UTC().Truncate(time.Second)}
	timeout := o.RequestTimeout
	if timeout == 0 {
		timeout = defaultRequestTimeout
	}
	s.history = newHistory(s.every)
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, fmt.Errorf("admin: creating server: %w", err)
	}
	if s.assets, err = loadAssets(); err != nil {
		return nil, fmt.Errorf("admin: creating server: %w", err)
	}
	s.metrics = newRegistry(s.ctrl, s.fleet)

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	s.routes(e)
	s.handler = withTimeout(e, timeout)
	s.http = &http.Server{
		Addr:              o.Listen,
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       timeout + readHeaderTimeout,
		WriteTimeout:      timeout + 5*time.Second,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          serverLog(s.log),
	}
	if o.Certificate != nil {
		s.tls = true
		s.http.TLSConfig = s.tlsConfig()
		if _, err := s.SetCertificate(o.Certificate); err != nil {
			return nil, fmt.Errorf("admin: creating server: %w", err)
		}
	}
	return s, nil
}

// Handler returns the server's whole HTTP handler (routes, auth, timeouts), for
// httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Options.Listen and serves in the background; it also starts
// the sparkline sampler. The error names the address and the OS error.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("admin: server already started")
	}
	select {
	case <-s.stop:
		return errors.New("admin: server already shut down")
	default:
	}
	ln, err := s.listen("tcp", s.listenAddr())
	if err != nil {
		return fmt.Errorf("admin: listening on %s: %w", s.listenAddr(), err)
	}
	s.ln = ln
	s.started = true
	s.done.Add(2)
	go func() {
		defer s.done.Done()
		serve := s.http.Serve
		if s.TLS() {
			serve = func(ln net.Listener) error { return s.http.ServeTLS(ln, "", "") } // GetCertificate supplies it
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Str("addr", ln.Addr().String()).Msg("admin server stopped")
		}
	}()
	go func() {
		defer s.done.Done()
		s.history.run(s.stop, s.now, s.ctrl.Services)
	}()
	s.log.Info().Str("addr", ln.Addr().String()).Bool("auth", s.auth.fullSet).Bool("read_only_token", s.auth.readSet).
		Bool("tls", s.TLS()).Msg("admin server listening")
	return nil
}

// Addr is the address the server listens on, nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops the sampler, stops accepting, and waits for in-flight requests
// until ctx ends (then it closes them). It is safe to call more than once and
// without Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	if !started {
		return nil
	}
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("admin: shutting down: %w", err), s.http.Close())
	}
	s.done.Wait()
	return err
}

// listenAddr is kept in the http.Server so tests and logs see one value.
func (s *Server) listenAddr() string { return s.http.Addr }

// sameSecret compares two secrets in constant time.
func sameSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
