// Package web serves the dashboard: the React app built by Vite into dist/app
// and embedded into the storefleet binary (make web builds it before Go does).
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// dist holds dist/.keep (committed, so the package compiles before the first
// npm build) and dist/app (the build, not committed).
//
//go:embed all:dist
var dist embed.FS

// Assets is the built dashboard, or nil when this binary was built without it.
func Assets() fs.FS {
	app, err := fs.Sub(dist, "dist/app")
	if err != nil {
		return nil
	}
	if _, err := fs.Stat(app, "index.html"); err != nil {
		return nil
	}
	return app
}

// Cache policy: Vite names every asset under assets/ by a hash of its
// content, so those never change and are cached for a year; index.html (and
// every route falling back to it) is revalidated each time, so a new release
// is picked up at the next navigation.
const (
	immutable  = "public, max-age=31536000, immutable"
	revalidate = "no-cache"
)

// securityPolicy allows only the dashboard's own scripts, styles and API.
const securityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

// Handler serves assets (nil, or without index.html: the dashboard is missing
// and a page says how to build it); index.html is read once. Paths that are no file are client-side routes and get
// index.html, except under assets/, where a missing file is a 404: a stale
// page asking for an old bundle must fail visibly, not receive HTML.
func Handler(assets fs.FS) http.Handler {
	if assets == nil {
		return http.HandlerFunc(notBuilt)
	}
	index, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		return http.HandlerFunc(notBuilt)
	}
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(assets, name); err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					w.Header().Set("Cache-Control", immutable)
				} else {
					w.Header().Set("Cache-Control", revalidate)
				}
				files.ServeHTTP(w, r)
				return
			}
			if strings.HasPrefix(name, "assets/") {
				w.Header().Set("Cache-Control", revalidate)
				http.NotFound(w, r)
				return
			}
		}
		h := w.Header()
		h.Set("Cache-Control", revalidate)
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", securityPolicy)
		h.Set("Referrer-Policy", "same-origin")
		if r.Method == http.MethodGet {
			_, _ = w.Write(index)
		}
	})
}

func notBuilt(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", revalidate)
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("This storefleet binary was built without the dashboard: run `make build` (it builds web/ with npm first).\nThe Intent API is under /api/v1 and documented at /docs.\n"))
}
