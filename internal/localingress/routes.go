// Package localingress is the local cluster's ingress controller: it serves
// the Ingress objects of one IngressClass on a port, proxying each request to
// the Service its host and path route to, and publishes the address it
// answers on in their status. The real node runs it as a pod, so the store
// chart's NetworkPolicies see a pod-network client as in any cluster. It is a
// local test component built from this repository (a fraction of the build
// of a general-purpose proxy) and never part of what storefleet ships; on a
// real cluster the platform's own ingress controller serves the same objects.
package localingress

import (
	"cmp"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// backend is where a route sends a request: a Service port in the
// Ingress's namespace.
type backend struct {
	namespace, service string
	port               networkingv1.ServiceBackendPort
}

// route is one path of one rule of an Ingress.
type route struct {
	// host is exact, "*.<domain>" (one label) or "" (every host).
	host    string
	path    string
	exact   bool
	backend backend
	ingress string // namespace/name, for the access log
}

// table is the routes of every Ingress served, looked up per request.
type table struct {
	exact    map[string][]route
	wildcard []route
	anyHost  []route
}

// newTable builds the routing table of the Ingresses of class (by
// spec.ingressClassName or the older kubernetes.io/ingress.class
// annotation). Rules without HTTP paths and paths without a Service backend
// route nothing; the Ingress's default backend serves what no rule matches.
func newTable(ingresses []networkingv1.Ingress, class string) *table {
	t := &table{exact: map[string][]route{}}
	for _, ing := range ingresses {
		if !served(&ing, class) {
			continue
		}
		id := ing.Namespace + "/" + ing.Name
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				if p.Backend.Service == nil {
					continue
				}
				path := p.Path
				if path == "" {
					path = "/"
				}
				r := route{
					host: strings.ToLower(rule.Host), path: path,
					exact:   p.PathType != nil && *p.PathType == networkingv1.PathTypeExact,
					backend: backend{ing.Namespace, p.Backend.Service.Name, p.Backend.Service.Port},
					ingress: id,
				}
				t.add(r)
			}
		}
		if d := ing.Spec.DefaultBackend; d != nil && d.Service != nil {
			t.add(route{path: "/", backend: backend{ing.Namespace, d.Service.Name, d.Service.Port}, ingress: id})
		}
	}
	// Longest path first, an Exact path before a Prefix of the same length,
	// then by Ingress name so that overlapping Ingresses route the same way
	// on every rebuild.
	order := func(a, b route) int {
		if c := cmp.Compare(len(b.path), len(a.path)); c != 0 {
			return c
		}
		if a.exact != b.exact {
			if a.exact {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.ingress, b.ingress)
	}
	for h := range t.exact {
		slices.SortStableFunc(t.exact[h], order)
	}
	slices.SortStableFunc(t.wildcard, order)
	slices.SortStableFunc(t.anyHost, order)
	return t
}

func (t *table) add(r route) {
	switch {
	case r.host == "":
		t.anyHost = append(t.anyHost, r)
	case strings.HasPrefix(r.host, "*."):
		t.wildcard = append(t.wildcard, r)
	default:
		t.exact[r.host] = append(t.exact[r.host], r)
	}
}

// served says whether ing is of class.
func served(ing *networkingv1.Ingress, class string) bool {
	if ing.Spec.IngressClassName != nil {
		return *ing.Spec.IngressClassName == class
	}
	return ing.Annotations["kubernetes.io/ingress.class"] == class
}

// lookup finds the route of a request: the rules of its exact host, then of
// a matching wildcard host, then those for every host — the first of them
// whose path matches, the longest path winning.
func (t *table) lookup(host, path string) (route, bool) {
	host = strings.ToLower(host)
	if r, ok := firstMatch(t.exact[host], path); ok {
		return r, true
	}
	var wild []route
	for _, r := range t.wildcard {
		if wildcardMatch(r.host, host) {
			wild = append(wild, r)
		}
	}
	if r, ok := firstMatch(wild, path); ok {
		return r, true
	}
	return firstMatch(t.anyHost, path)
}

func firstMatch(routes []route, path string) (route, bool) {
	for _, r := range routes {
		if pathMatch(r, path) {
			return r, true
		}
	}
	return route{}, false
}

// wildcardMatch: "*.example.com" matches "shop.example.com" but neither
// "example.com" nor "a.shop.example.com" (the wildcard is one DNS label).
func wildcardMatch(pattern, host string) bool {
	suffix := pattern[1:] // ".example.com"
	label, ok := strings.CutSuffix(host, suffix)
	return ok && label != "" && !strings.Contains(label, ".")
}

// pathMatch follows the Ingress API: an Exact path matches itself only; a
// Prefix path (and ImplementationSpecific, here) matches element by element,
// so /app matches /app, /app/ and /app/x, but not /apple.
func pathMatch(r route, path string) bool {
	if r.exact {
		return path == r.path
	}
	prefix := strings.TrimSuffix(r.path, "/")
	if prefix == "" {
		return true
	}
	rest, ok := strings.CutPrefix(path, prefix)
	return ok && (rest == "" || rest[0] == '/')
}
