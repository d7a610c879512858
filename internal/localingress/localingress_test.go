package localingress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func ingress(ns, name, class string, rules ...networkingv1.IngressRule) networkingv1.Ingress {
	return networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(class), Rules: rules}}
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
}

func path(p string, t networkingv1.PathType, svc string, port networkingv1.ServiceBackendPort) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: ptr.To(t), Backend: networkingv1.IngressBackend{
		Service: &networkingv1.IngressServiceBackend{Name: svc, Port: port}}}
}

var http80 = networkingv1.ServiceBackendPort{Name: "http"}

// The store chart's Ingress: the Medusa server under its prefixes, the
// storefront for the rest; and the Ingress API's matching rules around it.
func TestRoutesFollowTheIngressAPI(t *testing.T) {
	prefix, exact, impl := networkingv1.PathTypePrefix, networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific
	var backendPaths []networkingv1.HTTPIngressPath
	for _, p := range []string{"/app", "/admin", "/store", "/auth", "/hooks", "/health", "/static"} {
		backendPaths = append(backendPaths, path(p, prefix, "medusa-backend", http80))
	}
	tbl := newTable([]networkingv1.Ingress{
		ingress("store-shop", "store", "local", rule("shop.localhost", append(backendPaths, path("/", prefix, "storefront", http80))...)),
		ingress("other", "exact", "local", rule("shop.localhost", path("/app/exact", exact, "exact", http80))),
		ingress("wild", "w", "local", rule("*.example.test", path("/", impl, "wild", http80))),
		ingress("any", "catchall", "local", rule("", path("/only", prefix, "anyhost", http80))),
		ingress("elsewhere", "foreign", "traefik", rule("shop.localhost", path("/", prefix, "foreign", http80))),
		{ObjectMeta: metav1.ObjectMeta{Namespace: "legacy", Name: "annotated", Annotations: map[string]string{"kubernetes.io/ingress.class": "local"}},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("old.localhost", path("/", prefix, "legacy", http80))}}},
	}, "local")
	for _, c := range []struct{ host, path, want string }{
		{"shop.localhost", "/", "storefront"},
		{"Shop.Localhost", "/products/shirt", "storefront"},
		{"shop.localhost", "/app", "medusa-backend"},
		{"shop.localhost", "/app/login", "medusa-backend"},
		{"shop.localhost", "/apple", "storefront"},
		{"shop.localhost", "/store/products", "medusa-backend"},
		{"shop.localhost", "/static/1.png", "medusa-backend"},
		{"shop.localhost", "/app/exact", "exact"},
		{"shop.localhost", "/app/exact/x", "medusa-backend"},
		{"a.example.test", "/x", "wild"},
		{"a.b.example.test", "/only", "anyhost"},
		{"example.test", "/only", "anyhost"},
		{"nobody.localhost", "/only/x", "anyhost"},
		{"nobody.localhost", "/", ""},
		{"old.localhost", "/", "legacy"},
	} {
		r, ok := tbl.lookup(c.host, c.path)
		got := ""
		if ok {
			got = r.backend.service
		}
		if got != c.want {
			t.Errorf("%s%s routed to %q, want %q", c.host, c.path, got, c.want)
		}
	}
}

// A request reaches the Service its route names with the client's host and
// the forwarding headers; server-sent events stream through; what no route
// matches is a 404 that says so, and a Service that is gone a 503.
func TestProxyRoutesByHostAndStreams(t *testing.T) {
	storefront := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "storefront host=%s xfh=%s xfp=%s xff=%t", r.Host, r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-For") != "")
	}))
	defer storefront.Close()
	events := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // holds the stream open: only flushing gets the event out
	}))
	defer events.Close()
	addrs := map[string]string{"storefront": storefront.Listener.Addr().String(), "events": events.Listener.Addr().String()}
	log := &lockedLog{}
	c := newController(Options{Class: "local", Log: log})
	c.resolve = func(_ context.Context, b backend) (string, error) {
		if a, ok := addrs[b.service]; ok {
			return a, nil
		}
		return "", fmt.Errorf("service %s/%s: not found", b.namespace, b.service)
	}
	prefix := networkingv1.PathTypePrefix
	c.table.Store(newTable([]networkingv1.Ingress{ingress("store-shop", "store", "local", rule("shop.localhost",
		path("/events", prefix, "events", http80), path("/gone", prefix, "deleted", http80), path("/", prefix, "storefront", http80)))}, "local"))
	srv := httptest.NewServer(c)
	defer srv.Close()

	get := func(host, p string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	if resp, body := get("shop.localhost:8080", "/products"); resp.StatusCode != http.StatusOK || body != "storefront host=shop.localhost:8080 xfh=shop.localhost:8080 xfp=http xff=true" {
		t.Errorf("storefront: %d %q", resp.StatusCode, body)
	}
	if resp, body := get("stranger.localhost", "/"); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no Ingress of class local routes stranger.localhost/") {
		t.Errorf("unrouted host: %d %q", resp.StatusCode, body)
	}
	if resp, body := get("shop.localhost", "/gone"); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "store-shop/deleted") {
		t.Errorf("missing service: %d %q", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	req.Host = "shop.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close()
	if err != nil || line != "data: first\n" {
		t.Errorf("the event stream did not stream: %q %v", line, err)
	}
	cancel()
	if !strings.Contains(log.String(), "GET shop.localhost/products → store-shop/storefront ") {
		t.Errorf("access log misses the routed request:\n%s", log.String())
	}
}

// lockedLog is the access log, written from the server's goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
