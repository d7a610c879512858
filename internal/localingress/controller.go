package localingress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options configure a Controller.
type Options struct {
	// Class is the name of the IngressClass whose Ingresses are served.
	Class string
	// StatusIP is the address published in the served Ingresses' status:
	// where clients reach them (on the local cluster, a loopback relay).
	StatusIP string
	// Log receives one line per request and per routing change.
	Log io.Writer
}

// Controller keeps a routing table from the cluster's Ingresses and proxies
// each request to the Service it routes to (its cluster IP, so kube-proxy
// balances over the ready endpoints as for any in-cluster client).
type Controller struct {
	opts   Options
	cache  cache.Cache
	client client.Client
	table  atomic.Pointer[table]
	ready  atomic.Bool
	proxy  *httputil.ReverseProxy
	// resolve is a backend's address (host:port).
	resolve func(context.Context, backend) (string, error)
	changed chan struct{}
}

type targetKey struct{}

// New prepares a controller on the cluster of cfg; Run starts it.
func New(cfg *rest.Config, opts Options) (*Controller, error) {
	if opts.Class == "" {
		return nil, errors.New("localingress: an ingress class is required")
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		// Only what routing reads: the rules and the Services' ports.
		&networkingv1.Ingress{}: {Transform: cache.TransformStripManagedFields()},
		&corev1.Service{}:       {Transform: cache.TransformStripManagedFields()},
	}})
	if err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	c := newController(opts)
	c.cache, c.client = ca, cl
	c.resolve = c.serviceAddress
	return c, nil
}

func newController(opts Options) *Controller {
	c := &Controller{opts: opts, changed: make(chan struct{}, 1)}
	c.table.Store(newTable(nil, opts.Class))
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// In-cluster traffic never goes through the host's egress proxy.
	transport.Proxy = nil
	transport.ResponseHeaderTimeout = 5 * time.Minute
	c.proxy = &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: pr.In.Context().Value(targetKey{}).(string)})
			// The backend sees the host the client asked for, and the
			// X-Forwarded-* headers say how it was reached.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		// Server-sent events and streamed bodies pass at once.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "502 bad gateway: "+err.Error(), http.StatusBadGateway)
		},
	}
	return c
}

// Run watches Ingresses until ctx ends, rebuilding the routing table on
// every change and publishing StatusIP in the served ones' status.
func (c *Controller) Run(ctx context.Context) error {
	inf, err := c.cache.GetInformer(ctx, &networkingv1.Ingress{})
	if err != nil {
		return err
	}
	kick := func() {
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { kick() }, UpdateFunc: func(any, any) { kick() }, DeleteFunc: func(any) { kick() },
	}); err != nil {
		return err
	}
	// Services are read per request, from the same cache.
	if _, err := c.cache.GetInformer(ctx, &corev1.Service{}); err != nil {
		return err
	}
	cacheDone := make(chan error, 1)
	go func() { cacheDone <- c.cache.Start(ctx) }()
	if !c.cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("localingress: the cache did not sync: %w", errors.Join(ctx.Err(), <-cacheDone))
	}
	kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-cacheDone:
			return err
		case <-c.changed:
			if err := c.rebuild(ctx); err != nil {
				fmt.Fprintf(c.opts.Log, "localingress: %v\n", err)
			}
			c.ready.Store(true)
		}
	}
}

// rebuild replaces the routing table and brings the served Ingresses'
// status up to date.
func (c *Controller) rebuild(ctx context.Context) error {
	var list networkingv1.IngressList
	if err := c.cache.List(ctx, &list); err != nil {
		return err
	}
	c.table.Store(newTable(list.Items, c.opts.Class))
	var errs []error
	for i := range list.Items {
		ing := &list.Items[i]
		if !served(ing, c.opts.Class) || c.opts.StatusIP == "" {
			continue
		}
		want := []networkingv1.IngressLoadBalancerIngress{{IP: c.opts.StatusIP}}
		if slices.EqualFunc(ing.Status.LoadBalancer.Ingress, want, func(a, b networkingv1.IngressLoadBalancerIngress) bool {
			return a.IP == b.IP && a.Hostname == b.Hostname
		}) {
			continue
		}
		orig := ing.DeepCopy()
		ing.Status.LoadBalancer.Ingress = want
		if err := c.client.Status().Patch(ctx, ing, client.MergeFrom(orig)); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("status of Ingress %s/%s: %w", ing.Namespace, ing.Name, err))
			continue
		}
		fmt.Fprintf(c.opts.Log, "localingress: serving Ingress %s/%s at %s\n", ing.Namespace, ing.Name, c.opts.StatusIP)
	}
	return errors.Join(errs...)
}

// serviceAddress is the cluster IP and port of a backend's Service.
func (c *Controller) serviceAddress(ctx context.Context, b backend) (string, error) {
	var svc corev1.Service
	if err := c.cache.Get(ctx, client.ObjectKey{Namespace: b.namespace, Name: b.service}, &svc); err != nil {
		return "", fmt.Errorf("service %s/%s: %w", b.namespace, b.service, err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", fmt.Errorf("service %s/%s has no cluster IP", b.namespace, b.service)
	}
	port := b.port.Number
	if b.port.Name != "" {
		port = 0
		for _, p := range svc.Spec.Ports {
			if p.Name == b.port.Name {
				port = p.Port
			}
		}
		if port == 0 {
			return "", fmt.Errorf("service %s/%s has no port named %q", b.namespace, b.service, b.port.Name)
		}
	}
	return net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port))), nil
}

// Ready says whether the routing table reflects the cluster (the cache has
// synced and the table was built from it).
func (c *Controller) Ready() bool { return c.ready.Load() }

// ServeHTTP routes a request by its host and path and proxies it.
func (c *Controller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	rec := &statusRecorder{ResponseWriter: w}
	target := "-"
	defer func() {
		fmt.Fprintf(c.opts.Log, "%s %s %s%s → %s %d %s\n", r.RemoteAddr, r.Method, host, r.URL.Path, target, rec.status(), time.Since(start).Round(time.Millisecond))
	}()
	rt, ok := c.table.Load().lookup(host, r.URL.Path)
	if !ok {
		http.Error(rec, fmt.Sprintf("404 page not found: no Ingress of class %s routes %s%s", c.opts.Class, host, r.URL.Path), http.StatusNotFound)
		return
	}
	addr, err := c.resolve(r.Context(), rt.backend)
	if err != nil {
		target = rt.ingress
		http.Error(rec, "503 service unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	target = rt.backend.namespace + "/" + rt.backend.service + " " + addr
	c.proxy.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), targetKey{}, addr)))
}

// statusRecorder remembers the status of a response for the access log;
// Unwrap lets the proxy flush and hijack (upgrades) through it.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}
