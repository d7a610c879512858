package charts_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/test/testenv"
)

// TestPlatformChartInstallsAndItsRBACSuffices installs the platform chart
// with the Helm SDK: the operator and API Deployments become available
// (simulated pods: no container runtime here), and the operator binary, run
// as the chart's ServiceAccount through impersonation, provisions a store —
// so the chart's RBAC is enough, and it is only the generated roles.
func TestPlatformChartInstallsAndItsRBACSuffices(t *testing.T) {
	cluster := shared.Get(t)
	ctx := context.Background()
	const ns = "storefleet-system"
	if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
	}}}); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, namespace := cluster.Kubeconfig, ns
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, "secret", t.Logf); err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace = "storefleet", ns
	install.Wait, install.Timeout = true, 2*time.Minute
	install.SkipCRDs = true // the local cluster has the Store CRD already; the chart's copy is the same file
	rel, err := install.Run(loadPlatformChart(t), envValues(t, "local"))
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	if rel.Info.Status.String() != "deployed" {
		t.Fatalf("release %s", rel.Info.Status)
	}
	for _, name := range []string{"storefleet-operator", "storefleet-api", "storefleet-redis"} {
		var d appsv1.Deployment
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
			t.Fatal(err)
		}
		if d.Status.AvailableReplicas != *d.Spec.Replicas {
			t.Errorf("%s: %d/%d available", name, d.Status.AvailableReplicas, *d.Spec.Replicas)
		}
	}

	// The real operator, as the chart's ServiceAccount.
	dir := t.TempDir()
	binary, err := testenv.BuildStorefleet("..", dir)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.LoadFromFile(cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range kc.AuthInfos {
		auth.Impersonate = "system:serviceaccount:" + ns + ":storefleet-operator"
	}
	impersonated := filepath.Join(dir, "operator.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, impersonated); err != nil {
		t.Fatal(err)
	}
	port, err := devcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "operator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	op := exec.Command(binary, "operator", "--kubeconfig", impersonated, "--leader-election-namespace", ns,
		"--flux-namespace", ns, "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port), "--health-addr", "0", "--chart-addr", "0")
	op.Stdout, op.Stderr = logFile, logFile
	if err := op.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = op.Process.Kill(); _ = op.Wait() }()

	s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "chart-rbac"}, Spec: v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: "alice"}}
	if err := cluster.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, "store Ready, provisioned by the chart's ServiceAccount", func() (bool, error) {
		err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(s), s)
		return err == nil && s.Status.Phase == v1alpha1.PhaseReady, err
	}, func() string {
		data, _ := os.ReadFile(logPath)
		return fmt.Sprintf("conditions %+v\noperator log:\n%s", s.Status.Conditions, tailLines(string(data), 20))
	})
}

func tailLines(s string, n int) string {
	lines := []rune(s)
	count := 0
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] == '\n' {
			count++
			if count > n {
				return string(lines[i+1:])
			}
		}
	}
	return s
}
