package openapi_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/storefleet/storefleet/openapi"
)

func TestHeaderAuth(t *testing.T) {
	s := newUnitServer(t, options{})
	cases := []struct {
		name    string
		remote  string
		headers map[string]string
		status  int
	}{
		{"trusted proxy", "127.0.0.1:5000", map[string]string{openapi.UserHeader: "alice"}, http.StatusOK},
		{"forged header from an untrusted address", "192.0.2.7:5000", map[string]string{openapi.UserHeader: "alice"}, http.StatusUnauthorized},
		{"no header", "127.0.0.1:5000", nil, http.StatusUnauthorized},
		{"malformed user id", "127.0.0.1:5000", map[string]string{openapi.UserHeader: "alice smith<script>"}, http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/stores", nil)
			r.RemoteAddr = c.remote
			for k, v := range c.headers {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, r)
			if c.status == http.StatusOK {
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
				}
				return
			}
			problem(t, rec, c.status, "unauthenticated")
		})
	}
}

func TestClientIPFromTrustedProxiesOnly(t *testing.T) {
	trusted, err := openapi.ParseTrustedProxies("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ remote, xff, want string }{
		{"192.0.2.1:1", "203.0.113.9", "192.0.2.1"},                     // untrusted peer: its header is ignored
		{"10.1.1.1:1", "203.0.113.9", "203.0.113.9"},                    // proxy: the client it saw
		{"10.1.1.1:1", "6.6.6.6, 203.0.113.9, 10.2.2.2", "203.0.113.9"}, // right-most untrusted hop wins over a forged left part
		{"127.0.0.1:1", "", "127.0.0.1"},
		{"10.1.1.1:1", "garbage", "10.1.1.1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := trusted.ClientIP(r); got != netip.MustParseAddr(c.want) {
			t.Errorf("remote %s xff %q: client %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
	if _, err := openapi.ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}

// issuer is an OIDC issuer on loopback: a discovery document and a JWKS.
type issuer struct {
	srv  *httptest.Server
	key  *rsa.PrivateKey
	kid  string
	down bool
	// fetches counts the requests for the key set.
	fetches atomic.Int32
}

func newIssuer(t *testing.T) *issuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &issuer{key: key, kid: "key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss.srv.URL, "jwks_uri": iss.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.fetches.Add(1)
		if iss.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &iss.key.PublicKey, KeyID: iss.kid, Algorithm: "RS256", Use: "sig"}}})
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

func (iss *issuer) token(t *testing.T, key *rsa.PrivateKey, kid string, claims jwt.Claims, extra map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Claims(extra).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestJWTAuth(t *testing.T) {
	iss := newIssuer(t)
	auth, err := openapi.NewJWTAuth(context.Background(), openapi.JWTConfig{Issuer: iss.srv.URL, Audience: "storefleet", Algorithms: []string{"RS256"}, AdminGroup: "admins", KeyRefetchInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, api := newUnitTestAPI(t, options{cfg: openapi.Config{Auth: auth}})
	now := time.Now()
	good := jwt.Claims{Issuer: iss.srv.URL, Subject: user(t, "alice"), Audience: jwt.Audience{"storefleet"}, Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)

	with := func(mut func(c *jwt.Claims)) jwt.Claims { c := good; mut(&c); return c }
	b64 := base64.RawURLEncoding.EncodeToString
	unsigned := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"iss":"`+iss.srv.URL+`","sub":"alice","aud":"storefleet","exp":`+jsonNum(now.Add(time.Hour).Unix())+`}`)) + "."

	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"valid", iss.token(t, iss.key, iss.kid, good, nil), true},
		{"bad signature", iss.token(t, other, iss.kid, good, nil), false},
		{"wrong audience", iss.token(t, iss.key, iss.kid, with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"someone-else"} }), nil), false},
		{"wrong issuer", iss.token(t, iss.key, iss.kid, with(func(c *jwt.Claims) { c.Issuer = "https://evil.example" }), nil), false},
		{"expired", iss.token(t, iss.key, iss.kid, with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) }), nil), false},
		{"no expiry", iss.token(t, iss.key, iss.kid, with(func(c *jwt.Claims) { c.Expiry = nil }), nil), false},
		{"alg none", unsigned, false},
		{"unknown kid", iss.token(t, other, "key-2", good, nil), false},
		{"not a token", "abc.def", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := api.Get("/api/v1/stores", "Authorization: Bearer "+c.token)
			if c.ok {
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
				}
				return
			}
			problem(t, rec, http.StatusUnauthorized, "unauthenticated")
		})
	}
	problem(t, api.Get("/api/v1/stores"), http.StatusUnauthorized, "unauthenticated")

	// The admin group comes from the groups claim.
	admin := iss.token(t, iss.key, iss.kid, good, map[string]any{"groups": []string{"admins"}})
	if rec := api.Get("/api/v1/stores?all=true", "Authorization: Bearer "+admin); rec.Code != http.StatusOK {
		t.Errorf("admin list: %d %s", rec.Code, rec.Body.String())
	}

	// Fail closed: a token signed by a key the API has not fetched yet cannot
	// be checked while the JWKS is down.
	iss.down = true
	iss.kid = "key-3"
	problem(t, api.Get("/api/v1/stores", "Authorization: Bearer "+iss.token(t, iss.key, "key-3", good, nil)), http.StatusUnauthorized, "unauthenticated")
	// Keys are refreshed: once the JWKS answers, the rotated key works (from
	// the next fetch the refetch interval allows).
	iss.down = false
	time.Sleep(60 * time.Millisecond)
	if rec := api.Get("/api/v1/stores", "Authorization: Bearer "+iss.token(t, iss.key, "key-3", good, nil)); rec.Code != http.StatusOK {
		t.Errorf("after key rotation: %d %s", rec.Code, rec.Body.String())
	}
}

// TestMadeUpTokensDoNotFetchTheKeySetPerRequest: a token that no cached key
// verifies makes the API fetch the issuer's key set again, but not once per
// request (go-oidc's RemoteKeySet did: 50 made-up tokens were 50 fetches), and
// a key the issuer rotated in works from the next fetch.
func TestMadeUpTokensDoNotFetchTheKeySetPerRequest(t *testing.T) {
	iss := newIssuer(t)
	auth, err := openapi.NewJWTAuth(context.Background(), openapi.JWTConfig{Issuer: iss.srv.URL, Audience: "storefleet", Algorithms: []string{"RS256"}, KeyRefetchInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, api := newUnitTestAPI(t, options{cfg: openapi.Config{Auth: auth}})
	now := time.Now()
	claims := jwt.Claims{Issuer: iss.srv.URL, Subject: user(t, "alice"), Audience: jwt.Audience{"storefleet"}, Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)}
	if rec := api.Get("/api/v1/stores", "Authorization: Bearer "+iss.token(t, iss.key, iss.kid, claims, nil)); rec.Code != http.StatusOK {
		t.Fatalf("a valid token: %d %s", rec.Code, rec.Body.String())
	}
	before := iss.fetches.Load()
	forger, _ := rsa.GenerateKey(rand.Reader, 2048)
	for i := range 50 {
		kid := iss.kid // a known key id with a bad signature
		if i%2 == 1 {
			kid = "made-up-" + strconv.Itoa(i)
		}
		problem(t, api.Get("/api/v1/stores", "Authorization: Bearer "+iss.token(t, forger, kid, claims, nil)), http.StatusUnauthorized, "unauthenticated")
	}
	if n := iss.fetches.Load() - before; n > 1 {
		t.Errorf("50 made-up tokens within the 1 s refetch interval made the API fetch the key set %d times, want at most 1", n)
	}
	rotated, _ := rsa.GenerateKey(rand.Reader, 2048)
	iss.key, iss.kid = rotated, "key-2"
	time.Sleep(1100 * time.Millisecond)
	if rec := api.Get("/api/v1/stores", "Authorization: Bearer "+iss.token(t, rotated, "key-2", claims, nil)); rec.Code != http.StatusOK {
		t.Errorf("a token of the rotated key, after the refetch interval: %d %s", rec.Code, rec.Body.String())
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestJWTConfigRefusesUnsafeAlgorithms(t *testing.T) {
	for _, alg := range []string{"none", "HS256"} {
		if _, err := openapi.NewJWTAuth(context.Background(), openapi.JWTConfig{Issuer: "https://x", Audience: "a", JWKSURL: "https://x/jwks", Algorithms: []string{alg}}); err == nil {
			t.Errorf("algorithm %s accepted", alg)
		}
	}
}

// TestJWTAuthFailsFastWhenTheKeySetHangs: an issuer whose JWKS accepts the
// connection and never answers must not hang the API's requests; a token
// whose key the API has not fetched is refused within the fetch timeout, and
// so is the next one.
func TestJWTAuthFailsFastWhenTheKeySetHangs(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) }) // runs first: lets srv.Close finish
	auth, err := openapi.NewJWTAuth(context.Background(), openapi.JWTConfig{
		Issuer: srv.URL, Audience: "storefleet", JWKSURL: srv.URL + "/jwks", Algorithms: []string{"RS256"},
		FetchTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newUnitServer(t, options{cfg: openapi.Config{Auth: auth}})
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	tok := (&issuer{}).token(t, key, "key-1", jwt.Claims{Issuer: srv.URL, Subject: "alice", Audience: jwt.Audience{"storefleet"},
		Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)}, nil)
	for i := range 2 {
		done := make(chan *httptest.ResponseRecorder, 1)
		start := time.Now()
		go func() {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/stores", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, r)
			done <- w
		}()
		select {
		case w := <-done:
			problem(t, w, http.StatusUnauthorized, "unauthenticated")
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("request %d took %s with a 300 ms fetch timeout", i+1, took)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("request %d still waiting for the hanging key set after 5 s", i+1)
		}
	}
}
