package openapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Identity is who a request comes from.
type Identity struct {
	// User owns the stores it creates (spec.owner).
	User string
	// Admin may read every user's stores.
	Admin bool
	// Groups the user is in (X-User-Groups, or the token's groups claim):
	// they decide the plans the user may pick.
	Groups []string
}

// Authenticator establishes the identity of a request, or refuses it with a
// KindUnauthenticated error saying why.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Identity, error)
	// Scheme names the authentication in the OpenAPI document.
	Scheme() string
}

// UserIDPattern is what a user id may look like: the Store CRD's owner rule.
const UserIDPattern = `^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$`

var validUserID = regexp.MustCompile(UserIDPattern)

// TrustedProxies is the set of addresses allowed to speak for a client
// (identity headers, X-Forwarded-For).
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads a comma-separated list of CIDRs or addresses.
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is neither a CIDR nor an address", f)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not a CIDR: %v", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Contains reports whether addr is a trusted proxy.
func (t TrustedProxies) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	return slices.ContainsFunc(t, func(p netip.Prefix) bool { return p.Contains(addr) })
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// ClientIP is the address a request comes from: the peer, or — when the peer
// is a trusted proxy — the right-most untrusted address in X-Forwarded-For
// (entries left of it could be forged by the client).
func (t TrustedProxies) ClientIP(r *http.Request) netip.Addr {
	peer := remoteAddr(r)
	if !t.Contains(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer
		}
		if !t.Contains(a) {
			return a.Unmap()
		}
		peer = a.Unmap()
	}
	return peer
}

// Identity headers a trusted proxy sets.
const (
	UserHeader   = "X-User-Id"
	GroupsHeader = "X-User-Groups"
)

// HeaderAuth trusts the user id a proxy in front of the API has established.
type HeaderAuth struct {
	Trusted    TrustedProxies
	AdminGroup string
}

func (HeaderAuth) Scheme() string { return "header" }

func (h HeaderAuth) Authenticate(_ context.Context, r *http.Request) (Identity, error) {
	user := r.Header.Get(UserHeader)
	if user == "" {
		return Identity{}, errorf(KindUnauthenticated, "the %s header is missing", UserHeader)
	}
	if !h.Trusted.Contains(remoteAddr(r)) {
		return Identity{}, errorf(KindUnauthenticated, "%s is accepted only from a trusted proxy", UserHeader)
	}
	if !validUserID.MatchString(user) {
		return Identity{}, errorf(KindUnauthenticated, "%s must match %s", UserHeader, UserIDPattern)
	}
	id := Identity{User: user}
	for _, g := range strings.Split(r.Header.Get(GroupsHeader), ",") {
		if g = strings.TrimSpace(g); g != "" {
			id.Groups = append(id.Groups, g)
		}
	}
	id.Admin = h.AdminGroup != "" && slices.Contains(id.Groups, h.AdminGroup)
	return id, nil
}

// JWTConfig configures bearer-token authentication against an OIDC issuer.
type JWTConfig struct {
	Issuer   string
	Audience string
	// JWKSURL is the issuer's key set; empty means discover it from
	// <issuer>/.well-known/openid-configuration.
	JWKSURL string
	// Algorithms the tokens may be signed with; never "none".
	Algorithms []string
	// UserClaim names the claim holding the user id (e.g. sub, email).
	UserClaim string
	// GroupsClaim names the claim listing the user's groups.
	GroupsClaim string
	AdminGroup  string
	// FetchTimeout bounds every fetch of the issuer's discovery document and
	// key set, and so how long a request may wait for one; default 5 s.
	FetchTimeout time.Duration
	// KeyRefetchInterval is the least time between two fetches of the key
	// set for tokens that no key fetched before verifies (a rotated key, or
	// a made-up token); default 10 s.
	KeyRefetchInterval time.Duration
}

// JWTAuth validates bearer tokens: signature against the issuer's JWKS
// (cached, refetched when no cached key verifies a token, at most once per
// KeyRefetchInterval), issuer, audience and expiry. When the key set cannot be fetched every token is refused.
type JWTAuth struct {
	cfg      JWTConfig
	verifier *oidc.IDTokenVerifier
}

// NewJWTAuth prepares the verifier; with no JWKSURL it reads the issuer's
// discovery document, so the issuer must answer at start.
func NewJWTAuth(ctx context.Context, cfg JWTConfig) (*JWTAuth, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, fmt.Errorf("jwt authentication needs an issuer and an audience")
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{oidc.RS256, oidc.ES256}
	}
	for _, a := range cfg.Algorithms {
		if strings.EqualFold(a, "none") || strings.HasPrefix(a, "HS") {
			return nil, fmt.Errorf("algorithm %q is not allowed: tokens must be signed with an asymmetric key of the issuer", a)
		}
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = "sub"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	// Every fetch of the issuer's documents goes through a client with a
	// timeout: a key set that accepts connections and never answers would
	// otherwise hold every request whose token names a key not cached yet.
	ctx = oidc.ClientContext(ctx, &http.Client{Timeout: cfg.FetchTimeout})
	jwks := cfg.JWKSURL
	if jwks == "" {
		dctx, cancel := context.WithTimeout(ctx, 2*cfg.FetchTimeout)
		defer cancel()
		p, err := oidc.NewProvider(dctx, cfg.Issuer)
		if err != nil {
			return nil, fmt.Errorf("discovering the key set of issuer %s: %w", cfg.Issuer, err)
		}
		var meta struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := p.Claims(&meta); err != nil || meta.JWKSURI == "" {
			return nil, fmt.Errorf("issuer %s publishes no jwks_uri", cfg.Issuer)
		}
		jwks = meta.JWKSURI
	}
	if cfg.KeyRefetchInterval <= 0 {
		cfg.KeyRefetchInterval = 10 * time.Second
	}
	keys := newIssuerKeys(jwks, &http.Client{Timeout: cfg.FetchTimeout}, cfg.Algorithms, cfg.KeyRefetchInterval)
	v := oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{ClientID: cfg.Audience, SupportedSigningAlgs: cfg.Algorithms})
	return &JWTAuth{cfg: cfg, verifier: v}, nil
}

func (*JWTAuth) Scheme() string { return "jwt" }

func (j *JWTAuth) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		return Identity{}, errorf(KindUnauthenticated, "a bearer token is required")
	}
	// A request joining a key fetch already under way waits no longer than
	// the fetch itself may take.
	vctx, cancel := context.WithTimeout(ctx, j.cfg.FetchTimeout)
	defer cancel()
	tok, err := j.verifier.Verify(vctx, strings.TrimSpace(raw))
	if err != nil && errors.Is(vctx.Err(), context.DeadlineExceeded) {
		return Identity{}, errorf(KindUnauthenticated, "token not checked: the issuer's key set did not answer within %s", j.cfg.FetchTimeout)
	}
	if err != nil {
		// go-oidc's messages name the failed check (expiry, audience,
		// signature) without echoing the token; they help the caller.
		return Identity{}, errorf(KindUnauthenticated, "token rejected: %v", err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, errorf(KindUnauthenticated, "token claims unreadable")
	}
	user, _ := claims[j.cfg.UserClaim].(string)
	if !validUserID.MatchString(user) {
		return Identity{}, errorf(KindUnauthenticated, "claim %q must be a user id matching %s", j.cfg.UserClaim, UserIDPattern)
	}
	id := Identity{User: user}
	if groups, ok := claims[j.cfg.GroupsClaim].([]any); ok {
		for _, g := range groups {
			if g, ok := g.(string); ok && g != "" {
				id.Groups = append(id.Groups, g)
			}
		}
	}
	id.Admin = j.cfg.AdminGroup != "" && slices.Contains(id.Groups, j.cfg.AdminGroup)
	return id, nil
}

func identityFrom(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey).(Identity)
	return id
}
