package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/balancel4/balance-l4/web"
)

// assets serves the embedded static files with a strong ETag (the content's
// hash), so browsers revalidate cheaply; pages link them with ?v=ETAG so a new
// binary's files are fetched at once.
type assets struct {
	files map[string]asset
}

type asset struct {
	body        []byte
	etag        string // quoted, as the header wants it
	version     string // short hash for URLs
	contentType string
}

func loadAssets() (*assets, error) {
	a := &assets{files: make(map[string]asset)}
	err := fs.WalkDir(web.Static(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(web.Static(), name)
		if err != nil {
			return fmt.Errorf("reading static file %s: %w", name, err)
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		a.files[name] = asset{
			body:        body,
			etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
			version:     hex.EncodeToString(sum[:6]),
			contentType: ct,
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading dashboard assets: %w", err)
	}
	return a, nil
}

// url is the versioned link to a static file.
func (a *assets) url(name string) string {
	return "/static/" + name + "?v=" + a.files[name].version
}

func (a *assets) serve(c echo.Context) error {
	f, ok := a.files[c.Param("name")]
	if !ok {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", f.etag)
	if c.QueryParam("v") == f.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, bytes.NewReader(f.body))
	return nil
}
