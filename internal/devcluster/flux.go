package devcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fluxConcurrency is --concurrent for both controllers: measured here, 20
// HelmReleases at once take 8–10 s with 10 workers against 13–16 s with the default.
const fluxConcurrency = 10

// startFlux installs the Flux CRDs and runs source-controller and
// helm-controller as child processes, every listener on loopback.
func (c *Cluster) startFlux(ctx context.Context) error {
	for _, name := range []string{"source-controller", "helm-controller"} {
		if err := c.installControllerCRDs(ctx, c.tools, name); err != nil {
			return err
		}
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: FluxNamespace}}
	if err := c.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}

	storagePort, err := FreePort()
	if err != nil {
		return err
	}
	c.SourceStorageAddr = "127.0.0.1:" + strconv.Itoa(storagePort)
	storage := filepath.Join(c.Workdir, "flux-artifacts")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return err
	}
	if err := c.startController(ctx, c.tools, "source-controller",
		"--storage-path="+storage,
		"--storage-addr="+c.SourceStorageAddr,
		"--storage-adv-addr="+c.SourceStorageAddr,
	); err != nil {
		return err
	}
	return c.startController(ctx, c.tools, "helm-controller")
}

// StartKustomizeController adds Flux's kustomize-controller (GitOpsTools,
// `make gitops`) to a cluster running Flux, so Kustomizations apply — what
// `flux bootstrap` installs besides source- and helm-controller.
func (c *Cluster) StartKustomizeController(ctx context.Context) error {
	if c.SourceStorageAddr == "" {
		return errors.New("kustomize-controller needs Flux's source-controller: start the cluster with Options.Flux")
	}
	t := GitOpsTools()
	if missing := t.Missing(); len(missing) > 0 {
		return fmt.Errorf("kustomize-controller is not built (missing %v): run `make gitops`", missing)
	}
	if err := c.installControllerCRDs(ctx, t, "kustomize-controller"); err != nil {
		return err
	}
	return c.startController(ctx, t, "kustomize-controller")
}

func (c *Cluster) installControllerCRDs(ctx context.Context, t Tools, name string) error {
	files, err := filepath.Glob(filepath.Join(t.Asset(name, "config/crd/bases"), "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRDs of %s in %s", name, t.Dir)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := c.InstallCRDs(ctx, data); err != nil {
			return fmt.Errorf("install %s: %w", filepath.Base(f), err)
		}
	}
	return nil
}

// startController runs one Flux controller of t and waits for its /readyz.
func (c *Cluster) startController(ctx context.Context, t Tools, name string, extra ...string) error {
	metricsPort, err := FreePort()
	if err != nil {
		return err
	}
	healthPort, err := FreePort()
	if err != nil {
		return err
	}
	healthAddr := "127.0.0.1:" + strconv.Itoa(healthPort)
	args := append([]string{
		"--metrics-addr=127.0.0.1:" + strconv.Itoa(metricsPort),
		"--health-addr=" + healthAddr,
		"--watch-all-namespaces",
		"--concurrent=" + strconv.Itoa(fluxConcurrency),
		"--log-level=info",
	}, extra...)
	logFile, err := os.Create(filepath.Join(c.Workdir, name+".log"))
	if err != nil {
		return err
	}
	defer logFile.Close() // the child keeps its own descriptor
	// Not CommandContext: the controller must outlive the start-up context
	// and is stopped by Stop.
	cmd := exec.Command(t.Bin(name), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "RUNTIME_NAMESPACE="+FluxNamespace)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.controllers = append(c.controllers, cmd)
	if err := waitHTTPOK(ctx, "http://"+healthAddr+"/readyz", 60*time.Second); err != nil {
		data, _ := os.ReadFile(logFile.Name())
		return fmt.Errorf("%s not ready: %w\n%s", name, err, LastLines(string(data), 20))
	}
	return nil
}

// FluxControllerPID returns the process id of a running Flux controller
// ("helm-controller", "source-controller"), or 0.
func (c *Cluster) FluxControllerPID(name string) int {
	for _, cmd := range c.controllers {
		if filepath.Base(cmd.Path) == name && cmd.Process != nil {
			return cmd.Process.Pid
		}
	}
	return 0
}

// StopFluxController stops one Flux controller, as an outage would (fault
// tests); the others keep running.
func (c *Cluster) StopFluxController(name string) error {
	for i, cmd := range c.controllers {
		if filepath.Base(cmd.Path) == name {
			c.controllers = append(c.controllers[:i:i], c.controllers[i+1:]...)
			return stopProcess(cmd)
		}
	}
	return fmt.Errorf("flux controller %s is not running", name)
}

// LogTail is the end of the named controllers' logs, for test failures.
func (c *Cluster) LogTail(names ...string) string {
	var b strings.Builder
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(c.Workdir, name+".log"))
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "--- %s.log (last lines)\n%s\n", name, LastLines(string(data), 15))
	}
	return b.String()
}
