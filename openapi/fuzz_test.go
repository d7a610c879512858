package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/openapi"
)

// FuzzCreateBody: whatever the body, the API answers with a client error or a
// success, never a 5xx or a panic. `make fuzz` runs it beyond its seeds.
func FuzzCreateBody(f *testing.F) {
	for _, seed := range []string{
		`{"name":"fuzz-a","engine":"medusa"}`,
		`{"name":"fuzz-b","engine":"woocommerce","plan":"large","domain":"a.b"}`,
		`{"name":"admin","engine":"medusa"}`,
		`{"name":"","engine":""}`,
		`{"name":1,"engine":null}`,
		`[]`, `null`, `{`, `{"name":"a","name":"b","engine":"medusa"}`,
		`{"name":"fuzz-c","engine":"medusa","plan":"small","x":{"y":[1,2,3]}}`,
		"{\"name\":\"\u00e9t\u00e9\",\"engine\":\"medusa\"}",
	} {
		f.Add(seed)
	}
	s := newServer(f, options{cfg: openapi.Config{MaxStoresPerUser: 1000}})
	f.Cleanup(func() { cleanupOwner(f, "fuzzer") })
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/stores", strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(openapi.UserHeader, "fuzzer")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("body %q: %d %s", body, rec.Code, rec.Body.String())
		}
	})
}

// FuzzStoreNamePath: whatever the name in the path, never a 5xx or a panic.
func FuzzStoreNamePath(f *testing.F) {
	for _, seed := range []string{"acme", "ACME", "a..b", "%2e%2e", "-x", strings.Repeat("a", 41), "admin", "a/b", "\x00"} {
		f.Add(seed)
	}
	s := newServer(f, options{})
	f.Fuzz(func(t *testing.T, name string) {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			r := httptest.NewRequest(method, "/", nil)
			r.URL.Path = "/api/v1/stores/" + name
			r.URL.RawPath = "/api/v1/stores/" + url.PathEscape(name)
			r.RemoteAddr = "127.0.0.1:1"
			r.Header.Set(openapi.UserHeader, "fuzzer")
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, r)
			if rec.Code >= 500 {
				t.Fatalf("%s %q: %d %s", method, name, rec.Code, rec.Body.String())
			}
		}
	})
}
