package reconciler

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// releaseMemo keeps the last release read from (or written to) Helm's
// storage for each store, and tells from a metadata-only cache of Helm's
// release Secrets whether it is still the latest: a store's periodic check
// then reads no Secret and decodes no release. Reading the release history
// was a LIST of the store's release Secrets per pass (their payloads are the
// gzipped chart and manifest of every kept revision).
type releaseMemo struct {
	secrets client.Reader // PartialObjectMetadata of Secrets labelled owner=helm
	// stored reads a revision's manifest from Helm's storage, for a
	// memorised release whose manifest is asked for.
	stored  func(ctx context.Context, namespace, name string, revision int) (string, error)
	mu      sync.Mutex
	entries map[string]memoEntry // namespace/name
}

type memoEntry struct {
	// version is the release revision; resourceVersion that of its Secret
	// when read from the storage ("" when this operator just wrote it and
	// the cache has not shown it yet).
	version         int
	resourceVersion string
	// state is kept without its manifest, of which only the digest is
	// kept: a store's rendered manifest is ≈ 35 KB of YAML (≈ 3 KB gzipped,
	// which was kept until 2026-12), and a drift check reads it only when
	// something changed (ReleaseState.manifest reads it then).
	state  ReleaseState
	digest [sha256.Size]byte
	// wrote is when this operator wrote the revision: until the cache
	// shows it, the memo is trusted for cacheLag only (after that, a
	// revision the cache never shows was removed, e.g. helm uninstall).
	wrote time.Time
}

// cacheLag is how long a revision this operator wrote may be missing from
// the cache before the memo stops vouching for it.
const cacheLag = 30 * time.Second

// secretGVK is what the memo's cache holds: Secrets as metadata only.
var secretGVK = schema.GroupVersionKind{Version: "v1", Kind: "Secret"}

// newReleaseMemo makes the memo and the cache it reads (to be started with
// the manager).
func newReleaseMemo(cfg *rest.Config, opts cache.Options) (*releaseMemo, cache.Cache, error) {
	opts.ByObject = map[client.Object]cache.ByObject{metadataObject(secretGVK): {
		Label:     labels.SelectorFromSet(labels.Set{"owner": "helm"}),
		Transform: sharingStrings(cache.TransformStripManagedFields()),
	}}
	c, err := cache.New(cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	return &releaseMemo{secrets: c, entries: map[string]memoEntry{}}, c, nil
}

// latest is the newest revision of a release and its Secret's
// resourceVersion as the cache has them (0 when it has none).
func (m *releaseMemo) latest(ctx context.Context, namespace, name string) (int, string, error) {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(secretGVK.GroupVersion().WithKind("SecretList"))
	if err := m.secrets.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels{"owner": "helm", "name": name}); err != nil {
		return 0, "", err
	}
	version, rv := 0, ""
	for _, s := range list.Items {
		if v, err := strconv.Atoi(s.Labels["version"]); err == nil && v > version {
			version, rv = v, s.ResourceVersion
		}
	}
	return version, rv, nil
}

// get returns the memorised release when the cache shows no newer one.
// The caller reads the storage when ok is false, and then calls put with
// the revision and resourceVersion latest returned.
func (m *releaseMemo) get(ctx context.Context, namespace, name string) (state ReleaseState, version int, rv string, ok bool, err error) {
	if m == nil {
		return ReleaseState{}, 0, "", false, nil
	}
	version, rv, err = m.latest(ctx, namespace, name)
	if err != nil {
		return ReleaseState{}, 0, "", false, err
	}
	key := namespace + "/" + name
	m.mu.Lock()
	e, found := m.entries[key]
	hit := false
	switch {
	case !found:
	case e.version > version:
		// This operator wrote a newer revision than the cache has seen
		// yet — for a while; one the cache never shows, or no longer shows,
		// was removed.
		hit = e.resourceVersion == "" && time.Since(e.wrote) < cacheLag
	case e.version == version && e.resourceVersion == "":
		// The cache now shows what this operator wrote: remember its
		// Secret, so a later change by anyone else is noticed.
		e.resourceVersion = rv
		m.entries[key] = e
		hit = true
	case e.version == version:
		// A different Secret: someone else (helm rollback,
		// helm-controller) wrote the release.
		hit = e.resourceVersion == rv
	}
	m.mu.Unlock()
	if !hit {
		return ReleaseState{}, version, rv, false, nil
	}
	return m.release(namespace, name, e), version, rv, true, nil
}

// put memorises a release read from the storage, when the cache showed the
// same revision before the read. A read of a revision the cache had not
// shown yet is not kept: its Secret may still change (helm-controller marks
// a release deployed in place), and only a revision this operator wrote is
// known to be final.
func (m *releaseMemo) put(namespace, name string, cachedVersion int, cachedRV string, state ReleaseState) {
	if m == nil {
		return
	}
	if state.Revision != cachedVersion {
		m.forget(namespace, name)
		return
	}
	e := newMemoEntry(state)
	e.resourceVersion = cachedRV
	m.mu.Lock()
	m.entries[namespace+"/"+name] = e
	m.mu.Unlock()
}

// wrote memorises a release this operator just installed or upgraded.
func (m *releaseMemo) wrote(namespace, name string, state ReleaseState) {
	if m == nil {
		return
	}
	m.mu.Lock()
	e := newMemoEntry(state)
	e.wrote = time.Now()
	m.entries[namespace+"/"+name] = e
	m.mu.Unlock()
}

// forget drops a release (uninstalled, or its storage is in doubt).
func (m *releaseMemo) forget(namespace, name string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.entries, namespace+"/"+name)
	m.mu.Unlock()
}

// newMemoEntry keeps what a later observation of the same revision
// reports (an install's or upgrade's action is not repeated), and of the
// manifest its digest.
func newMemoEntry(s ReleaseState) memoEntry {
	digest := s.manifestDigest()
	s.Action, s.Events = "", nil
	s.Manifest, s.storedManifest = "", nil
	return memoEntry{version: s.Revision, state: s, digest: digest}
}

// release is the memorised release, its manifest read from Helm's storage
// when asked for.
func (m *releaseMemo) release(namespace, name string, e memoEntry) ReleaseState {
	s := e.state
	s.digest = e.digest
	s.storedManifest = func(ctx context.Context) (string, error) {
		manifest, err := m.stored(ctx, namespace, name, e.version)
		if err != nil {
			return "", fmt.Errorf("read release %s revision %d: %w", name, e.version, err)
		}
		if sha256.Sum256([]byte(manifest)) != e.digest {
			// Someone rewrote the revision in place: read the release
			// afresh at the next pass.
			m.forget(namespace, name)
		}
		return manifest, nil
	}
	return s
}
