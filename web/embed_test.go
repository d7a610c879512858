package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestHandler(t *testing.T) {
	assets := fstest.MapFS{
		"index.html":         {Data: []byte("<!doctype html><div id=root></div>")},
		"assets/app-1a2b.js": {Data: []byte("console.log(1)")},
		"favicon.svg":        {Data: []byte("<svg/>")},
	}
	h := Handler(assets)
	cases := []struct {
		method, path     string
		status           int
		cache, body, csp string
	}{
		{"GET", "/", 200, "no-cache", "<div id=root>", "default-src 'self'"},
		{"GET", "/stores/acme", 200, "no-cache", "<div id=root>", "default-src 'self'"}, // client route
		{"GET", "/assets/app-1a2b.js", 200, "public, max-age=31536000, immutable", "console.log", ""},
		{"GET", "/assets/app-old.js", 404, "no-cache", "not found", ""}, // a stale bundle is not answered with HTML
		{"GET", "/favicon.svg", 200, "no-cache", "<svg/>", ""},
		{"GET", "/../../etc/passwd", 200, "no-cache", "<div id=root>", "default-src 'self'"},
		{"HEAD", "/stores/acme", 200, "no-cache", "", "default-src 'self'"},
		{"POST", "/", 405, "", "method not allowed", ""},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, rec.Code, c.status)
		}
		if got := rec.Header().Get("Cache-Control"); got != c.cache {
			t.Errorf("%s %s: Cache-Control %q, want %q", c.method, c.path, got, c.cache)
		}
		if !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("%s %s: body %q lacks %q", c.method, c.path, rec.Body.String(), c.body)
		}
		if got := rec.Header().Get("Content-Security-Policy"); !strings.HasPrefix(got, c.csp) || (c.csp == "" && got != "") {
			t.Errorf("%s %s: CSP %q, want prefix %q", c.method, c.path, got, c.csp)
		}
	}
}

func TestHandlerWithoutBuild(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "make build") {
		t.Fatalf("got %d %q, want 404 saying how to build the dashboard", rec.Code, rec.Body.String())
	}
}
