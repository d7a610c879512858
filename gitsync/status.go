package gitsync

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;update;patch;watch

const (
	// StatusConfigMap holds the Reader's last status in the platform
	// namespace, for the Intent API's GET /api/v1/gitsync.
	StatusConfigMap = "storefleet-gitsync"
	// StatusKey is the ConfigMap key holding SyncStatus as JSON.
	StatusKey = "status.json"
)

// SyncStatus is what the last sync did, for people and the API.
type SyncStatus struct {
	Repository string `json:"repository"`
	Branch     string `json:"branch"`
	Path       string `json:"path"`
	// Commit is the last commit synced without error.
	Commit string `json:"commit,omitempty"`
	// SyncedAt is when Commit was synced.
	SyncedAt *metav1.Time `json:"syncedAt,omitempty"`
	// AttemptedAt is when the last sync ran, successful or not.
	AttemptedAt *metav1.Time `json:"attemptedAt,omitempty"`
	// AttemptedCommit is the head the last sync saw.
	AttemptedCommit string `json:"attemptedCommit,omitempty"`
	// Stores is the number of valid manifests at AttemptedCommit.
	Stores int `json:"stores"`
	// Applied, Pruned list what the last sync changed.
	Applied []string `json:"applied,omitempty"`
	Pruned  []string `json:"pruned,omitempty"`
	// Invalid lists manifests that were skipped, with why.
	Invalid []Problem `json:"invalid,omitempty"`
	// Error is why the last sync did not complete (fetch failed, prune
	// refused, apply failed); empty when it did.
	Error string `json:"error,omitempty"`
	// RecentPrunes are the stores deleted because Git stopped declaring
	// them, within the prune window, oldest first. The prune limit counts
	// them, so it holds across consecutive syncs, force-pushes and restarts.
	RecentPrunes []PruneRecord `json:"recentPrunes,omitempty"`
}

// PruneRecord is one store a sync deleted.
type PruneRecord struct {
	Store string      `json:"store"`
	At    metav1.Time `json:"at"`
}

// publish records st in the status ConfigMap.
func (r *Reader) publish(ctx context.Context, st SyncStatus) error {
	if r.opts.Client == nil || r.opts.Namespace == "" {
		return nil
	}
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return r.applyConfigMap(ctx, StatusConfigMap, map[string]string{StatusKey: string(js)}, FieldManager)
}

// applyConfigMap server-side applies data to a ConfigMap of the platform
// namespace as manager.
func (r *Reader) applyConfigMap(ctx context.Context, name string, data map[string]string, manager string) error {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.opts.Namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "storefleet"}},
		Data:       data,
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cm)
	if err != nil {
		return err
	}
	return r.opts.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: u}), client.FieldOwner(manager), client.ForceOwnership)
}

// ReadStatus reads the last sync status from the cluster; nil when no
// Reader has run.
func ReadStatus(ctx context.Context, c client.Reader, namespace string) (*SyncStatus, error) {
	var cm corev1.ConfigMap
	err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: StatusConfigMap}, &cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st SyncStatus
	if err := json.Unmarshal([]byte(cm.Data[StatusKey]), &st); err != nil {
		return nil, fmt.Errorf("configmap %s/%s: %w", namespace, StatusConfigMap, err)
	}
	return &st, nil
}
