package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/charts"
	"github.com/storefleet/storefleet/clusters"
	"github.com/storefleet/storefleet/gitsync"
	"github.com/storefleet/storefleet/internal/eventstream"
	"github.com/storefleet/storefleet/reconciler"
)

// operatorFlags are the operator's settings, shared by `operator` and `dev`.
type operatorFlags struct {
	kubeconfig      string
	environment     string
	valuesFile      string
	domain          string
	allowedDomains  string
	realNode        bool
	ingressPort     int
	metricsAddr     string
	pprof           bool
	healthAddr      string
	leaderElect     bool
	leaderNamespace string
	kubeQPS         float64
	delivery        string
	fluxNamespace   string
	fluxSource      string
	fluxChart       string
	chartAddr       string
	chartURL        string
	redisURL        string
	redisMaxLen     int64
	fluxPatience    time.Duration
	// The Git reader (the stores repo is in git).
	git              gitFlags
	gitSync          bool
	gitInterval      time.Duration
	gitMaxPrune      int
	gitPruneWindow   time.Duration
	gitWebhookAddr   string
	gitWebhookSecret string
	opts             reconciler.Options
}

func (f *operatorFlags) register(fs *flag.FlagSet) {
	d := reconciler.DefaultOptions()
	fs.StringVar(&f.environment, "environment", "local", fmt.Sprintf("built-in store chart values to use: %v", clusters.Environments))
	fs.StringVar(&f.valuesFile, "values", "", "store chart values file of the environment (overrides --environment)")
	fs.StringVar(&f.domain, "domain", "", "default domain of store hosts (default: store.domain of the environment values)")
	fs.StringVar(&f.allowedDomains, "allowed-domains", "", "comma-separated domains a Store's spec.domain may name; a Store with another domain is Stalled (default: the default domain only)")
	fs.IntVar(&f.ingressPort, "ingress-port", 0, "port the ingress serves stores on when it is not 80/443 (part of every store URL); sets the store chart's ingress.port")
	fs.BoolVar(&f.realNode, "stores-on-real-node", false, "run stores on the local cluster's real node: merge clusters/local/platform/real-node-values.yaml over the environment's values")
	fs.IntVar(&f.opts.Workers, "workers", d.Workers, "stores reconciled concurrently")
	fs.IntVar(&f.opts.MaxAttempts, "max-attempts", d.MaxAttempts, "failed attempts before a store is marked Failed")
	fs.DurationVar(&f.opts.DriftInterval, "drift-interval", d.DriftInterval, "periodic drift re-check of ready stores (managed objects are also watched)")
	fs.DurationVar(&f.opts.PodStartTimeout, "pod-start-timeout", d.PodStartTimeout, "how long a pod may take to start before it counts as failed")
	fs.Float64Var(&f.kubeQPS, "kube-api-qps", 100, "queries per second to the API server (burst is twice as many)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect a leader through a Lease so only one replica acts")
	fs.StringVar(&f.leaderNamespace, "leader-election-namespace", envOr("POD_NAMESPACE", "kube-system"), "namespace of the leader election Lease")
	fs.StringVar(&f.delivery, "delivery", string(reconciler.DeliveryAuto), "how new stores are installed: auto (Flux when its CRDs are served, else Helm SDK), flux or helm")
	fs.StringVar(&f.opts.CredentialsNamespace, "credentials-namespace", envOr("POD_NAMESPACE", reconciler.DefaultCredentialsNamespace), "platform namespace where the operator keeps a copy of each store's credentials (store-credentials-<name>), to restore a deleted store Secret")
	fs.StringVar(&f.fluxNamespace, "flux-namespace", envOr("POD_NAMESPACE", "storefleet-system"), "namespace of the stores' HelmReleases (Flux delivery)")
	fs.StringVar(&f.fluxSource, "flux-source", "builtin", "chart source of the HelmReleases: builtin (this operator serves its chart; needs --chart-url) or Kind/namespace/name of a Flux HelmRepository, GitRepository or OCIRepository")
	fs.StringVar(&f.fluxChart, "flux-chart", "", "chart name in the source (path for a GitRepository; default medusa-store, or charts/medusa-store for Git)")
	fs.DurationVar(&f.fluxPatience, "flux-unresponsive-after", 30*time.Second, "how long helm-controller may leave a HelmRelease change unhandled before the store says it may not be running")
	fs.StringVar(&f.chartAddr, "chart-addr", ":8082", "address serving the builtin chart repository (0 disables)")
	fs.StringVar(&f.redisURL, "redis-url", os.Getenv("REDIS_URL"), "Redis to publish store events to (redis://host:6379/0); optional")
	fs.Int64Var(&f.redisMaxLen, "redis-stream-maxlen", 1000, "approximate length each store's event stream is trimmed to")
	fs.BoolVar(&f.gitSync, "git-sync", true, "sync the stores repo (--git-url) into the cluster; turn off where a Flux Kustomization syncs it")
	fs.DurationVar(&f.gitInterval, "git-sync-interval", time.Minute, "how often the stores repo is fetched (webhooks trigger a sync at once)")
	fs.IntVar(&f.gitMaxPrune, "git-max-prune", 3, "most stores syncs may delete within --git-prune-window; a sync that would go over deletes none and reports it")
	fs.DurationVar(&f.gitPruneWindow, "git-prune-window", time.Hour, "the period --git-max-prune counts deletions over (recorded in the gitsync status, so it holds across restarts)")
	fs.StringVar(&f.gitWebhookAddr, "git-webhook-addr", ":8083", "address serving POST "+gitsync.WebhookPath+" for the forge's push webhook (0 disables)")
	fs.StringVar(&f.gitWebhookSecret, "git-webhook-secret-file", "", "file with the webhook's shared secret (HMAC-SHA256 of the body)")
	fs.StringVar(&f.chartURL, "chart-url", "", "URL where source-controller reaches the builtin chart repository, e.g. http://storefleet-operator.storefleet-system.svc:8082")
}

// builtinSource names the HelmRepository the operator keeps for its own chart.
const builtinSource = "storefleet-charts"

// fluxOptions resolves the Flux delivery settings; nil means Flux delivery is
// off (auto then always uses the Helm SDK).
func (f *operatorFlags) fluxOptions() (*reconciler.FluxOptions, error) {
	switch reconciler.DeliveryChoice(f.delivery) {
	case reconciler.DeliveryAuto, reconciler.DeliveryFlux, reconciler.DeliveryHelm:
	default:
		return nil, fmt.Errorf("--delivery must be auto, flux or helm, not %q", f.delivery)
	}
	if f.delivery == string(reconciler.DeliveryHelm) {
		return nil, nil
	}
	src := reconciler.ChartSource{Chart: f.fluxChart}
	if f.fluxSource == "builtin" {
		if f.chartURL == "" || f.chartAddr == "0" {
			if f.delivery == string(reconciler.DeliveryFlux) {
				return nil, errors.New("--delivery=flux with --flux-source=builtin needs --chart-url (and --chart-addr)")
			}
			return nil, nil
		}
		src.Kind, src.Namespace, src.Name, src.URL = "HelmRepository", f.fluxNamespace, builtinSource, f.chartURL
	} else {
		parts := strings.Split(f.fluxSource, "/")
		if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
			return nil, fmt.Errorf("--flux-source must be builtin or Kind/namespace/name, not %q", f.fluxSource)
		}
		switch parts[0] {
		case "HelmRepository", "GitRepository", "OCIRepository":
		default:
			return nil, fmt.Errorf("--flux-source kind must be HelmRepository, GitRepository or OCIRepository, not %q", parts[0])
		}
		src.Kind, src.Namespace, src.Name = parts[0], parts[1], parts[2]
	}
	if src.Chart == "" {
		src.Chart = "medusa-store"
		if src.Kind == "GitRepository" {
			src.Chart = "charts/medusa-store"
		}
	}
	return &reconciler.FluxOptions{Namespace: f.fluxNamespace, Source: src, Unresponsive: f.fluxPatience}, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// registerCommand adds the flags of `storefleet operator` (the shared ones,
// the stores repo's and the process's own addresses).
func (f *operatorFlags) registerCommand(fs *flag.FlagSet) {
	f.register(fs)
	f.git.register(fs)
	fs.StringVar(&f.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default: in-cluster config)")
	fs.StringVar(&f.metricsAddr, "metrics-addr", ":8080", "address of /metrics")
	fs.BoolVar(&f.pprof, "pprof", false, "also serve Go's runtime profiles at /debug/pprof/ on --metrics-addr (heap, CPU, goroutines: where a fleet's memory and time go)")
	fs.StringVar(&f.healthAddr, "health-addr", ":8081", "address of /healthz and /readyz")
}

// commandArgs is the `storefleet operator` command line that runs with f's
// settings: every flag whose value differs from its default. The flags are
// bound to the fields of a scratch copy, so copying f into it makes each flag
// read f's value. A setting without a flag cannot cross a process boundary:
// TestOperatorCommandArgsRoundTrip parses the result back.
func (f operatorFlags) commandArgs() []string {
	fs := flag.NewFlagSet("operator", flag.ContinueOnError)
	var scratch operatorFlags
	scratch.registerCommand(fs)
	scratch = f
	var args []string
	fs.VisitAll(func(fl *flag.Flag) {
		if v := fl.Value.String(); v != fl.DefValue {
			args = append(args, "--"+fl.Name+"="+v)
		}
	})
	return args
}

func runOperator(args []string) error {
	fs := flag.NewFlagSet("operator", flag.ContinueOnError)
	var f operatorFlags
	f.registerCommand(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	platform, err := f.platform()
	if err != nil {
		return err
	}
	if _, err := f.fluxOptions(); err != nil {
		return err
	}
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return startOperator(ctx, cfg, f, platform, newLogger())
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return rest.InClusterConfig()
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// platform resolves the environment values and default domain.
func (f *operatorFlags) platform() (reconciler.Platform, error) {
	var data []byte
	var err error
	if f.valuesFile != "" {
		data, err = os.ReadFile(f.valuesFile)
	} else {
		data, err = clusters.Values(f.environment)
	}
	if err != nil {
		return reconciler.Platform{}, err
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		return reconciler.Platform{}, fmt.Errorf("parse values: %w", err)
	}
	if f.realNode {
		data, err := clusters.RealNodeValues()
		if err != nil {
			return reconciler.Platform{}, err
		}
		node := map[string]any{}
		if err := yaml.Unmarshal(data, &node); err != nil {
			return reconciler.Platform{}, fmt.Errorf("parse the real node's values: %w", err)
		}
		clusters.Merge(vals, node)
	}
	if f.ingressPort != 0 {
		if f.ingressPort < 0 || f.ingressPort > 65535 {
			return reconciler.Platform{}, fmt.Errorf("--ingress-port %d is not a port", f.ingressPort)
		}
		clusters.Merge(vals, map[string]any{"ingress": map[string]any{"port": f.ingressPort}})
	}
	p := reconciler.Platform{Domain: f.domain, EnvironmentValues: vals}
	if p.Domain == "" {
		if store, ok := vals["store"].(map[string]any); ok {
			p.Domain, _ = store["domain"].(string)
		}
	}
	if p.Domain == "" {
		return p, fmt.Errorf("no default domain: set --domain or store.domain in the values")
	}
	if list := v1alpha1.ParseDomains(f.allowedDomains); len(list) > 0 {
		// The default domain is always the platform's.
		if !slices.Contains(list, strings.ToLower(p.Domain)) {
			list = append([]string{strings.ToLower(p.Domain)}, list...)
		}
		p.AllowedDomains = list
	}
	return p, nil
}

// The event publisher's counters are on the operator's /metrics with or
// without Redis (at 0 without).
func init() { ctrlmetrics.Registry.MustRegister(eventstream.Metrics()...) }

// startOperator runs the operator until ctx ends.
func startOperator(ctx context.Context, cfg *rest.Config, f operatorFlags, platform reconciler.Platform, log *slog.Logger) error {
	f.opts.Platform = platform
	f.opts.Delivery = reconciler.DeliveryChoice(f.delivery)
	flux, err := f.fluxOptions()
	if err != nil {
		return err
	}
	f.opts.Flux = flux
	var publisher *eventstream.Publisher
	if f.redisURL != "" {
		if publisher, err = eventstream.NewPublisher(f.redisURL, f.redisMaxLen, log); err != nil {
			return fmt.Errorf("--redis-url: %w", err)
		}
		f.opts.Events = publisher
	}
	// Each Helm install or repair makes a few dozen requests; client-go's
	// default 5 QPS would make a fleet wait on the client, not the server.
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(f.kubeQPS), int(f.kubeQPS*2)
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	// client-go (leader election among others) logs through klog.
	klog.SetSlogLogger(log)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme(),
		Cache:                         reconciler.CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: f.metricsAddr, ExtraHandlers: profileHandlers(f.pprof)},
		HealthProbeBindAddress:        f.healthAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              "storefleet-operator",
		LeaderElectionNamespace:       f.leaderNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptrDuration(30 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	deliveries, err := reconciler.Setup(mgr, f.opts, charts.MedusaStore(), log)
	if err != nil {
		return err
	}
	if flux != nil && flux.Source.URL != "" {
		// The embedded store chart as a Helm repository for helm-controller.
		repo, err := reconciler.ChartRepository(charts.MedusaStore())
		if err != nil {
			return err
		}
		if err := mgr.Add(serveHTTP("chart repository", f.chartAddr, repo)); err != nil {
			return err
		}
	}
	if publisher != nil {
		if err := mgr.Add(publisher); err != nil {
			return err
		}
	}
	if err := f.setupGit(mgr, log); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	log.Info("Starting operator", "delivery", f.delivery, "fluxConfigured", flux != nil, "chart", deliveries.Helm.ChartVersion(), "workers", f.opts.Workers, "domain", platform.Domain, "allowedDomains", platform.Allowed())
	return mgr.Start(ctx)
}

// setupGit adds the Git reader (with its webhook) and the outcome reporter
// when a stores repo and a forge are configured.
func (f *operatorFlags) setupGit(mgr manager.Manager, log *slog.Logger) error {
	var reader *gitsync.Reader
	if f.git.url != "" && f.gitSync {
		remote, err := f.git.remote()
		if err != nil {
			return err
		}
		var secret []byte
		if f.gitWebhookSecret != "" {
			data, err := os.ReadFile(f.gitWebhookSecret)
			if err != nil {
				return fmt.Errorf("--git-webhook-secret-file: %w", err)
			}
			secret = []byte(strings.TrimSpace(string(data)))
		}
		dir, err := f.git.dir("reader")
		if err != nil {
			return err
		}
		// A watch of one ConfigMap, outside the manager's cache (which
		// holds only what stores own).
		watcher, err := client.NewWithWatch(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
		if err != nil {
			return err
		}
		reader, err = gitsync.NewReader(gitsync.ReaderOptions{
			Remote: remote, Dir: dir, Interval: f.gitInterval, MaxPrune: f.gitMaxPrune, PruneWindow: f.gitPruneWindow, WebhookSecret: secret,
			Namespace: f.fluxNamespace, Client: mgr.GetClient(), Watcher: watcher, Log: logr.FromSlogHandler(log.Handler()).WithName("gitsync"),
			Registerer: ctrlmetrics.Registry,
		})
		if err != nil {
			return err
		}
		if err := mgr.Add(reader); err != nil {
			return err
		}
		if f.gitWebhookAddr != "0" {
			if len(secret) == 0 {
				return errors.New("--git-webhook-addr needs --git-webhook-secret-file (or --git-webhook-addr=0 to poll only)")
			}
			mux := http.NewServeMux()
			mux.Handle(gitsync.WebhookPath, reader)
			if err := mgr.Add(serveHTTP("git webhook", f.gitWebhookAddr, mux)); err != nil {
				return err
			}
		}
	}
	forge, err := f.git.forgeClient()
	if err != nil || forge == nil {
		return err
	}
	if reader == nil {
		// Only the reader knows which commit a store really came from; a
		// commit annotation alone (Flux, kubectl) never steers the forge.
		log.Info("Store outcomes are not reported to the forge: that needs the operator's Git reader (--git-url, --git-sync)")
		return nil
	}
	return (&gitsync.Reporter{Forge: forge, Commits: reader, Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), DashboardURL: f.git.dashboardURL,
		Log: logr.FromSlogHandler(log.Handler()).WithName("gitsync-reporter")}).SetupWithManager(mgr)
}

func ptrDuration(d time.Duration) *time.Duration { return &d }

// profileHandlers are net/http/pprof's handlers under /debug/pprof/ when on:
// opt-in, since a profile shows the process's insides to whoever reaches the
// metrics port.
func profileHandlers(on bool) map[string]http.Handler {
	if !on {
		return nil
	}
	return map[string]http.Handler{
		"/debug/pprof/":        http.HandlerFunc(pprof.Index),
		"/debug/pprof/cmdline": http.HandlerFunc(pprof.Cmdline),
		"/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		"/debug/pprof/symbol":  http.HandlerFunc(pprof.Symbol),
		"/debug/pprof/trace":   http.HandlerFunc(pprof.Trace),
	}
}

// serveHTTP runs an HTTP server as a manager runnable on every replica
// (leader or not) until the manager stops.
func serveHTTP(what, addr string, h http.Handler) manager.Runnable {
	return manager.RunnableFunc(func(ctx context.Context) error {
		srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		select {
		case err := <-errc:
			return fmt.Errorf("%s on %s: %w", what, addr, err)
		case <-ctx.Done():
			return srv.Close()
		}
	})
}

// scheme knows the built-in kinds and storefleet's own.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, helmv2.AddToScheme, sourcev1.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}
