package soak

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// adminTimeout is the client timeout of every admin request: an answer later
// than this counts as a hang.
const adminTimeout = 5 * time.Second

// AdminStats counts the admin server's answers.
type AdminStats struct {
	Requests   int64
	Status5xx  int64
	Hangs      int64 // no answer within adminTimeout
	NoResponse int64 // connection closed or reset before an answer (e.g. a 10 MiB body cut short after the 413)
	Unexpected int64 // answered, but not with a status SPEC allows for that request
	// FleetRefused counts fleet-wide changes (drain, undrain, weight)
	// answered 503 "fleet store unreachable" while an etcd fault was under
	// way or being recovered from: SPEC §6 asks for exactly that, so they are
	// not in Status5xx. Outside a fault such a 503 is a 5xx like any other.
	FleetRefused int64
	ByStatus     map[int]int64
}

// add sums o into s.
func (s *AdminStats) add(o AdminStats) {
	s.Requests += o.Requests
	s.Status5xx += o.Status5xx
	s.Hangs += o.Hangs
	s.NoResponse += o.NoResponse
	s.Unexpected += o.Unexpected
	s.FleetRefused += o.FleetRefused
	if s.ByStatus == nil {
		s.ByStatus = make(map[int]int64)
	}
	for k, v := range o.ByStatus {
		s.ByStatus[k] += v
	}
}

// AdminClient talks to balance-l4's admin API with the token and counts
// every answer. It opens a new connection per request, so no idle connection
// outlives it (the fd count after settling stays honest).
type AdminClient struct {
	Base  string // http://host:port
	Token string

	http *http.Client
	// duringEtcdFault, in a fleet soak, says whether an etcd fault was under
	// way (or being recovered from) at some time in [from, to].
	duringEtcdFault func(from, to time.Time) bool

	mu       sync.Mutex
	stats    AdminStats
	problems []string
}

// NewAdminClient returns a client for the admin server at addr.
func NewAdminClient(addr, token string) *AdminClient {
	return &AdminClient{
		Base:  "http://" + addr,
		Token: token,
		http: &http.Client{
			Timeout:   adminTimeout,
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		},
		stats: AdminStats{ByStatus: make(map[int]int64)},
	}
}

// Request is one admin request and the statuses SPEC allows for it.
type Request struct {
	Method string
	Path   string // raw, already escaped as it should go on the wire
	Body   []byte
	Header map[string]string // extra headers; "Authorization": "" removes the token
	Want   []int             // allowed statuses; empty = any below 500
	// FleetWrite marks a fleet-wide change (drain, undrain, weight): a 503
	// "fleet store unreachable" during an etcd fault is its expected answer.
	FleetWrite bool
}

// fleetUnreachable is how SPEC §6's 503 error begins.
const fleetUnreachable = "fleet store unreachable"

// IsFleetRefusal reports whether an answer is SPEC §6's refusal of a
// fleet-wide change while etcd cannot be reached.
func IsFleetRefusal(code int, body []byte) bool {
	return code == http.StatusServiceUnavailable && bytes.Contains(body, []byte(fleetUnreachable))
}

// Do sends r and returns the status and body; status 0 means no answer.
func (c *AdminClient) Do(r Request) (int, []byte, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequest(r.Method, c.Base+"/", body)
	if err != nil {
		return 0, nil, fmt.Errorf("building admin request: %w", err)
	}
	// Set the path raw, so %2F, %00 and friends reach the server as written.
	req.URL.Opaque = r.Path
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.Header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	sent := time.Now()
	resp, err := c.http.Do(req)
	var data []byte
	if err == nil {
		data, err = io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Requests++
	what := fmt.Sprintf("%s %s", r.Method, shorten(r.Path, 80))
	switch {
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		c.stats.Hangs++
		c.problem("admin %s hung: %v", what, err)
		return 0, nil, fmt.Errorf("admin %s: %w", what, err)
	case err != nil:
		c.stats.NoResponse++
		return 0, nil, fmt.Errorf("admin %s: %w", what, err)
	}
	c.stats.ByStatus[resp.StatusCode]++
	if r.FleetWrite && IsFleetRefusal(resp.StatusCode, data) && c.duringEtcdFault != nil && c.duringEtcdFault(sent, time.Now()) {
		c.stats.FleetRefused++
	} else if resp.StatusCode >= 500 {
		c.stats.Status5xx++
		c.problem("admin %s answered %d: %s", what, resp.StatusCode, shorten(string(data), 200))
	} else if len(r.Want) > 0 && !slices.Contains(r.Want, resp.StatusCode) {
		c.stats.Unexpected++
		c.problem("admin %s answered %d, want one of %v: %s", what, resp.StatusCode, r.Want, shorten(string(data), 200))
	}
	return resp.StatusCode, data, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func (c *AdminClient) problem(format string, args ...any) {
	if len(c.problems) < maxProblems {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

// Stats returns the counts so far and the first problems.
func (c *AdminClient) Stats() (AdminStats, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.ByStatus = make(map[int]int64, len(c.stats.ByStatus))
	for k, v := range c.stats.ByStatus {
		s.ByStatus[k] = v
	}
	return s, slices.Clone(c.problems)
}

// GetJSON fetches path (expecting 200) into v.
func (c *AdminClient) GetJSON(path string, v any) error {
	code, body, err := c.Do(Request{Method: http.MethodGet, Path: path, Want: []int{http.StatusOK}})
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", path, code, shorten(string(body), 200))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decoding GET %s: %w", path, err)
	}
	return nil
}

// Goroutines reads go_goroutines from /metrics (the Go collector).
func (c *AdminClient) Goroutines() (int, error) {
	code, body, err := c.Do(Request{Method: http.MethodGet, Path: "/metrics", Want: []int{http.StatusOK}})
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: status %d", code)
	}
	return metricValue(body, "go_goroutines")
}

// metricValue finds an unlabelled sample in Prometheus text format.
func metricValue(text []byte, name string) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, fmt.Errorf("parsing %s: %w", name, err)
			}
			return int(v), nil
		}
	}
	return 0, fmt.Errorf("metrics have no %s sample", name)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
}
