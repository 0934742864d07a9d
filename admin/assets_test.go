package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"

	"github.com/balancel4/balance-l4/web"
)

// The vendored htmx is exactly the file htmx.min.js.VERSION names.
func TestVendoredHtmx(t *testing.T) {
	body, err := fs.ReadFile(web.Static(), "htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	version, err := fs.ReadFile(web.Static(), "htmx.min.js.VERSION")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if !strings.Contains(string(version), "sha256 "+hex.EncodeToString(sum[:])) {
		t.Fatalf("htmx.min.js has SHA-256 %x, not the one in htmx.min.js.VERSION:\n%s", sum, version)
	}
	if !strings.HasPrefix(string(version), "htmx.org 2.") {
		t.Fatalf("VERSION = %q, want htmx 2.x", version)
	}
}

func TestTemplatesParse(t *testing.T) {
	tmpl, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"page", "overview", "service", "backend", "reload", "fleet", "fleet-banner"} {
		if tmpl.Lookup(name) == nil {
			t.Errorf("template %q missing", name)
		}
	}
}
