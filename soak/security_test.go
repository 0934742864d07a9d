package soak

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAdminSecurity drives the admin server as an attacker would: wrong and
// missing tokens get 401, a cross-site POST with the right token gets 403 and
// changes nothing, a 10 MiB body gets 413 and the server goes on serving. The
// token never appears in the process's output (at debug level) nor in any
// response, the reload error included.
func TestAdminSecurity(t *testing.T) {
	t.Parallel()
	secret := fmt.Sprintf("s3cret-%d-never-shown", time.Now().UnixNano())
	backend := startServer(t, echo)
	svc, admin := freePort(t), freePort(t)
	config := fmt.Sprintf(`
[admin]
listen = %q
token = %q
[log]
level = "debug"
format = "json"
[[services]]
name = "sec"
listen = %q
[[services.backends]]
name = "b"
address = %q
`, admin, secret, svc, backend.Addr())
	p := startBalance(t, config, admin)
	a := NewAdminClient(admin, secret)
	anon := NewAdminClient(admin, "")
	var seen bytes.Buffer // every response, headers and body
	do := func(c *AdminClient, r Request) int {
		t.Helper()
		code, body, err := c.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", r.Method, r.Path, err)
		}
		fmt.Fprintf(&seen, "%s %s -> %d %s\n", r.Method, r.Path, code, body)
		return code
	}
	expect := func(c *AdminClient, r Request, want int) {
		t.Helper()
		if code := do(c, r); code != want {
			t.Errorf("%s %s (headers %v): %d, want %d", r.Method, r.Path, r.Header, code, want)
		}
	}
	get := func(path string) Request { return Request{Method: http.MethodGet, Path: path} }
	drain := Request{Method: http.MethodPost, Path: "/api/v1/services/sec/backends/b/drain"}
	with := func(r Request, h map[string]string) Request { r.Header = h; return r }
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}

	// Authentication.
	expect(anon, get("/healthz"), http.StatusOK)
	for _, path := range []string{"/api/v1/services", "/metrics", "/", "/api/v1/nope"} {
		expect(anon, get(path), http.StatusUnauthorized)
		expect(a, with(get(path), map[string]string{"Authorization": "Bearer wrong-" + secret}), http.StatusUnauthorized)
	}
	expect(a, with(get("/api/v1/services"), map[string]string{"Authorization": basic("admin", "wrong")}), http.StatusUnauthorized)
	expect(a, with(get("/api/v1/services"), map[string]string{"Authorization": basic("admin", secret)}), http.StatusOK)
	expect(anon, drain, http.StatusUnauthorized)
	for _, path := range []string{"/api/v1/services", "/api/v1/services/sec", "/api/v1/services/sec/backends/b", "/metrics", "/"} {
		expect(a, get(path), http.StatusOK)
	}
	r, err := http.NewRequest(http.MethodGet, "http://"+admin+"/api/v1/services", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || !strings.Contains(string(body), `"error"`) {
		t.Errorf("no token: %d, WWW-Authenticate %q, body %s; want 401, a challenge and a JSON error", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	http.DefaultClient.CloseIdleConnections()

	// Cross-site requests are refused even with the token, and change nothing.
	expect(a, with(drain, map[string]string{"Origin": "http://evil.example"}), http.StatusForbidden)
	expect(a, with(drain, map[string]string{"Sec-Fetch-Site": "cross-site"}), http.StatusForbidden)
	if b := getBackend(t, a, "sec", "b"); b.State != "healthy" {
		t.Fatalf("after refused cross-site drains the backend is %s", b.State)
	}
	expect(a, with(drain, map[string]string{"Origin": "http://" + admin}), http.StatusOK)
	if b := getBackend(t, a, "sec", "b"); b.State != "draining" {
		t.Errorf("after a same-origin drain the backend is %s", b.State)
	}
	expect(a, Request{Method: http.MethodPost, Path: "/api/v1/services/sec/backends/b/undrain"}, http.StatusOK)

	// A 10 MiB body: 413, and the server serves on.
	if code := hugeBody(t, admin, secret); code != http.StatusRequestEntityTooLarge {
		t.Errorf("10 MiB body: status %d, want 413", code)
	}
	expect(anon, get("/healthz"), http.StatusOK)
	expect(a, get("/api/v1/services/sec"), http.StatusOK)
	if err := dialRoundTrip(svc, "still serving"); err != nil {
		t.Errorf("data path after the admin attacks: %v", err)
	}

	// Reloads, good and bad, with the token in the file.
	cfgPath := configPathOf(t, p)
	os.WriteFile(cfgPath, []byte(config+"\n[[services.backends]]\nname = \"b\"\naddress = \"nonsense\"\n"), 0o600)
	expect(a, Request{Method: http.MethodPost, Path: "/api/v1/reload"}, http.StatusBadRequest)
	os.WriteFile(cfgPath, []byte(strings.Replace(config, "[log]", "[log]\naccess_log = false", 1)), 0o600)
	expect(a, Request{Method: http.MethodPost, Path: "/api/v1/reload"}, http.StatusOK)
	p.Signal(syscall.SIGHUP)
	waitFor(t, "the SIGHUP reload in the log", func() bool { return strings.Count(p.Output(), "configuration reloaded") >= 2 })

	// The secret appears nowhere.
	forms := []string{secret, base64.StdEncoding.EncodeToString([]byte("admin:" + secret)), base64.StdEncoding.EncodeToString([]byte(secret))}
	for _, f := range forms {
		if strings.Contains(seen.String(), f) {
			t.Errorf("an API response contains the token (as %q)", f)
		}
		if strings.Contains(p.Output(), f) {
			t.Errorf("balance-l4's output contains the token (as %q)", f)
		}
	}
	if t.Failed() {
		t.Logf("responses:\n%s", tail(seen.String(), 6000))
	}
}

// configPathOf reads the -config argument of a started process.
func configPathOf(t *testing.T, p *Process) string {
	t.Helper()
	for i, arg := range p.cmd.Args {
		if arg == "-config" && i+1 < len(p.cmd.Args) {
			return p.cmd.Args[i+1]
		}
	}
	t.Fatal("process has no -config")
	return ""
}

// hugeBody sends a PUT with a declared 10 MiB body over a raw connection,
// reads the status line the server answers (before or while the body
// arrives), and returns its code.
func hugeBody(t *testing.T, admin, token string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", admin, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "PUT /api/v1/services/sec/backends/b/weight HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", admin, token, len(tenMiB))
	go func() { c.Write(tenMiB) }() // the server may close before reading it: ignore
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to a 10 MiB body: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTokenComparedInConstantTime checks the admin source: it must compare
// with crypto/subtle, and no == or != may involve anything named like a
// token, except a comparison with "" (is a token configured at all).
func TestTokenComparedInConstantTime(t *testing.T) {
	files, err := filepath.Glob("../admin/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no admin sources: %v", err)
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
	}
	usesSubtle, bad := tokenComparisons(fset, parsed)
	if !usesSubtle {
		t.Error("admin does not call subtle.ConstantTimeCompare")
	}
	for _, b := range bad {
		t.Errorf("%s; use crypto/subtle", b)
	}
}

// TestTokenComparisonCheck shows the check above can fail.
func TestTokenComparisonCheck(t *testing.T) {
	const src = `package admin
func ok(token string) bool   { return token == "" }
func bad(given, token string) bool { return given == token }
func badToo(a struct{ Secret string }, s string) bool { return s != a.Secret }`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	usesSubtle, bad := tokenComparisons(fset, []*ast.File{f})
	if usesSubtle || len(bad) != 2 {
		t.Fatalf("usesSubtle %v, bad %q; want false and the two comparisons", usesSubtle, bad)
	}
}

// tokenComparisons reports whether files call subtle.ConstantTimeCompare and
// lists every == or != that involves a token-like name and is not a
// comparison with "".
func tokenComparisons(fset *token.FileSet, files []*ast.File) (usesSubtle bool, bad []string) {
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "subtle" && strings.HasPrefix(n.Sel.Name, "ConstantTimeCompare") {
					usesSubtle = true
				}
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && !isEmptyString(n.X) && !isEmptyString(n.Y) &&
					(mentionsToken(n.X) || mentionsToken(n.Y)) {
					bad = append(bad, fmt.Sprintf("%s: %s %s %s compares a secret", fset.Position(n.Pos()),
						types.ExprString(n.X), n.Op, types.ExprString(n.Y)))
				}
			}
			return true
		})
	}
	return usesSubtle, bad
}

func isEmptyString(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.STRING && (lit.Value == `""` || lit.Value == "``")
}

// mentionsToken reports whether an identifier in e is named like a secret.
func mentionsToken(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			name := strings.ToLower(id.Name)
			if strings.Contains(name, "token") || strings.Contains(name, "secret") || strings.Contains(name, "password") {
				found = true
			}
		}
		return !found
	})
	return found
}
