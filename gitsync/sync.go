package gitsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// +kubebuilder:rbac:groups=storefleet.dev,resources=stores,verbs=get;list;watch;create;update;patch;delete

const (
	// FieldManager owns the fields the Reader applies.
	FieldManager = "storefleet-gitsync"
	// SourceLabel marks the Stores a Reader applied with a digest of its
	// repository, branch and path; a Reader prunes only Stores with its own
	// value, never those of kubectl, the API or another stores repo.
	SourceLabel = "storefleet.dev/gitsync-source"
)

// Sync runs one sync and records its status.
func (r *Reader) Sync(ctx context.Context) SyncStatus {
	r.resumed.Do(func() { r.resumePruneRecord(ctx) })
	now := metav1.Now()
	st := r.Status()
	st.AttemptedAt, st.Applied, st.Pruned, st.Invalid, st.Error = &now, nil, nil, nil, ""
	if err := r.sync(ctx, &st); err != nil {
		st.Error = err.Error()
		r.metrics.syncs.WithLabelValues("error").Inc()
		r.opts.Log.Error(err, "Stores repo sync failed", "commit", st.AttemptedCommit)
	} else {
		st.Commit, st.SyncedAt = st.AttemptedCommit, &now
		r.metrics.syncs.WithLabelValues("success").Inc()
		r.metrics.lastSuccess.Set(float64(now.Unix()))
	}
	r.metrics.invalid.Set(float64(len(st.Invalid)))
	r.mu.Lock()
	r.status = st
	r.mu.Unlock()
	if err := r.publish(ctx, st); err != nil {
		r.opts.Log.Error(err, "Cannot record the sync status", "configmap", r.opts.Namespace+"/"+StatusConfigMap)
	}
	return st
}

func (r *Reader) sync(ctx context.Context, st *SyncStatus) error {
	head, err := r.clone.Fetch(ctx, r.opts.Remote.Branch)
	if err != nil {
		return err
	}
	if head.IsZero() {
		return fmt.Errorf("branch %s does not exist in the stores repo yet; nothing synced, nothing deleted", r.opts.Remote.Branch)
	}
	st.AttemptedCommit = head.String()
	files, subdirs, ok, err := r.clone.Files(head, r.opts.Remote.Path)
	if err != nil {
		return fmt.Errorf("read %s at %s: %w; nothing deleted", st.Path, short(head), err)
	}
	// Only <name>.yaml files directly in the stores directory are stores;
	// anything else there is reported, never applied (a Flux Kustomization
	// over the same path would apply every YAML file below it).
	for _, d := range subdirs {
		st.Invalid = append(st.Invalid, Problem{File: join(st.Path, d) + "/", Message: NotAStorePlace})
	}
	// Names the repo still declares, valid or not: a store whose manifest is
	// broken is not deleted because of the typo.
	declared := map[string]bool{}
	// holdsStores: the directory declares stores (a Store manifest, even a
	// broken one, or .keep). One holding only other files counts as empty,
	// so a README left behind cannot license pruning every store.
	holdsStores := false
	var manifests []*Manifest
	for _, name := range sortedKeys(files) {
		file := join(st.Path, name)
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
			if name == KeepFile {
				holdsStores = true
			} else {
				st.Invalid = append(st.Invalid, Problem{File: file, Message: NotAStorePlace})
			}
			continue
		}
		declared[strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".yml")] = true
		holdsStores = holdsStores || !otherKind(files[name])
		if len(files[name]) > maxManifestBytes {
			st.Invalid = append(st.Invalid, Problem{File: file, Message: fmt.Sprintf("file is larger than %d bytes", maxManifestBytes)})
			continue
		}
		m, problems := r.validator.File(file, files[name])
		if len(problems) > 0 {
			st.Invalid = append(st.Invalid, problems...)
			continue
		}
		manifests = append(manifests, m)
	}
	for _, p := range Duplicates(manifests) {
		st.Invalid = append(st.Invalid, p)
		manifests = slices.DeleteFunc(manifests, func(m *Manifest) bool { return m.File == p.File })
	}
	st.Stores = len(manifests)
	r.metrics.stores.Set(float64(len(manifests)))
	defer r.stamped.markKnown()

	var errs []string
	for _, m := range manifests {
		changed, err := r.apply(ctx, head, m)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", m.File, err))
			continue
		}
		if changed {
			st.Applied = append(st.Applied, m.Store.Name)
		}
	}

	// A directory that is gone, or has no file at all, is a mistake until
	// shown otherwise; one that holds only .keep means "no stores".
	pruned, err := r.prune(ctx, st, declared, ok && holdsStores, head)
	st.Pruned = pruned
	if err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// apply server-side applies one manifest as field manager storefleet-gitsync.
// It reports whether the object changed.
func (r *Reader) apply(ctx context.Context, head plumbing.Hash, m *Manifest) (bool, error) {
	obj := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(m.Object)}
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[SourceLabel] = r.source
	if owner := m.Store.Spec.Owner; owner != "" {
		labels[v1alpha1.OwnerLabel] = v1alpha1.OwnerLabelValue(owner)
	}
	obj.SetLabels(labels)
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	// Provenance is what the reader saw, never what the manifest says.
	for _, k := range v1alpha1.GitProvenanceAnnotations {
		delete(ann, k)
	}
	ann[v1alpha1.ChannelAnnotation] = string(v1alpha1.ChannelGit)
	if commit, err := r.introducedBy(head, m.File); err == nil {
		ann[v1alpha1.CommitAnnotation] = commit.String()
		if author, err := r.clone.Author(commit); err == nil {
			ann[v1alpha1.GitAuthorAnnotation] = author
		}
		// Recorded before the apply: the Reporter may see the Store change
		// before this function returns.
		r.stamped.add(m.Store.Name, commit.String())
	}
	obj.SetAnnotations(ann)

	var before v1alpha1.Store
	err := r.opts.Client.Get(ctx, client.ObjectKey{Name: m.Store.Name}, &before)
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	if err == nil && before.Labels[SourceLabel] != r.source {
		// Applying would label it ours, and so prunable once its file goes.
		return false, fmt.Errorf("store %s exists and was not created from this stores repo (it was made through %s); it is not adopted: "+
			"remove its manifest, or delete the store and let Git create it", m.Store.Name, v1alpha1.SourceOf(&before).Channel)
	}
	if err == nil && !before.DeletionTimestamp.IsZero() {
		return false, fmt.Errorf("store %s is being deleted; it is recreated from Git once gone", m.Store.Name)
	}
	digest, err := objectDigest(obj)
	if err != nil {
		return false, err
	}
	if rec, ok := r.applied[m.Store.Name]; ok && before.UID != "" && rec.unchanged(&before, digest, obj) {
		return false, nil
	}
	err = r.opts.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(FieldManager))
	if err != nil {
		if apierrors.IsConflict(err) {
			return false, fmt.Errorf("store %s exists and another manager owns the conflicting fields (created through the API or kubectl?): %s", m.Store.Name, err)
		}
		return false, fmt.Errorf("apply store %s: %s", m.Store.Name, err)
	}
	r.applied[m.Store.Name] = appliedStore{digest: digest, uid: obj.GetUID(), generation: obj.GetGeneration()}
	return before.ResourceVersion != obj.GetResourceVersion(), nil
}

// appliedStore is what the reader last applied a store as.
type appliedStore struct {
	digest     string
	uid        types.UID
	generation int64
}

// unchanged reports whether applying obj again would change nothing: the
// same manifest, labels and annotations as last applied, to the same
// Store, whose spec nobody changed since (its generation) and which still
// carries them. Applying every store on every sync made a sync's cost grow
// with the repo (one request per store per push): 500 stores took seconds.
func (a appliedStore) unchanged(live *v1alpha1.Store, digest string, obj *unstructured.Unstructured) bool {
	return a.digest == digest && a.uid == live.UID && a.generation == live.Generation &&
		contains(live.Labels, obj.GetLabels()) && contains(live.Annotations, obj.GetAnnotations())
}

func contains(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// objectDigest identifies what a manifest is applied as.
func objectDigest(obj *unstructured.Unstructured) (string, error) {
	data, err := obj.MarshalJSON()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// otherKind reports whether a YAML file is clearly an object of another
// kind than Store; a file that does not parse may be a broken Store.
func otherKind(data []byte) bool {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return false
	}
	if tm.Kind == "" {
		return false
	}
	return tm.Kind != "Store" || !strings.HasPrefix(tm.APIVersion, v1alpha1.GroupVersion.Group+"/")
}

// introducedBy is the commit that introduced file's current content,
// cached by blob so a sync does not walk history for unchanged files.
func (r *Reader) introducedBy(head plumbing.Hash, file string) (plumbing.Hash, error) {
	cm, err := r.clone.repo.CommitObject(head)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	blob, err := blobAt(cm, file)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if c, ok := r.introduced[file]; ok && c[0] == blob {
		return c[1], nil
	}
	commit, err := r.clone.IntroducedBy(cm, blob, file, 1000)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	r.introduced[file] = [2]plumbing.Hash{blob, commit}
	return commit, nil
}

// SourceDigest is the SourceLabel value of a stores repo location.
func SourceDigest(r Remote) string {
	sum := sha256.Sum256([]byte(r.URL + "\n" + r.Branch + "\n" + cleanDir(r.Path)))
	return hex.EncodeToString(sum[:8])
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func short(h plumbing.Hash) string { return h.String()[:12] }
