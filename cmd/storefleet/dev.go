package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/imagebuild"
	"github.com/storefleet/storefleet/internal/realnode"
	"github.com/storefleet/storefleet/internal/supervise"
)

func runDev(args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	withRedis := fs.Bool("redis", false, "start redis-server (Debian package redis-server) for the live event streams")
	flux := fs.Bool("flux", false, "also run the Flux helm-controller and source-controller; stores are then delivered as HelmReleases")
	workdir := fs.String("workdir", "", "directory for the cluster's state (default: a new temporary directory, removed on exit)")
	realNode := fs.String("real-node", "auto", "run a real worker node (kubelet, containerd) beside the simulated ones: auto (when this host can), true, or false (kwok only)")
	ingressAddr := fs.String("ingress-addr", "127.0.0.1:80", "loopback address of the real node's ingress: stores answer at http://<name>.localhost/ (port 80) or http://<name>.localhost:<port>/")
	var op operatorFlags
	op.register(fs)
	fs.StringVar(&op.kubeconfig, "kubeconfig", "", "run the operator and API against this existing cluster instead of the embedded one")
	var api apiFlags
	api.register(fs)
	var git gitFlags
	git.register(fs)
	withForge := fs.Bool("forge", false, "start a local Gitea as the stores repo's forge: the API commits through pull requests, merged ones are provisioned and reported on the PR")
	fs.StringVar(&api.addr, "api-addr", "127.0.0.1:8080", "address of the Intent API")
	devAPIDefaults(fs, &api)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *withRedis && op.redisURL == "" {
		redis, err := devcluster.StartRedis(0)
		if err != nil {
			return err
		}
		defer redis.Stop()
		op.redisURL = redis.URL()
	}
	// One Redis for both: the operator writes the streams the API reads.
	api.redisURL = op.redisURL
	if *withForge && git.url != "" {
		return errors.New("--forge starts its own stores repo; drop --git-url")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tools := devcluster.DefaultTools()
	var cfg *rest.Config
	var kubeconfig, logDir string
	var cluster *devcluster.Cluster
	var err error
	if op.kubeconfig != "" {
		// An existing cluster: only the operator and the API run here.
		if *flux {
			return errors.New("--flux starts Flux in the embedded cluster; with --kubeconfig, install Flux in your cluster (auto delivery uses it when --chart-url is reachable from it)")
		}
		if cfg, err = clientcmd.BuildConfigFromFlags("", op.kubeconfig); err != nil {
			return err
		}
		cl, err := client.New(cfg, client.Options{Scheme: scheme()})
		if err != nil {
			return err
		}
		if err := devcluster.InstallCRDs(ctx, cl, v1alpha1.CRDManifest); err != nil {
			return fmt.Errorf("install the Store CRD: %w", err)
		}
		kubeconfig, logDir = op.kubeconfig, *workdir
		if logDir == "" {
			if logDir, err = os.MkdirTemp("", "storefleet-dev-"); err != nil {
				return err
			}
		}
	} else {
		withNode, err := wantRealNode(*realNode)
		if err != nil {
			return err
		}
		if missing := append(tools.Missing(), nodeMissing(withNode)...); len(missing) > 0 {
			fmt.Printf("First run: building the local cluster into %s\n(about 40 minutes on 2 cores with empty Go caches; later runs start in seconds)\n", devcluster.CacheDir())
			if _, err := devcluster.Build(ctx, os.Stdout); err != nil {
				return err
			}
			if withNode {
				if _, err := devcluster.NodeTools().Build(ctx, os.Stdout); err != nil {
					return err
				}
			}
		}
		var storeImages []imagebuild.Image
		if withNode {
			if storeImages, err = devStoreImages(ctx); err != nil {
				return err
			}
		}
		cluster, err = devcluster.Start(ctx, devcluster.Options{Workdir: *workdir, Flux: *flux, Log: os.Stdout, RealNode: withNode, IngressAddr: *ingressAddr, NodeImages: storeImages})
		if err != nil {
			return err
		}
		defer func() {
			fmt.Println("Stopping the local cluster ...")
			if err := cluster.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "storefleet dev: stop: %v\n", err)
			}
		}()
		cfg, kubeconfig, logDir = cluster.Config, cluster.Kubeconfig, cluster.Workdir
		// Stores run for real when the node does, at the node's ingress.
		op.realNode = cluster.Node != nil
		if cluster.Node != nil {
			if u, err := url.Parse(cluster.Node.IngressURL); err == nil {
				op.ingressPort, _ = strconv.Atoi(u.Port())
			}
		}
	}
	platform, err := op.platform()
	if err != nil {
		return err
	}
	// The API accepts exactly the domains the operator provisions.
	api.allowedDomains = strings.Join(platform.Allowed(), ",")

	metricsPort, err := devcluster.FreePort()
	if err != nil {
		return err
	}
	op.metricsAddr = fmt.Sprintf("127.0.0.1:%d", metricsPort)
	op.healthAddr = "0"
	// The platform namespace holds the quota Leases and, with Flux, the
	// HelmReleases; a real installation's chart creates it.
	op.fluxNamespace = api.namespace
	op.opts.CredentialsNamespace = api.namespace
	if err := ensureNamespace(ctx, cfg, api.namespace); err != nil {
		return err
	}
	if *flux {
		chartPort, err := devcluster.FreePort()
		if err != nil {
			return err
		}
		op.chartAddr = fmt.Sprintf("127.0.0.1:%d", chartPort)
		op.chartURL = "http://" + op.chartAddr
	}
	repo, err := setupDevGit(ctx, &git, &op, &api, logDir, *withForge)
	if err != nil {
		return err
	}
	defer repo.stop()
	op.git, api.git = git, git

	// The operator runs as its own process, restarted when it exits: a
	// restart (kill $(cat operator.pid)) is a real one, with nothing
	// carried over in memory.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	op.kubeconfig = kubeconfig
	operator, err := supervise.Start(ctx, supervise.Process{
		Name: "operator", Path: exe, Args: append([]string{"operator"}, op.commandArgs()...), Dir: logDir, Log: os.Stdout,
	})
	if err != nil {
		return err
	}

	apiServer, err := newAPIServer(ctx, cfg, api, devLogger(logDir, "api.log"))
	if err != nil {
		return err
	}
	apiDone := make(chan error, 1)
	apiMetricsPort, err := devcluster.FreePort()
	if err != nil {
		return err
	}
	api.metricsAddr = fmt.Sprintf("127.0.0.1:%d", apiMetricsPort)
	go func() { apiDone <- apiServer.Serve(ctx, api.addr, api.metricsAddr) }()

	kubectl := tools.Bin("kubectl")
	fmt.Printf(`
storefleet dev is running.

Dashboard:   http://%[6]s/  (switch users at the top right: two tabs can be two users)
Intent API:  http://%[6]s/api/v1/stores  (docs: http://%[6]s/docs)
curl -s -X POST http://%[6]s/api/v1/stores -H 'X-User-Id: alice' -H 'Content-Type: application/json' -d '{"name":"demo","engine":"medusa"}'
curl -s http://%[6]s/api/v1/stores/demo -H 'X-User-Id: alice'

Use the cluster with:

export KUBECONFIG=%[1]s
alias kubectl=%[2]s
kubectl get nodes
kubectl apply -f - <<'YAML'
apiVersion: storefleet.dev/v1alpha1
kind: Store
metadata: {name: demo}
spec: {engine: medusa, owner: alice}
YAML
kubectl get stores -w
kubectl get helmreleases -A    # with --flux: each store is a Flux HelmRelease

Stores repo: %[8]s (branch %[9]s, directory %[10]s/; a merged manifest becomes a store)
  storefleet validate <dir>   checks manifests before you commit them

%[11]s
Live events: curl -N http://%[6]s/api/v1/stores/demo/events -H 'X-User-Id: alice'   (Redis: %[7]s)
Operator metrics: http://%[3]s/metrics   API metrics: http://%[12]s/metrics
Logs:             %[4]s, %[5]s
Operator:         pid in %[13]s; kill it to restart the operator (dev starts it again)
Press Ctrl-C to stop everything.
`, kubeconfig, kubectl, op.metricsAddr, filepath.Join(logDir, "operator.log"), filepath.Join(logDir, "api.log"), api.addr, orNone(api.redisURL), repo.describe(git), git.branch, git.path, nodeSummary(cluster), api.metricsAddr, supervise.PIDPath(logDir, "operator"))
	if *workdir != "" {
		fmt.Printf("State and logs are kept in %s\n", *workdir)
	}
	select {
	case <-ctx.Done():
		return errors.Join(<-operator.Done(), <-apiDone)
	case err := <-operator.Done():
		return fmt.Errorf("operator stopped: %w", err)
	case err := <-apiDone:
		return fmt.Errorf("intent API stopped: %w", err)
	}
}

// wantRealNode decides whether dev runs the real node, saying why not when
// the host cannot (then every pod is simulated by kwok).
func wantRealNode(flag string) (bool, error) {
	switch flag {
	case "false":
		fmt.Println("Real node off (--real-node=false): every pod is simulated by kwok; stores read Ready without running.")
		return false, nil
	case "true":
		return true, realnode.Check()
	case "auto":
		if err := realnode.Check(); err != nil {
			fmt.Printf("Running without a real node: %v.\nEvery pod is simulated by kwok; stores read Ready without running. (--real-node=false silences this.)\n", err)
			return false, nil
		}
		fmt.Println("This host can run containers: starting a real worker node (kubelet, containerd) beside the simulated ones (--real-node=false to skip).")
		return true, nil
	default:
		return false, fmt.Errorf("--real-node: want auto, true or false, got %q", flag)
	}
}

// devStoreImages builds (or finds cached) the store chart's images from the
// repository dev runs in (`make run`), for the real node.
func devStoreImages(ctx context.Context) ([]imagebuild.Image, error) {
	if _, err := os.Stat(devcluster.StoreImagesDir); err != nil {
		return nil, fmt.Errorf("the store images' sources (%s) are not here: run storefleet dev from the repository's root (make run), or --real-node=false", devcluster.StoreImagesDir)
	}
	fmt.Println("Store images (Medusa, storefront, PostgreSQL, Redis): built once, then cached; the first build takes about 10 minutes.")
	return devcluster.BuildStoreImages(ctx, devcluster.ImageBuilder(os.Stdout), devcluster.StoreImagesDir)
}

// nodeMissing lists the real node's binaries still to build.
func nodeMissing(withNode bool) []string {
	if !withNode {
		return nil
	}
	return devcluster.NodeTools().Missing()
}

// nodeSummary is the real node's line of the instructions.
func nodeSummary(c *devcluster.Cluster) string {
	if c == nil || c.Node == nil {
		return "Real node:   none (pods are simulated by kwok)"
	}
	return fmt.Sprintf("Real node:   %s (kubectl get pods -A -o wide); ingress %s — http://<host>.localhost:<port>/ reaches an Ingress of class %s", realnode.NodeName, c.Node.IngressURL, realnode.IngressClass)
}

func orNone(s string) string {
	if s == "" {
		return "none, streams follow the cluster watch"
	}
	return s
}

// ensureNamespace creates the platform namespace, which the chart of a real
// installation provides.
func ensureNamespace(ctx context.Context, cfg *rest.Config, name string) error {
	cl, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return err
	}
	err = cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// devLogger writes a component's JSON log to a file in the cluster's
// workdir, keeping the terminal for the instructions.
func devLogger(clusterWorkdir, file string) *slog.Logger {
	f, err := os.Create(filepath.Join(clusterWorkdir, file))
	if err != nil {
		return newLogger()
	}
	return slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// devAPIDefaults are the API settings of a laptop: the caller is on loopback
// and says who it is (the proxy of a real installation is not there).
// One person trying the API from a script must not meet the production
// rate limit (ten mutations a minute): dev allows devRateLimit, still a
// bound, and says so in --help.
func devAPIDefaults(fs *flag.FlagSet, api *apiFlags) {
	api.trustedProxies = "127.0.0.1/32,::1/128"
	api.userSwitcher = true
	setDefault(fs, "rate-limit", strconv.Itoa(devRateLimit))
}

// devRateLimit is storefleet dev's mutations a minute per user.
const devRateLimit = 600

// setDefault changes a registered flag's default, value and help alike.
func setDefault(fs *flag.FlagSet, name, value string) {
	f := fs.Lookup(name)
	if err := f.Value.Set(value); err != nil {
		panic(fmt.Sprintf("default %q of --%s: %v", value, name, err))
	}
	f.DefValue = value
}
