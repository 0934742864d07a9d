// Package web holds the admin dashboard's assets: the html/template files and the
// static files (vendored htmx, the stylesheet, the dashboard script). They are
// embedded in the binary so the dashboard works offline and a deployment is one
// file. It is its own package because //go:embed cannot reach outside the
// directory of the Go file that embeds, and the admin package lives beside it.
//
// Typical use:
//
//	tmpl, err := template.ParseFS(web.Templates(), "*.html")
//	static := web.Static() // served under /static/
package web

import (
	"embed"
	"io/fs"
)

//go:embed static templates
var assets embed.FS

// Static returns the files served under /static/ (htmx.min.js, dashboard.css,
// dashboard.js, favicon.svg), rooted at the static directory.
func Static() fs.FS { return sub("static") }

// Templates returns the html/template files of the dashboard, rooted at the
// templates directory.
func Templates() fs.FS { return sub("templates") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(assets, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, and dir is a constant.
		panic("web: " + err.Error())
	}
	return f
}
