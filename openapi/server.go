// Package openapi is the Intent API: the REST operations through which people
// and the dashboard ask for stores, with identity, per-user quotas, rate
// limits and metrics, on Huma v2. Its OpenAPI document is generated from this
// code (Spec) and committed as openapi.yaml.
package openapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Config is the API's behaviour.
type Config struct {
	// Auth establishes who a request comes from.
	Auth Authenticator
	// Trusted proxies may set X-Forwarded-For (and, with HeaderAuth, the user).
	Trusted TrustedProxies
	// MaxStoresPerUser is the per-user store quota.
	MaxStoresPerUser int
	// AllowedDomains are the domains a create may name (the platform's store
	// domains, as the operator's --allowed-domains); empty allows only the
	// default domain (no domain in the request).
	AllowedDomains []string
	// Plans are the plans each group may pick; nil allows every plan to
	// everyone.
	Plans PlanPolicy
	// MutationsPerMinute limits mutating requests per user (per client
	// address, IPv6 by /64, for requests that do not authenticate); 0
	// disables.
	MutationsPerMinute int
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// MaxStreamsPerUser and MaxStreams bound open event streams.
	MaxStreamsPerUser, MaxStreams int
	// UserSwitcher lets clients set the user id themselves (storefleet dev,
	// where the caller is on loopback): GET /api/v1/auth tells dashboards.
	UserSwitcher bool
	Log          *slog.Logger
}

// Deps are the API's ways to the cluster.
type Deps struct {
	// Stores answers every read.
	Stores StoreReader
	// Intents delivers creates and deletes.
	Intents Intents
	// Lock serializes one user's creates across replicas.
	Lock UserLock
	// Client reads live (inside the quota lock) and patches retries.
	Client client.Client
	// Ready reports whether the API can serve: cache synced, API server reachable.
	Ready func(ctx context.Context) error
	// Live is the Redis event feed (nil without Redis); Watch is the
	// cluster-watch feed used when Live is absent or unhealthy.
	Live, Watch Feed
	// GitSync reads the Git reader's status for GET /api/v1/gitsync; nil
	// answers 404 as when no reader has synced.
	GitSync GitSyncReader
	// Admin asks a store's backend for its owner's one-time admin link; nil
	// answers 503.
	Admin AdminInviter
}

// Server is the Intent API.
type Server struct {
	cfg     Config
	deps    Deps
	api     huma.API
	mux     *http.ServeMux
	metrics *apiMetrics
	limiter *rateLimiter
	streams streamLimits
	log     *slog.Logger
}

// APIPrefix is where the store operations live.
const APIPrefix = "/api/v1"

// New builds the API and registers its operations. The dependencies are used
// only when requests arrive, so Spec can build one without a cluster.
func New(cfg Config, deps Deps) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 10
	}
	if cfg.MaxStreamsPerUser <= 0 {
		cfg.MaxStreamsPerUser = 10
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 1000
	}
	installHumaErrors(cfg.Log)
	s := &Server{cfg: cfg, deps: deps, mux: http.NewServeMux(), metrics: newAPIMetrics(),
		limiter: newRateLimiter(cfg.MutationsPerMinute), log: cfg.Log}

	hc := huma.DefaultConfig("storefleet Intent API", "v1")
	hc.Info.Description = "Ask for e-commerce stores and watch them come up. Every error is an RFC 9457 problem document."
	// No $schema links in bodies: clients get exactly the documented fields.
	hc.CreateHooks = nil
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"userHeader": {Type: "apiKey", In: "header", Name: UserHeader, Description: "The user id, set by a trusted proxy (auth mode header)."},
		"bearer":     {Type: "http", Scheme: "bearer", BearerFormat: "JWT", Description: "A token of the configured OIDC issuer (auth mode jwt)."},
	}
	hc.Servers = []*huma.Server{{URL: "/", Description: "The host serving this document"}}
	describeVocabularyTypes(hc.Components.Schemas)
	s.api = humago.New(s.mux, hc)
	s.api.UseMiddleware(requestContext, s.metrics.observe)
	s.register()
	s.registerEvents()
	s.registerSession()
	standardPatternDescriptions(s.api.OpenAPI())
	publishVocabulary(s.api.OpenAPI())
	s.mux.HandleFunc("/api/", s.notFoundUnderAPI)
	return s
}

// Handler is the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.mux }

// MetricsHandler serves the API's Prometheus metrics. It is not part of
// Handler: metrics are served on their own listener (Serve's metricsAddr),
// which the public Ingress never routes to.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler() }

// Mux lets the binary add routes (the dashboard) beside the API.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// API is the Huma API, e.g. for humatest.
func (s *Server) API() huma.API { return s.api }

// OpenAPI is the API's description.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

// Spec renders the OpenAPI document committed as openapi/openapi.yaml.
func Spec() ([]byte, error) {
	return New(Config{}, Deps{}).OpenAPI().YAML()
}

// Serve answers on addr, and with the metrics on metricsAddr when it is set,
// until ctx ends, then drains for up to 10 s.
func (s *Server) Serve(ctx context.Context, addr, metricsAddr string) error {
	servers := []*http.Server{{
		Addr:              addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}}
	if metricsAddr != "" {
		metrics := http.NewServeMux()
		metrics.Handle("GET /metrics", s.MetricsHandler())
		servers = append(servers, &http.Server{Addr: metricsAddr, Handler: metrics, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second})
	}
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { errc <- srv.ListenAndServe() }()
	}
	select {
	case err := <-errc:
		for _, srv := range servers {
			_ = srv.Close()
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.Shutdown(sctx))
	}
	return errors.Join(errs...)
}

// standardPatternDescriptions moves Huma's patternDescription keyword (not
// JSON Schema, so OpenAPI linters reject it) to the extension
// x-pattern-description. Huma has already turned it into its validation
// messages, which keep using it.
func standardPatternDescriptions(doc *huma.OpenAPI) {
	var walk func(s *huma.Schema)
	walk = func(s *huma.Schema) {
		if s == nil {
			return
		}
		if s.PatternDescription != "" {
			if s.Extensions == nil {
				s.Extensions = map[string]any{}
			}
			s.Extensions["x-pattern-description"] = s.PatternDescription
			s.PatternDescription = ""
		}
		walk(s.Items)
		for _, p := range s.Properties {
			walk(p)
		}
	}
	for _, s := range doc.Components.Schemas.Map() {
		walk(s)
	}
	for _, item := range doc.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op == nil {
				continue
			}
			for _, p := range op.Parameters {
				walk(p.Schema)
			}
		}
	}
}

// writeProblem answers from a middleware, before any handler ran.
func writeProblem(ctx huma.Context, p *Problem) {
	for k, vs := range p.GetHeaders() {
		for _, v := range vs {
			ctx.AppendHeader(k, v)
		}
	}
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(p.Status)
	_ = json.NewEncoder(ctx.BodyWriter()).Encode(p)
}

// authenticate is the middleware of every store read.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	id, err := s.identify(ctx)
	if err != nil {
		writeProblem(ctx, problemFor(ctx.Context(), s.log, err))
		return
	}
	next(huma.WithValue(ctx, identityKey, id))
}

// authenticateAndLimit is the middleware of every mutating operation. The
// caller is identified before the rate limit, so an authenticated user spends
// their own tokens, however many users share one address or proxy; a request
// that does not authenticate spends its client address's tokens (and a
// forged identity header never spends the named user's).
func (s *Server) authenticateAndLimit(ctx huma.Context, next func(huma.Context)) {
	id, authErr := s.identify(ctx)
	key := userRateKey(id.User)
	if authErr != nil {
		key = addressRateKey(s.cfg.Trusted.ClientIP(requestFrom(ctx.Context())))
	}
	if ok, wait := s.limiter.allow(key, time.Now()); !ok {
		s.metrics.rateLimited.Inc()
		msg := "too many changes from this address; wait for Retry-After seconds"
		if authErr == nil {
			msg = fmt.Sprintf("too many changes by user %s; wait for Retry-After seconds", id.User)
		}
		writeProblem(ctx, problemFor(ctx.Context(), s.log, &Error{Kind: KindRateLimited,
			Message: msg, Limit: s.cfg.MutationsPerMinute, RetryAfter: wait}))
		return
	}
	if authErr != nil {
		writeProblem(ctx, problemFor(ctx.Context(), s.log, authErr))
		return
	}
	next(huma.WithValue(ctx, identityKey, id))
}

// identify establishes who the request comes from and names them on its
// audit line.
func (s *Server) identify(ctx huma.Context) (Identity, error) {
	id, err := s.cfg.Auth.Authenticate(ctx.Context(), requestFrom(ctx.Context()))
	if err != nil {
		return Identity{}, err
	}
	if rec, ok := ctx.Context().Value(auditKey).(*auditRecord); ok {
		rec.user = id.User
	}
	return id, nil
}

// requireJSON refuses a mutation whose body is not declared JSON: a browser
// can send text/plain or a form from any site without a CORS preflight, and
// Huma would read such a body as JSON anyway.
func (s *Server) requireJSON(ctx huma.Context, next func(huma.Context)) {
	r := requestFrom(ctx.Context())
	if r != nil && (r.ContentLength > 0 || len(r.TransferEncoding) > 0) {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			writeProblem(ctx, problemFor(ctx.Context(), s.log, errorf(KindUnsupportedMedia,
				"the request body must be JSON (Content-Type: application/json), not %q", r.Header.Get("Content-Type"))))
			return
		}
	}
	next(ctx)
}

type auditRecord struct {
	user, store string
	// detail is what an operation adds to its audit line (key, value pairs).
	detail []any
}

// audit writes one log line per mutating request, whatever its outcome.
func (s *Server) audit(ctx huma.Context, next func(huma.Context)) {
	rec := &auditRecord{}
	ctx = huma.WithValue(ctx, auditKey, rec)
	next(ctx)
	r := requestFrom(ctx.Context())
	attrs := []any{"user", rec.user, "clientIP", s.cfg.Trusted.ClientIP(r).String(),
		"requestId", requestIDFrom(ctx.Context()), "operation", ctx.Operation().OperationID,
		"store", rec.store, "status", ctx.Status()}
	s.log.Info("Audit", append(attrs, rec.detail...)...)
}

// auditDetail adds key, value pairs to the request's audit line.
func auditDetail(ctx context.Context, kv ...any) {
	if rec, ok := ctx.Value(auditKey).(*auditRecord); ok {
		rec.detail = append(rec.detail, kv...)
	}
}

func auditStore(ctx context.Context, name string) {
	if rec, ok := ctx.Value(auditKey).(*auditRecord); ok {
		rec.store = name
	}
}
