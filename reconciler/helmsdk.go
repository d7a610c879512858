package reconciler

// This is the only file that imports the Helm SDK.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/repo"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// HelmSDK installs store charts in-process with the Helm SDK. One cached
// discovery client and one REST mapper serve every release, so an install
// never re-downloads the API server's discovery or OpenAPI documents.
type HelmSDK struct {
	config    *rest.Config
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
	chart     *chart.Chart
	timeout   time.Duration
	log       *slog.Logger
	// memo spares a store's periodic check the read of Helm's storage;
	// nil reads it every time.
	memo *releaseMemo
}

// NewHelmSDK loads the chart from chartFS and prepares the shared clients.
// mapper should be the manager's REST mapper, shared with the controllers.
func NewHelmSDK(cfg *rest.Config, mapper meta.RESTMapper, chartFS fs.FS, log *slog.Logger) (*HelmSDK, error) {
	ch, err := loadChart(chartFS)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &HelmSDK{
		config: cfg, discovery: memory.NewMemCacheClient(dc), mapper: mapper, chart: ch,
		timeout: 5 * time.Minute, log: log,
	}, nil
}

// ChartVersion is the version of the chart this operator carries.
func (h *HelmSDK) ChartVersion() string { return h.chart.Metadata.Version }

// Mode implements Delivery.
func (h *HelmSDK) Mode() v1alpha1.DeliveryMode { return v1alpha1.DeliveryHelm }

// count counts a release-changing Helm action in
// storefleet_helm_actions_total (the drift tests assert that a healthy store
// causes none).
func (h *HelmSDK) count(action string) {
	helmActions.WithLabelValues(action).Inc()
}

func loadChart(fsys fs.FS) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: path, Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return loader.LoadFiles(files)
}

func (h *HelmSDK) actionConfig(namespace string) (*action.Configuration, error) {
	cfg := new(action.Configuration)
	getter := &restGetter{h: h, namespace: namespace}
	debug := func(format string, v ...any) { h.log.Debug(fmt.Sprintf(format, v...), "namespace", namespace) }
	if err := cfg.Init(getter, namespace, "secret", debug); err != nil {
		return nil, err
	}
	cfg.Releases.MaxHistory = releaseHistory
	return cfg, nil
}

// Ensure implements Delivery.
func (h *HelmSDK) Ensure(ctx context.Context, want DesiredRelease, force bool) (ReleaseState, error) {
	if want.ChartVersion != "" && want.ChartVersion != h.ChartVersion() {
		return ReleaseState{}, terminal(fmt.Errorf("chart version %s is not available; this operator carries medusa-store %s", want.ChartVersion, h.ChartVersion()))
	}
	memo, version, rv, ok, err := h.memo.get(ctx, want.Namespace, want.Name)
	if err != nil {
		return ReleaseState{}, err
	}
	if ok && !force && memo.Deployed() && memo.Digest == want.Digest {
		return memo, nil
	}
	cfg, err := h.actionConfig(want.Namespace)
	if err != nil {
		return ReleaseState{}, err
	}
	last, err := cfg.Releases.Last(want.Name)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return ReleaseState{}, err
	}
	state, err := h.ensure(ctx, cfg, want, force, last)
	switch {
	case err != nil:
		// A failed action may have left a revision behind.
		h.memo.forget(want.Namespace, want.Name)
	case state.Action != "":
		h.memo.wrote(want.Namespace, want.Name, state)
	default:
		h.memo.put(want.Namespace, want.Name, version, rv, state)
	}
	return state, err
}

// ensure acts on the latest revision read from Helm's storage.
func (h *HelmSDK) ensure(ctx context.Context, cfg *action.Configuration, want DesiredRelease, force bool, last *release.Release) (ReleaseState, error) {
	if last != nil && last.Info.Status.IsPending() {
		// A pending-* release is a lock left by an attempt that died (an
		// operator killed mid-install): no Helm action of ours is in flight for
		// this store, since reconciles of one store never overlap. Mark it
		// failed so it can be acted on, as Flux's helm-controller does.
		h.log.Info("Unlocking release stuck in "+last.Info.Status.String(), "namespace", want.Namespace, "release", want.Name, "revision", last.Version)
		last.SetStatus(release.StatusFailed, "storefleet: unlocked a release left "+last.Info.Status.String()+" by an interrupted attempt")
		if err := cfg.Releases.Update(last); err != nil {
			return ReleaseState{}, fmt.Errorf("unlock release: %w", err)
		}
	}

	switch {
	case last == nil:
		return h.install(ctx, cfg, want)
	case last.Info.Status != release.StatusDeployed && !hasDeployed(cfg, want.Name):
		// Nothing was ever deployed (a failed first install): start over, as
		// an upgrade needs a deployed revision to compare with.
		h.log.Info("Reinstalling release that never deployed", "namespace", want.Namespace, "release", want.Name)
		un := action.NewUninstall(cfg)
		un.Timeout = h.timeout
		if _, err := un.Run(want.Name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
			return ReleaseState{}, fmt.Errorf("uninstall failed release: %w", err)
		}
		h.count("uninstall")
		return h.install(ctx, cfg, want)
	case force || last.Info.Status != release.StatusDeployed || last.Labels[digestKey] != want.Digest:
		return h.upgrade(ctx, cfg, want)
	}
	return stateOf(last, ""), nil
}

// hasDeployed reads the release's history again: asked only when the
// latest revision is not the deployed one, so a healthy store's check costs
// one read of Helm's storage.
func hasDeployed(cfg *action.Configuration, name string) bool {
	_, err := cfg.Releases.Deployed(name)
	return err == nil
}

func (h *HelmSDK) install(ctx context.Context, cfg *action.Configuration, want DesiredRelease) (ReleaseState, error) {
	in := action.NewInstall(cfg)
	in.ReleaseName = want.Name
	in.Namespace = want.Namespace
	in.Timeout = h.timeout
	in.Labels = map[string]string{digestKey: want.Digest}
	// The API server validates what is applied; skipping the client-side
	// OpenAPI validation avoids downloading the OpenAPI document per install.
	in.DisableOpenAPIValidation = true
	h.count("install")
	h.log.Info("Installing release", "namespace", want.Namespace, "release", want.Name, "digest", want.Digest)
	rel, err := in.RunWithContext(ctx, h.chart, want.Values)
	if err != nil {
		return ReleaseState{}, fmt.Errorf("helm install: %w", err)
	}
	return stateOf(rel, "install"), nil
}

func (h *HelmSDK) upgrade(ctx context.Context, cfg *action.Configuration, want DesiredRelease) (ReleaseState, error) {
	up := action.NewUpgrade(cfg)
	up.Namespace = want.Namespace
	up.Timeout = h.timeout
	up.MaxHistory = releaseHistory
	up.Labels = map[string]string{digestKey: want.Digest}
	up.DisableOpenAPIValidation = true
	h.count("upgrade")
	h.log.Info("Upgrading release", "namespace", want.Namespace, "release", want.Name, "digest", want.Digest)
	rel, err := up.RunWithContext(ctx, want.Name, h.chart, want.Values)
	if err != nil {
		return ReleaseState{}, fmt.Errorf("helm upgrade: %w", err)
	}
	return stateOf(rel, "upgrade"), nil
}

// Observe implements Delivery.
func (h *HelmSDK) Observe(ctx context.Context, namespace, name string) (ReleaseState, bool, error) {
	memo, version, rv, ok, err := h.memo.get(ctx, namespace, name)
	if err != nil {
		return ReleaseState{}, false, err
	}
	if ok {
		return memo, true, nil
	}
	cfg, err := h.actionConfig(namespace)
	if err != nil {
		return ReleaseState{}, false, err
	}
	last, err := cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		h.memo.forget(namespace, name)
		return ReleaseState{}, false, nil
	}
	if err != nil {
		return ReleaseState{}, false, err
	}
	state := stateOf(last, "")
	h.memo.put(namespace, name, version, rv, state)
	return state, true, nil
}

// Remove implements Delivery.
func (h *HelmSDK) Remove(_ context.Context, _ *v1alpha1.Store, namespace, name string) (string, error) {
	cfg, err := h.actionConfig(namespace)
	if err != nil {
		return "", err
	}
	if _, err := cfg.Releases.Last(name); errors.Is(err, driver.ErrReleaseNotFound) {
		return "", nil
	}
	h.memo.forget(namespace, name)
	un := action.NewUninstall(cfg)
	un.Timeout = h.timeout
	un.DeletionPropagation = "foreground"
	h.count("uninstall")
	if _, err := un.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return "", fmt.Errorf("helm uninstall: %w", err)
	}
	return "", nil
}

// Detach implements Delivery: the release lives in Helm's storage in the
// store namespace, which another delivery reads as it is.
func (h *HelmSDK) Detach(context.Context, *v1alpha1.Store, string, string) (string, error) {
	return "", nil
}

// storedManifest reads one revision's manifest from Helm's storage (a GET
// of its Secret), for a release the memo holds without it.
func (h *HelmSDK) storedManifest(_ context.Context, namespace, name string, revision int) (string, error) {
	cfg, err := h.actionConfig(namespace)
	if err != nil {
		return "", err
	}
	rel, err := cfg.Releases.Get(name, revision)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

func stateOf(rel *release.Release, action string) ReleaseState {
	s := ReleaseState{Revision: rel.Version, Manifest: rel.Manifest, Action: action, Digest: rel.Labels[digestKey]}
	if rel.Info != nil {
		s.Status = v1alpha1.HelmStatus(rel.Info.Status)
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		s.ChartVersion = rel.Chart.Metadata.Version
	}
	return s
}

// restGetter gives Helm the shared config, discovery and mapper, scoped to
// one namespace.
type restGetter struct {
	h         *HelmSDK
	namespace string
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.h.config), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.h.discovery, nil
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.h.mapper, nil }

func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return namespaceConfig{namespace: g.namespace, config: g.h.config}
}

// namespaceConfig is the part of a kubeconfig Helm asks for: the namespace.
type namespaceConfig struct {
	namespace string
	config    *rest.Config
}

func (n namespaceConfig) RawConfig() (clientcmdapi.Config, error) { return clientcmdapi.Config{}, nil }
func (n namespaceConfig) ClientConfig() (*rest.Config, error)     { return rest.CopyConfig(n.config), nil }
func (n namespaceConfig) Namespace() (string, bool, error)        { return n.namespace, true, nil }
func (n namespaceConfig) ConfigAccess() clientcmd.ConfigAccess {
	return clientcmd.NewDefaultPathOptions()
}

// Render renders the chart with values as `helm template` would, without
// touching the cluster (for chart tests and dry runs).
func (h *HelmSDK) Render(namespace, name string, values map[string]any) (string, error) {
	in := action.NewInstall(&action.Configuration{})
	in.DryRun = true
	in.ClientOnly = true
	in.ReleaseName = name
	in.Namespace = namespace
	in.DisableHooks = true
	in.KubeVersion = kubeVersion
	rel, err := in.Run(h.chart, values)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// kubeVersion is the Kubernetes version client-side rendering and linting
// assume (the chart requires >= 1.30).
var kubeVersion = &chartutil.KubeVersion{Version: "v1.35.0", Major: "1", Minor: "35"}

// LintChart runs `helm lint` on a chart directory with values and returns
// its warnings and errors (informational messages left out).
func LintChart(dir string, values map[string]any) []string {
	linter := lint.AllWithKubeVersion(dir, values, "store-lint", kubeVersion)
	var problems []string
	for _, m := range linter.Messages {
		if m.Severity >= support.WarningSev {
			problems = append(problems, m.Error())
		}
	}
	return problems
}

// ChartRepository serves the embedded store chart as a Helm repository
// (index.yaml and the packaged chart), so helm-controller installs exactly
// the chart this operator carries, with no registry to publish to.
func ChartRepository(chartFS fs.FS) (http.Handler, error) {
	ch, err := loadChart(chartFS)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "storefleet-chart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path, err := chartutil.Save(ch, dir)
	if err != nil {
		return nil, fmt.Errorf("package chart: %w", err)
	}
	pkg, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pkg)
	name := filepath.Base(path)
	index := repo.NewIndexFile()
	// A relative URL: the index works at whatever address serves it.
	if err := index.MustAdd(ch.Metadata, name, "", hex.EncodeToString(sum[:])); err != nil {
		return nil, err
	}
	index.SortEntries()
	indexYAML, err := yaml.Marshal(index)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /index.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-yaml")
		_, _ = w.Write(indexYAML)
	})
	mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(pkg)
	})
	return mux, nil
}
