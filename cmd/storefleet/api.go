package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/clusters"
	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/internal/eventstream"
	"github.com/storefleet/storefleet/internal/gitintent"
	"github.com/storefleet/storefleet/internal/storeadmin"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/web"
)

// apiFlags are the Intent API's settings, shared by `api` and `dev`.
type apiFlags struct {
	kubeconfig     string
	addr           string
	metricsAddr    string
	namespace      string
	auth           string
	trustedProxies string
	// userSwitcher is set by dev only: the dashboard may set X-User-Id.
	userSwitcher     bool
	adminGroup       string
	intent           string
	maxStoresPerUser int
	rateLimit        int
	plansByGroup     string
	jwt              openapi.JWTConfig
	jwtAlgorithms    string
	redisURL         string
	maxStreams       int
	maxUserStreams   int
	gitMode          string
	git              gitFlags
	// allowedDomains (comma-separated) and environment, whose store domain
	// is the default allow-list; dev sets allowedDomains from the operator's.
	allowedDomains string
	environment    string
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.namespace, "namespace", envOr("POD_NAMESPACE", "storefleet-system"), "platform namespace (holds the per-user quota Leases)")
	fs.StringVar(&f.auth, "auth", "header", "how callers are identified: header (X-User-Id from a trusted proxy) or jwt (OIDC bearer tokens)")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs of proxies allowed to set X-User-Id and X-Forwarded-For")
	fs.StringVar(&f.adminGroup, "admin-group", "storefleet-admins", "group (X-User-Groups, or the JWT groups claim) whose members may read every store")
	fs.StringVar(&f.intent, "intent", "kubernetes", "where created stores go: kubernetes (Store objects) or git (manifests committed to the stores repo, --git-url)")
	fs.StringVar(&f.gitMode, "git-mode", string(gitsync.ModePush), "with --intent=git: push (commit to the branch) or pull-request (a branch and a pull request per store; needs --forge-kind)")
	fs.IntVar(&f.maxStoresPerUser, "max-stores-per-user", 5, "stores one user may have")
	fs.IntVar(&f.rateLimit, "rate-limit", 10, "mutating requests per minute per user (per client address, IPv6 by /64, for requests that do not authenticate; 0 disables)")
	fs.StringVar(&f.plansByGroup, "plans-by-group", "", `the plans each group may pick, "group=plan,plan;group=plan" ("*" is every user, e.g. "*=small;pro=small,medium"); empty: every plan for everyone`)
	fs.StringVar(&f.jwt.Issuer, "oidc-issuer", "", "OIDC issuer URL (auth jwt)")
	fs.StringVar(&f.jwt.Audience, "oidc-audience", "", "required token audience (auth jwt)")
	fs.StringVar(&f.jwt.JWKSURL, "oidc-jwks-url", "", "issuer key set URL (default: discovered from the issuer)")
	fs.StringVar(&f.jwtAlgorithms, "oidc-algorithms", "RS256,ES256", "accepted token signature algorithms")
	fs.StringVar(&f.jwt.UserClaim, "oidc-user-claim", "sub", "claim holding the user id")
	fs.StringVar(&f.jwt.GroupsClaim, "oidc-groups-claim", "groups", "claim holding the user's groups")
	fs.DurationVar(&f.jwt.FetchTimeout, "oidc-fetch-timeout", 5*time.Second, "how long one fetch of the issuer's discovery document or key set may take; a token whose key is not cached fails after it while the issuer does not answer")
	fs.DurationVar(&f.jwt.KeyRefetchInterval, "oidc-key-refetch-interval", 10*time.Second, "least time between two fetches of the issuer's key set for tokens no cached key verifies (a rotated key works from the next fetch; made-up tokens cannot make the API fetch once per request)")
	fs.IntVar(&f.maxUserStreams, "max-streams-per-user", 10, "open event streams per user")
	fs.IntVar(&f.maxStreams, "max-streams", 1000, "open event streams in all")
}

func runAPI(args []string) error {
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	var f apiFlags
	f.register(fs)
	f.git.register(fs)
	fs.StringVar(&f.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default: in-cluster config)")
	fs.StringVar(&f.addr, "addr", ":8080", "address the API listens on")
	fs.StringVar(&f.metricsAddr, "metrics-addr", ":9090", "address of the Prometheus metrics (GET /metrics), apart from the API so the public Ingress never serves them; empty: none")
	fs.StringVar(&f.allowedDomains, "allowed-domains", "", "comma-separated domains a created store may name (default: store.domain of --environment's values; give the operator the same list)")
	fs.StringVar(&f.environment, "environment", "local", fmt.Sprintf("built-in store chart values whose store.domain is the default --allowed-domains: %v", clusters.Environments))
	fs.StringVar(&f.redisURL, "redis-url", os.Getenv("REDIS_URL"), "Redis with the operator's event streams (redis://host:6379/0); without it event streams follow the cluster watch")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if _, err := f.validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	srv, err := newAPIServer(ctx, cfg, f, newLogger())
	if err != nil {
		return err
	}
	return srv.Serve(ctx, f.addr, f.metricsAddr)
}

// validate checks the settings that need no cluster, so mistakes are
// reported before anything connects.
func (f *apiFlags) validate() (openapi.TrustedProxies, error) {
	trusted, err := openapi.ParseTrustedProxies(f.trustedProxies)
	if err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	switch f.auth {
	case "header":
		if len(trusted) == 0 {
			return nil, errors.New("--auth=header needs --trusted-proxies: X-User-Id is accepted only from the proxy that sets it")
		}
	case "jwt":
		if f.jwt.Issuer == "" || f.jwt.Audience == "" {
			return nil, errors.New("--auth=jwt needs --oidc-issuer and --oidc-audience")
		}
	default:
		return nil, fmt.Errorf("--auth must be header or jwt, not %q", f.auth)
	}
	switch f.intent {
	case "kubernetes":
	case "git":
		if f.git.url == "" {
			return nil, errors.New("--intent=git needs --git-url (the stores repo)")
		}
		if f.gitMode != string(gitsync.ModePush) && f.gitMode != string(gitsync.ModePullRequest) {
			return nil, fmt.Errorf("--git-mode must be push or pull-request, not %q", f.gitMode)
		}
		if f.gitMode == string(gitsync.ModePullRequest) && f.git.forge == "" {
			return nil, errors.New("--git-mode=pull-request needs --forge-kind, --forge-url, --forge-repo and --forge-token-file")
		}
	default:
		return nil, fmt.Errorf("--intent must be kubernetes or git, not %q", f.intent)
	}
	if f.maxStoresPerUser < 1 {
		return nil, fmt.Errorf("--max-stores-per-user must be at least 1")
	}
	if f.rateLimit < 0 {
		return nil, fmt.Errorf("--rate-limit must not be negative")
	}
	if _, err := f.domains(); err != nil {
		return nil, err
	}
	if _, err := openapi.ParsePlanPolicy(f.plansByGroup); err != nil {
		return nil, fmt.Errorf("--plans-by-group: %w", err)
	}
	return trusted, nil
}

// domains is the allow-list of store domains: --allowed-domains, or the
// store domain of --environment's built-in values.
func (f *apiFlags) domains() ([]string, error) {
	if list := v1alpha1.ParseDomains(f.allowedDomains); len(list) > 0 {
		return list, nil
	}
	env := f.environment
	if env == "" {
		env = "local"
	}
	data, err := clusters.Values(env)
	if err != nil {
		return nil, fmt.Errorf("--environment: %w", err)
	}
	var vals struct {
		Store struct {
			Domain string `json:"domain"`
		} `json:"store"`
	}
	if err := yaml.Unmarshal(data, &vals); err != nil || vals.Store.Domain == "" {
		return nil, fmt.Errorf("no store domain in the %s values: set --allowed-domains", env)
	}
	return v1alpha1.ParseDomains(vals.Store.Domain), nil
}

// newAPIServer checks the settings, connects to the cluster and waits for the
// store cache to sync.
func newAPIServer(ctx context.Context, cfg *rest.Config, f apiFlags, log *slog.Logger) (*openapi.Server, error) {
	trusted, err := f.validate()
	if err != nil {
		return nil, err
	}
	var auth openapi.Authenticator
	switch f.auth {
	case "header":
		auth = openapi.HeaderAuth{Trusted: trusted, AdminGroup: f.adminGroup}
	case "jwt":
		f.jwt.AdminGroup = f.adminGroup
		for _, a := range strings.Split(f.jwtAlgorithms, ",") {
			if a = strings.TrimSpace(a); a != "" {
				f.jwt.Algorithms = append(f.jwt.Algorithms, a)
			}
		}
		if auth, err = openapi.NewJWTAuth(ctx, f.jwt); err != nil {
			return nil, err
		}
	}

	cl, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, err
	}
	var ns corev1.Namespace
	if err := cl.Get(ctx, client.ObjectKey{Name: f.namespace}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("platform namespace %q does not exist: create it or set --namespace", f.namespace)
		}
		return nil, fmt.Errorf("reading platform namespace %q: %w", f.namespace, err)
	}
	stores, err := openapi.NewStoreCache(cfg, scheme())
	if err != nil {
		return nil, err
	}
	if err := stores.Start(ctx); err != nil {
		return nil, err
	}
	watch, err := openapi.NewWatchFeed(ctx, stores)
	if err != nil {
		return nil, err
	}
	var live openapi.Feed
	if f.redisURL != "" {
		rf, err := eventstream.NewFeed(f.redisURL, log)
		if err != nil {
			return nil, fmt.Errorf("--redis-url: %w", err)
		}
		go rf.Start(ctx)
		live = rf
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	var intents openapi.Intents = openapi.ClusterIntents{Client: cl}
	var reads openapi.StoreReader = stores
	if f.intent == "git" {
		w, err := f.git.newGitWriter(f.gitMode)
		if err != nil {
			return nil, err
		}
		// Pending creates are recorded in the platform namespace, where
		// every replica (and this one after a restart) reads them.
		ledger, err := gitintent.NewLedger(cfg, scheme(), cl, f.namespace)
		if err != nil {
			return nil, err
		}
		if err := ledger.Start(ctx); err != nil {
			return nil, err
		}
		git := gitintent.Intents{Writer: w, Ledger: ledger}
		intents, reads = git, openapi.PendingStores{Cache: stores, Intents: git}
	}
	host, _ := os.Hostname()
	domains, err := f.domains()
	if err != nil {
		return nil, err
	}
	plans, err := openapi.ParsePlanPolicy(f.plansByGroup)
	if err != nil {
		return nil, err
	}
	log.Info("Starting Intent API", "addr", f.addr, "auth", f.auth, "intent", f.intent, "maxStoresPerUser", f.maxStoresPerUser, "rateLimitPerMinute", f.rateLimit, "allowedDomains", domains, "plansByGroup", f.plansByGroup)
	srv := openapi.New(openapi.Config{
		AllowedDomains: domains, Plans: plans,
		Auth: auth, Trusted: trusted, MaxStoresPerUser: f.maxStoresPerUser, MutationsPerMinute: f.rateLimit, Log: log,
		MaxStreamsPerUser: f.maxUserStreams, MaxStreams: f.maxStreams,
		UserSwitcher: f.userSwitcher,
	}, openapi.Deps{
		Live: live, Watch: watch,
		Stores:  reads,
		Intents: intents,
		Lock:    &openapi.LeaseLock{Client: cl, Namespace: f.namespace, Holder: host},
		Client:  cl,
		GitSync: gitintent.Status{Client: cl, Namespace: f.namespace},
		Admin:   storeadmin.Inviter{Client: cl},
		Ready: func(ctx context.Context) error {
			if !stores.Synced() {
				return errors.New("store cache not synced")
			}
			_, err := disco.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
			return err
		},
	})
	// The dashboard is served beside the API it uses, from the same origin.
	srv.Mux().Handle("/", web.Handler(web.Assets()))
	return srv, nil
}

// runOpenAPI prints the OpenAPI document (make generate writes openapi/openapi.yaml).
func runOpenAPI(args []string) error {
	fs := flag.NewFlagSet("openapi", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	spec, err := openapi.Spec()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(spec)
	return err
}
