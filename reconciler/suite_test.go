package reconciler_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/manifests"
	"github.com/storefleet/storefleet/test/testenv"
)

// shared is the package's cluster, started by the first cluster test: the
// pure tests of the package (internal test files) run without one.
var shared testenv.SharedCluster

var (
	// cluster, binary, operatorKubeconfig, operator and workdir are set
	// by suite, which every cluster test calls first.
	cluster *devcluster.Cluster
	// binary is the storefleet binary built for this suite.
	binary string
	// operatorKubeconfig authenticates as a ServiceAccount bound only to
	// the generated ClusterRole, so every test also proves the RBAC suffices.
	operatorKubeconfig string
	// operator is the operator process the tests share.
	operator *operatorProcess
	workdir  string

	setUp    sync.Once
	setUpErr error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := tearDown(code); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// suite starts the package's cluster and the operator the cluster tests
// share, on its first call. A cluster test calls it first; when the cluster
// or the operator cannot start, the test fails (never skips).
func suite(t testing.TB) {
	t.Helper()
	c := shared.Get(t)
	setUp.Do(func() { setUpErr = startOperatorSuite(c) })
	if setUpErr != nil {
		t.Fatalf("set up the operator suite: %v", setUpErr)
	}
}

// startOperatorSuite builds the storefleet binary, creates the operator's
// least-privilege identity on c and starts the primary operator.
func startOperatorSuite(c *devcluster.Cluster) error {
	cluster = c
	var err error
	if workdir, err = os.MkdirTemp("", "storefleet-operator-test-"); err != nil {
		return err
	}
	if binary, err = testenv.BuildStorefleet("..", workdir); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if operatorKubeconfig, err = leastPrivilegeKubeconfig(ctx); err != nil {
		return err
	}
	operator, err = startOperator("primary")
	return err
}

// tearDown stops the operator and the cluster, if suite started them, and
// keeps the operator logs of a failed run.
func tearDown(code int) error {
	if operator != nil {
		operator.stop()
	}
	if workdir != "" {
		if code != 0 {
			fmt.Printf("operator logs kept in %s\n", workdir)
		} else {
			os.RemoveAll(workdir)
		}
	}
	if err := shared.Stop(); err != nil {
		return fmt.Errorf("stop the local cluster: %w", err)
	}
	return nil
}

// leastPrivilegeKubeconfig creates a ServiceAccount bound to the generated
// ClusterRole (plus the Lease access of leader election) and returns a
// kubeconfig with a token for it.
func leastPrivilegeKubeconfig(ctx context.Context) (string, error) {
	data, err := os.ReadFile("rbac/role.yaml")
	if err != nil {
		return "", err
	}
	objs, err := manifests.Decode(data)
	if err != nil {
		return "", err
	}
	if err := cluster.Apply(ctx, objs...); err != nil {
		return "", err
	}
	c := cluster.Client
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "storefleet-operator"}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "storefleet-operator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "storefleet-operator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: sa.Namespace, Name: sa.Name}},
	}
	for _, o := range []client.Object{sa, binding} {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", err
		}
	}
	cs, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cluster.Config.Host, CertificateAuthorityData: cluster.Config.CAData, CertificateAuthority: cluster.Config.CAFile}
	kc.AuthInfos["operator"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["operator"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "operator"}
	kc.CurrentContext = "operator"
	path := filepath.Join(workdir, "operator.kubeconfig")
	return path, clientcmd.WriteToFile(*kc, path)
}

// operatorProcess is a `storefleet operator` child process.
type operatorProcess struct {
	name       string
	cmd        *exec.Cmd
	logPath    string
	metricsURL string
	done       chan struct{}
	// peak is the last peak RSS read, kept for after the process exits.
	peak int64
}

// startOperator runs the operator binary with test timings: drift re-checked
// every second, pods given 5 s to start, 3 attempts before Failed.
func startOperator(name string, extra ...string) (*operatorProcess, error) {
	port, err := devcluster.FreePort()
	if err != nil {
		return nil, err
	}
	p := &operatorProcess{
		name:       name,
		logPath:    filepath.Join(workdir, "operator-"+name+".log"),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", port),
		done:       make(chan struct{}),
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := append([]string{"operator",
		"--kubeconfig", operatorKubeconfig,
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--health-addr", "0",
		"--drift-interval", "1s",
		"--pod-start-timeout", "5s",
		"--max-attempts", "3",
		"--workers", "4",
	}, extra...)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); logFile.Close(); close(p.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.metricsURL); err == nil {
			resp.Body.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("operator %s exited at start:\n%s", name, p.logTail(30))
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("operator %s metrics not served within 30 s", name)
}

// stop ends the operator gracefully (it releases its Lease).
func (p *operatorProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the operator with SIGKILL, as a crash would.
func (p *operatorProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *operatorProcess) log() string {
	data, _ := os.ReadFile(p.logPath)
	return string(data)
}

func (p *operatorProcess) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// metric returns the sum of a metric's samples whose labels contain every
// given `key="value"` pair.
func (p *operatorProcess) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(p.metricsURL)
	if err != nil {
		t.Fatalf("scrape %s: %v", p.name, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// apiRequests is the API server's own count of requests of one verb for
// one resource.
func apiRequests(t *testing.T, verb, resource string) float64 {
	t.Helper()
	s, err := testenv.ScrapeAPIServer(cluster)
	if err != nil {
		t.Fatal(err)
	}
	return s.Sum("apiserver_request_total", map[string]string{"verb": verb, "resource": resource})
}

// eventually polls cond until it holds; on timeout it shows the operator's log.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	testenv.Eventually(t, timeout, what, cond, func() string { return "operator log tail:\n" + operator.logTail(20) })
}

func newStore(name string, mutate ...func(*v1alpha1.Store)) *v1alpha1.Store {
	s := &v1alpha1.Store{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: "alice@example.com", Plan: v1alpha1.PlanSmall},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func createStore(t *testing.T, s *v1alpha1.Store) *v1alpha1.Store {
	t.Helper()
	if err := cluster.Client.Create(context.Background(), s); err != nil {
		t.Fatalf("create store %s: %v", s.Name, err)
	}
	return s
}

func getStore(t *testing.T, name string) *v1alpha1.Store {
	t.Helper()
	s := &v1alpha1.Store{}
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: name}, s); err != nil {
		t.Fatalf("get store %s: %v", name, err)
	}
	return s
}

func condition(s *v1alpha1.Store, t string) *metav1.Condition {
	for i := range s.Status.Conditions {
		if s.Status.Conditions[i].Type == t {
			return &s.Status.Conditions[i]
		}
	}
	return nil
}

// waitPhase waits for a store's phase and returns the store.
func waitPhase(t *testing.T, name string, phase v1alpha1.Phase, timeout time.Duration) *v1alpha1.Store {
	t.Helper()
	var s v1alpha1.Store
	eventually(t, timeout, fmt.Sprintf("store %s phase %s", name, phase), func() (bool, error) {
		if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: name}, &s); err != nil {
			return false, err
		}
		return s.Status.Phase == phase, fmt.Errorf("phase %q, Ready: %+v", s.Status.Phase, condition(&s, v1alpha1.ReadyCondition))
	})
	return &s
}

// deleteStore deletes a store and waits until it is gone.
func deleteStore(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	if err := cluster.Client.Delete(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}}); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "store "+name+" deleted", func() (bool, error) {
		err := cluster.Client.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.Store{})
		return apierrors.IsNotFound(err), err
	})
}

// deleteDeployment deletes one of a store's Deployments, as a person or a
// broken tool would. The returned function waits up to within for the
// operator to recreate it and returns how long after the delete it came
// back; a new UID tells the recreated object from the old one still being
// removed.
func deleteDeployment(t *testing.T, key client.ObjectKey) (awaitRecreated func(within time.Duration) time.Duration) {
	t.Helper()
	ctx := context.Background()
	var d appsv1.Deployment
	if err := cluster.Client.Get(ctx, key, &d); err != nil {
		t.Fatal(err)
	}
	oldUID := d.UID
	if err := cluster.Client.Delete(ctx, &d); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	return func(within time.Duration) time.Duration {
		t.Helper()
		eventually(t, within, "deployment "+key.String()+" recreated", func() (bool, error) {
			var d appsv1.Deployment
			err := cluster.Client.Get(ctx, key, &d)
			return err == nil && d.UID != oldUID, err
		})
		return time.Since(deleted)
	}
}
