package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"

	corev1 "k8s.io/api/core/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// CredentialsSecret is the name of the per-store Secret the chart reads its
// passwords and signing secrets from.
const CredentialsSecret = "store-credentials"

// Platform is what the operator knows about its environment: the storeValues
// of clusters/<env>/platform/platform-values.yaml and the defaults a Store
// may leave empty.
type Platform struct {
	// Domain is used when a Store has no spec.domain.
	Domain string
	// AllowedDomains are the domains a Store's spec.domain may name; empty
	// means only Domain.
	AllowedDomains []string
	// EnvironmentValues are chart values of the environment (storage class,
	// ingress, TLS, images); the Store's own values are merged over them.
	EnvironmentValues map[string]any
}

// ChartValues builds the chart values of a store: environment values first,
// then what the Store decides (name, owner, domain, plan sizing, overrides).
// Both delivery strategies use exactly this function, and the credentials are
// passed by Secret name only, never by value.
func ChartValues(s *v1alpha1.Store, p Platform) map[string]any {
	vals := deepCopyMap(p.EnvironmentValues)
	plan := planFor(s)
	set(vals, map[string]any{"name": s.Name, "owner": s.Spec.Owner, "domain": storeDomain(s, p)}, "store")
	set(vals, map[string]any{"existingSecret": CredentialsSecret}, "credentials")
	set(vals, map[string]any{"existingSecret": v1alpha1.AdminInviteSecret}, "adminInvite")
	set(vals, plan.DatabaseStorage.String(), "database", "size")
	set(vals, resources(plan.Database), "database", "resources")
	for name, c := range map[string]componentSize{"backend": plan.Backend, "worker": plan.Worker, "storefront": plan.Storefront} {
		set(vals, int64(c.Replicas), name, "replicas")
		set(vals, resources(c), name, "resources")
	}
	return vals
}

// Allowed is the allow-list of store domains: AllowedDomains, or Domain alone.
func (p Platform) Allowed() []string {
	if len(p.AllowedDomains) > 0 {
		return p.AllowedDomains
	}
	return []string{p.Domain}
}

// storeDomain is the store's own domain, or the platform's default.
func storeDomain(s *v1alpha1.Store, p Platform) string {
	if s.Spec.Domain != "" {
		return s.Spec.Domain
	}
	return p.Domain
}

func resources(c componentSize) map[string]any {
	list := func(l corev1.ResourceList) map[string]any {
		out := map[string]any{}
		for k, v := range l {
			out[string(k)] = v.String()
		}
		return out
	}
	return map[string]any{"requests": list(c.Requests), "limits": list(c.Limits)}
}

// set puts v at the nested path, creating maps on the way.
func set(m map[string]any, v any, path ...string) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	last := path[len(path)-1]
	if vm, ok := v.(map[string]any); ok {
		if existing, ok := m[last].(map[string]any); ok {
			maps.Copy(existing, vm)
			return
		}
	}
	m[last] = v
}

func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if vm, ok := v.(map[string]any); ok {
			out[k] = deepCopyMap(vm)
			continue
		}
		out[k] = v
	}
	return out
}

// valuesDigest identifies the desired release: the chart version and values.
// It is hex only, so it can be a Helm release label.
// An upgrade happens only when it changes (or drift is found).
func valuesDigest(chartVersion string, vals map[string]any) string {
	data, _ := json.Marshal(vals) // map keys are sorted, so the encoding is stable
	h := sha256.New()
	h.Write([]byte(chartVersion))
	h.Write([]byte{0})
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))[:32]
}
