package reconciler_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// faultProxy stands between an operator and the real API server and, while
// told to, answers the requests whose path contains a marker as an API
// server that lost etcd does: 503 with a Status body. No Retry-After:
// client-go would wait and retry those itself, hiding the hiccup.
type faultProxy struct {
	srv    *httptest.Server
	mu     sync.Mutex
	marker string
	until  time.Time
	failed atomic.Int64
}

func newFaultProxy(t *testing.T) *faultProxy {
	t.Helper()
	target, err := url.Parse(cluster.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	ca := x509.NewCertPool()
	caPEM := cluster.Config.CAData
	if len(caPEM) == 0 {
		if caPEM, err = os.ReadFile(cluster.Config.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	ca.AppendCertsFromPEM(caPEM)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca}, ForceAttemptHTTP2: true}
	rp.FlushInterval = -1 // watches stream
	p := &faultProxy{}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.failing(r.URL.Path) {
			p.failed.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server is currently unable to handle the request","reason":"ServiceUnavailable","code":503}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.srv.EnableHTTP2 = true
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

func (p *faultProxy) failing(path string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.marker != "" && time.Now().Before(p.until) && strings.Contains(path, p.marker)
}

// failFor makes requests whose path contains marker fail for d.
func (p *faultProxy) failFor(marker string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.marker, p.until = marker, time.Now().Add(d)
}

// kubeconfig is the operator's kubeconfig with the proxy as its server.
func (p *faultProxy) kubeconfig(t *testing.T) string {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(operatorKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	for _, c := range kc.Clusters {
		c.Server, c.CertificateAuthority, c.CertificateAuthorityData = p.srv.URL, "", cert
	}
	path := filepath.Join(workdir, "operator-via-fault-proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// An API server that cannot answer for a while (etcd leader change,
// overload) says nothing about a store: a Ready store stays Ready, counts no
// failed attempt, and heals drift as soon as the API server is back.
func TestAPIServerHiccupsDoNotFailAReadyStore(t *testing.T) {
	suite(t)
	const name = "hiccup-shop"
	proxy := newFaultProxy(t)
	operator.stop()
	hiccup, err := startOperator("hiccup", "--kubeconfig", proxy.kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		hiccup.stop()
		if operator, err = startOperator("primary"); err != nil {
			t.Errorf("restart the primary operator: %v", err)
		}
		deleteStore(t, name)
	}()
	createStore(t, newStore(name))
	waitPhase(t, name, v1alpha1.PhaseReady, 90*time.Second)

	// Every request about the store's namespace fails for 12 s, and a
	// Deployment is deleted meanwhile: the repair meets the hiccup (an idle
	// check reads only the cache and would not), and with the controller's
	// backoff (1 s, 2 s, 4 s ...) that is more failed repairs than the
	// suite's three attempts before Failed.
	key := client.ObjectKey{Namespace: "store-" + name, Name: "medusa-backend"}
	window := 12 * time.Second
	proxy.failFor("namespaces/store-"+name, window)
	recreated := deleteDeployment(t, key)
	for end := time.Now().Add(window + 2*time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		s := getStore(t, name)
		if s.Status.Phase == v1alpha1.PhaseFailed || s.Status.Failures > 0 {
			t.Fatalf("API server hiccups made the store %s (%d failed attempts): %s", s.Status.Phase, s.Status.Failures, condition(s, v1alpha1.ReadyCondition).Message)
		}
	}
	if n := proxy.failed.Load(); n < 3 {
		t.Fatalf("only %d requests met the fault; the test exercised fewer hiccups than the retry limit", n)
	}
	if !strings.Contains(hiccup.log(), "API server unavailable; retrying without counting an attempt") {
		t.Errorf("the operator did not say why it retried:\n%s", hiccup.logTail(20))
	}

	// Drift healing goes on: the deleted Deployment comes back once the
	// API server answers.
	recreated(30 * time.Second)
	waitPhase(t, name, v1alpha1.PhaseReady, 30*time.Second)
}
