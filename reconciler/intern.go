package reconciler

import (
	"hash"
	"hash/fnv"
	"maps"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
)

// stringPool shares one copy of each string that repeats across the
// operator's cached objects. A store's 39 cached objects carry the same
// label and annotation keys and mostly the same values (the chart, the
// release, the store, "Helm"), the same namespace, and names that repeat in
// every store's namespace; the watch decoder allocates each of them anew for
// every object and every update. Object metadata was the largest part of the
// operator's memory per store (47 of 205 MB sampled in use at 1000 stores).
//
// The pool holds its strings strongly (a weak pool would forget a string as
// soon as the decoded object that brought it is collected, and the next
// update would bring a new copy) and is bounded: once full it starts afresh,
// the strings already shared stay shared, and what a deleted store left in
// the old pool goes with it.
//
// Whole label and annotation maps are shared the same way: the objects of a
// store repeat a few sets (every release object carries the same two Helm
// annotations; the seven NetworkPolicies, and a component's Service and
// workload, the same labels), and each map costs a few hundred bytes however
// few its entries. A cached object is never written (client-go's rule: its
// readers get copies), so objects may share one.
type stringPool struct {
	mu      sync.RWMutex
	strings map[string]string
	// sets are shared maps by the hash of their contents; two sets of one
	// hash are compared in full, and the later is not shared.
	sets map[uint64]map[string]string
	max  int
}

// Strings longer than this are not worth a map entry: annotations holding
// documents, generated names.
const maxPooledLen = 64

// defaultPoolSize holds the distinct strings of some thousands of stores.
const defaultPoolSize = 1 << 16

var cachedStrings = newStringPool(defaultPoolSize)

func newStringPool(max int) *stringPool {
	return &stringPool{strings: make(map[string]string), sets: make(map[uint64]map[string]string), max: max}
}

// setHash digests a map's contents, whatever their order.
func setHash(m map[string]string) uint64 {
	h := fnv.New64a()
	writeSorted(h, m)
	return h.Sum64()
}

// writeSorted writes a map's entries to h in key order, each key and value
// followed by a zero byte.
func writeSorted(h hash.Hash, m map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		_, _ = h.Write([]byte(k))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(m[k]))
		_, _ = h.Write([]byte{0})
	}
}

// sharedSet is the pool's map equal to m, or m itself (its strings shared)
// when the pool had none; m is a freshly decoded object's map, written by
// no one else. A set whose hash another set holds is not shared.
func (p *stringPool) sharedSet(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	h := setHash(m)
	p.mu.RLock()
	s, taken := p.sets[h]
	p.mu.RUnlock()
	if taken && maps.Equal(s, m) {
		return s
	}
	m = p.sharedMap(m)
	if taken {
		return m
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, taken := p.sets[h]; taken {
		if maps.Equal(s, m) {
			return s
		}
		return m
	}
	if len(p.sets) >= p.max {
		p.sets = make(map[uint64]map[string]string, p.max/4)
	}
	p.sets[h] = m
	return m
}

// shared is the pool's copy of s.
func (p *stringPool) shared(s string) string {
	if s == "" || len(s) > maxPooledLen {
		return s
	}
	p.mu.RLock()
	c, ok := p.strings[s]
	p.mu.RUnlock()
	if ok {
		return c
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.strings[s]; ok {
		return c
	}
	if len(p.strings) >= p.max {
		p.strings = make(map[string]string, p.max/4)
	}
	p.strings[s] = s
	return s
}

// sharedMap replaces the keys and values of m with the pool's copies, in
// place: assigning to a key already present stores the key given too (Go
// updates string keys), so no second map is made.
func (p *stringPool) sharedMap(m map[string]string) map[string]string {
	for k, v := range m {
		m[p.shared(k)] = p.shared(v)
	}
	return m
}

// shareMetadata points an object's metadata strings at the pool's copies.
// It changes no value.
func (p *stringPool) shareMetadata(o any) {
	obj, err := meta.Accessor(o)
	if err != nil {
		return
	}
	obj.SetNamespace(p.shared(obj.GetNamespace()))
	if obj.GetGenerateName() == "" {
		obj.SetName(p.shared(obj.GetName()))
	}
	obj.SetLabels(p.sharedSet(obj.GetLabels()))
	obj.SetAnnotations(p.sharedSet(obj.GetAnnotations()))
	if refs := obj.GetOwnerReferences(); len(refs) > 0 {
		for i := range refs {
			refs[i].APIVersion, refs[i].Kind, refs[i].Name = p.shared(refs[i].APIVersion), p.shared(refs[i].Kind), p.shared(refs[i].Name)
		}
		obj.SetOwnerReferences(refs)
	}
	if fin := obj.GetFinalizers(); len(fin) > 0 {
		for i := range fin {
			fin[i] = p.shared(fin[i])
		}
		obj.SetFinalizers(fin)
	}
}

// sharingStrings runs a cache transform and then shares the result's
// metadata strings through the operator's pool.
func sharingStrings(t toolscache.TransformFunc) toolscache.TransformFunc {
	return func(o any) (any, error) {
		out, err := t(o)
		if err != nil {
			return out, err
		}
		cachedStrings.shareMetadata(out)
		return out, nil
	}
}
