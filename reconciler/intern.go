package reconciler

import (
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
type stringPool struct {
	mu      sync.RWMutex
	strings map[string]string
	max     int
}

// Strings longer than this are not worth a map entry: annotations holding
// documents, generated names.
const maxPooledLen = 64

// defaultPoolSize holds the distinct strings of some thousands of stores.
const defaultPoolSize = 1 << 16

var cachedStrings = newStringPool(defaultPoolSize)

func newStringPool(max int) *stringPool {
	return &stringPool{strings: make(map[string]string), max: max}
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
	obj.SetLabels(p.sharedMap(obj.GetLabels()))
	obj.SetAnnotations(p.sharedMap(obj.GetAnnotations()))
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
