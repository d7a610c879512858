package openapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/storefleet/storefleet/openapi"
)

// The dashboard starts from GET /auth (what to send) and GET /me (who it is).
func TestSessionOperations(t *testing.T) {
	alice := user(t, "alice")
	_, api := newUnitTestAPI(t, options{})
	if got := decode[openapi.AuthInfo](t, api.Get("/api/v1/auth")); got != (openapi.AuthInfo{Mode: "header", UserHeader: "X-User-Id"}) {
		t.Errorf("auth behind a proxy: %+v (no user switcher outside dev)", got)
	}
	if got := decode[openapi.Me](t, api.Get("/api/v1/me", as(alice))); got.User != alice || got.Admin {
		t.Errorf("me: %+v", got)
	}
	if got := decode[openapi.Me](t, api.Get("/api/v1/me", as(alice), openapi.GroupsHeader+": admins")); !got.Admin {
		t.Errorf("me as admin: %+v", got)
	}
	problem(t, api.Get("/api/v1/me"), http.StatusUnauthorized, "unauthenticated")

	_, dev := newUnitTestAPI(t, options{cfg: openapi.Config{UserSwitcher: true}})
	if got := decode[openapi.AuthInfo](t, dev.Get("/api/v1/auth")); !got.UserSwitcher {
		t.Errorf("auth in dev: %+v, want the user switcher", got)
	}

	iss := newIssuer(t)
	auth, err := openapi.NewJWTAuth(context.Background(), openapi.JWTConfig{Issuer: iss.srv.URL, Audience: "storefleet", Algorithms: []string{"RS256"}})
	if err != nil {
		t.Fatal(err)
	}
	_, jwtAPI := newUnitTestAPI(t, options{cfg: openapi.Config{Auth: auth}})
	if got := decode[openapi.AuthInfo](t, jwtAPI.Get("/api/v1/auth")); got != (openapi.AuthInfo{Mode: "jwt", Issuer: iss.srv.URL}) {
		t.Errorf("auth with OIDC: %+v", got)
	}
	tok := iss.token(t, iss.key, iss.kid, jwt.Claims{Issuer: iss.srv.URL, Subject: alice, Audience: jwt.Audience{"storefleet"}, Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}, nil)
	if got := decode[openapi.Me](t, jwtAPI.Get("/api/v1/me", "Authorization: Bearer "+tok)); got.User != alice {
		t.Errorf("me with a token: %+v", got)
	}
}

// A path under /api/ that no operation serves is a problem document, never
// the dashboard's index.html.
func TestUnknownAPIPathIsAProblem(t *testing.T) {
	s := newUnitServer(t, options{})
	for _, path := range []string{"/api/v1/nope", "/api/v2/stores", "/api/"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		p := problem(t, rec, http.StatusNotFound, "not-found")
		if p.Instance != path {
			t.Errorf("%s: instance %q", path, p.Instance)
		}
	}
}
