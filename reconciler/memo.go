package reconciler

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// versionMemo remembers, per store, a value found from objects the cache
// holds as metadata only, with the digest of those objects' versions it was
// found at: while the digest is the same, the objects are the ones read and
// the value still holds, so an idle store's check reads nothing live.
type versionMemo[T any] struct {
	mu    sync.Mutex
	found map[types.UID]versioned[T]
}

type versioned[T any] struct {
	versions uint64
	value    T
}

// get is the store's value if it was found at these versions.
func (m *versionMemo[T]) get(uid types.UID, versions uint64) (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.found[uid]
	return f.value, ok && f.versions == versions
}

func (m *versionMemo[T]) put(uid types.UID, versions uint64, value T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.found == nil {
		m.found = map[types.UID]versioned[T]{}
	}
	m.found[uid] = versioned[T]{versions: versions, value: value}
}

// forget drops a store's (the store is gone).
func (m *versionMemo[T]) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.found, uid)
}
