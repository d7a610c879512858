package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// +kubebuilder:rbac:groups=helm.toolkit.fluxcd.io,resources=helmreleases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=source.toolkit.fluxcd.io,resources=helmrepositories,verbs=get;list;watch;create;update;patch

// ChartSource is where helm-controller gets the store chart.
type ChartSource struct {
	// Kind, Namespace and Name reference a Flux source: a HelmRepository,
	// GitRepository or OCIRepository.
	Kind, Namespace, Name string
	// Chart is the chart's name in a Helm repository, or its path in a Git
	// repository (e.g. charts/medusa-store).
	Chart string
	// URL, when set, is a Helm repository (normally the operator's own chart
	// server) for which the operator keeps a HelmRepository named Name.
	URL string
}

// FluxDelivery delivers a store as a Flux HelmRelease that helm-controller
// installs. The HelmRelease lives in the platform namespace (store-<name>
// is removed on deletion), releases into store-<name> with its Helm storage
// there, and carries the same values as Helm SDK mode.
type FluxDelivery struct {
	Client client.Client
	// Reader reads HelmReleases uncached, so a reconcile sees its own writes.
	Reader client.Reader
	// Namespace holds the HelmReleases (and the managed HelmRepository).
	Namespace string
	Source    ChartSource
	// DefaultChartVersion is the chart version of stores that pin none.
	DefaultChartVersion string
	// Helm reads the release (manifest) helm-controller wrote, for the
	// inventory and drift checks.
	Helm *HelmSDK
	// Unresponsive is how long helm-controller may leave a change unhandled
	// before the store says it may not be running.
	Unresponsive time.Duration

	sourceMu      sync.Mutex
	sourceApplied time.Time

	// cached is the HelmRelease watch's cache once it has synced, nil
	// before; written is the generation (and UID) of each HelmRelease this
	// process last applied. See current.
	cached  atomic.Pointer[client.Reader]
	written sync.Map // client.ObjectKey → writtenRelease
}

// writtenRelease is a HelmRelease as this process's last apply left it.
type writtenRelease struct {
	uid        types.UID
	generation int64
}

// UseCache makes Ensure read HelmReleases from c, the synced cache of the
// HelmRelease watch, instead of the API server.
func (f *FluxDelivery) UseCache(c client.Reader) { f.cached.Store(&c) }

// current reads a store's HelmRelease for Ensure. In Flux mode a store is
// reconciled on each of helm-controller's status writes, and a live GET each
// time was the most frequent request of a Flux fleet. The watch's cache
// serves it when it holds the generation this process last applied, or a
// later one: a copy older than the operator's own apply would report the
// previous generation's Ready. Anything else — no cache yet, a HelmRelease
// the cache has not seen (whose owner must be checked before applying over
// it), a copy behind the operator's apply — is read live.
func (f *FluxDelivery) current(ctx context.Context, key client.ObjectKey, hr *helmv2.HelmRelease) error {
	if c := f.cached.Load(); c != nil {
		if err := (*c).Get(ctx, key, hr); err == nil {
			w, wrote := f.written.Load(key)
			if !wrote || (w.(writtenRelease).uid == hr.UID && hr.Generation >= w.(writtenRelease).generation) {
				return nil
			}
		}
		*hr = helmv2.HelmRelease{}
	}
	return f.Reader.Get(ctx, key, hr)
}

// Annotations the operator keeps on its HelmReleases.
const (
	fluxAppliedAnnotation = "storefleet.dev/applied-at"
)

// Mode implements Delivery.
func (f *FluxDelivery) Mode() v1alpha1.DeliveryMode { return v1alpha1.DeliveryFlux }

func (f *FluxDelivery) unresponsive() time.Duration {
	if f.Unresponsive > 0 {
		return f.Unresponsive
	}
	return 30 * time.Second
}

// desired is the HelmRelease of a store, without the applied-at stamp.
func (f *FluxDelivery) desired(want DesiredRelease) (*helmv2.HelmRelease, error) {
	s := want.Store
	values, err := json.Marshal(want.Values)
	if err != nil {
		return nil, err
	}
	version := want.ChartVersion
	if version == "" {
		version = f.DefaultChartVersion
	}
	hr := &helmv2.HelmRelease{
		TypeMeta: metav1.TypeMeta{APIVersion: helmv2.GroupVersion.String(), Kind: helmv2.HelmReleaseKind},
		ObjectMeta: metav1.ObjectMeta{
			Name: s.Name, Namespace: f.Namespace, Labels: storeLabels(s),
			Annotations: map[string]string{digestKey: want.Digest},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "Store", Name: s.Name, UID: s.UID,
				Controller: ptr.To(true),
			}},
		},
		Spec: helmv2.HelmReleaseSpec{
			Interval:         metav1.Duration{Duration: 10 * time.Minute},
			ReleaseName:      want.Name,
			TargetNamespace:  want.Namespace,
			StorageNamespace: want.Namespace,
			MaxHistory:       ptr.To(releaseHistory),
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart:     f.Source.Chart,
				Version:   version,
				SourceRef: helmv2.CrossNamespaceObjectReference{Kind: f.Source.Kind, Name: f.Source.Name, Namespace: f.Source.Namespace},
				Interval:  &metav1.Duration{Duration: 10 * time.Minute},
			}},
			// Retry, never uninstall or roll back: a store keeps its data
			// through a failed upgrade (Flux's advice for stateful apps).
			Install:        &helmv2.Install{Strategy: &helmv2.InstallStrategy{Name: string(helmv2.ActionStrategyRetryOnFailure), RetryInterval: &metav1.Duration{Duration: 30 * time.Second}}},
			Upgrade:        &helmv2.Upgrade{Strategy: &helmv2.UpgradeStrategy{Name: string(helmv2.ActionStrategyRetryOnFailure), RetryInterval: &metav1.Duration{Duration: 30 * time.Second}}},
			DriftDetection: &helmv2.DriftDetection{Mode: helmv2.DriftDetectionEnabled},
			Values:         &apiextensionsv1.JSON{Raw: values},
		},
	}
	// The store's retry request becomes Flux's: reconcile now, and reset
	// the failure counters.
	if retry := s.Annotations[v1alpha1.RetryAnnotation]; retry != "" {
		hr.Annotations[meta.ReconcileRequestAnnotation] = retry
		hr.Annotations[helmv2.ResetRequestAnnotation] = retry
	}
	return hr, nil
}

// Ensure implements Delivery: it applies the HelmRelease when it is missing
// or differs, and reports what helm-controller made of it. force asks
// helm-controller to reconcile now (drift found by the operator's watch).
func (f *FluxDelivery) Ensure(ctx context.Context, want DesiredRelease, force bool) (ReleaseState, error) {
	if err := f.ensureSource(ctx); err != nil {
		return ReleaseState{}, err
	}
	hr, err := f.desired(want)
	if err != nil {
		return ReleaseState{}, err
	}
	var live helmv2.HelmRelease
	err = f.current(ctx, client.ObjectKeyFromObject(hr), &live)
	missing := apierrors.IsNotFound(err)
	if err != nil && !missing {
		return ReleaseState{}, err
	}
	if !missing && !ownedBy(&live, want.Store) {
		// Applying with forced ownership would take it over.
		return ReleaseState{}, foreignHelmRelease(&live, want.Store)
	}
	changed := missing || force
	if !changed {
		if changed, err = differs(hr, &live); err != nil {
			return ReleaseState{}, err
		}
	}
	if changed {
		now := time.Now().UTC().Format(time.RFC3339Nano)
		hr.Annotations[fluxAppliedAnnotation] = now
		if force {
			hr.Annotations[meta.ReconcileRequestAnnotation] = now
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(hr)
		if err != nil {
			return ReleaseState{}, err
		}
		obj := &unstructured.Unstructured{Object: u}
		unstructured.RemoveNestedField(obj.Object, "status")
		if err := f.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return ReleaseState{}, fmt.Errorf("apply HelmRelease %s/%s: %w", hr.Namespace, hr.Name, err)
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &live); err != nil {
			return ReleaseState{}, err
		}
		f.written.Store(client.ObjectKeyFromObject(&live), writtenRelease{uid: live.UID, generation: live.Generation})
	}
	return f.stateOf(ctx, &live, want)
}

// differs reports whether live lacks anything desired says.
func differs(desired, live *helmv2.HelmRelease) (bool, error) {
	want, err := runtime.DefaultUnstructuredConverter.ToUnstructured(desired)
	if err != nil {
		return false, err
	}
	have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
	if err != nil {
		return false, err
	}
	return len(differences(want, have)) > 0, nil
}

// stateOf reads a HelmRelease's status into a ReleaseState, passing
// helm-controller's messages on verbatim.
func (f *FluxDelivery) stateOf(ctx context.Context, hr *helmv2.HelmRelease, want DesiredRelease) (ReleaseState, error) {
	st := ReleaseState{Status: v1alpha1.HelmPending}
	if latest := hr.Status.History.Latest(); latest != nil {
		st.Revision, st.ChartVersion = latest.Version, latest.ChartVersion
	}
	ready := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
	current := hr.Status.ObservedGeneration == hr.Generation
	id := hr.Namespace + "/" + hr.Name
	switch {
	case current && ready != nil && ready.Status == metav1.ConditionTrue:
		st.Status, st.Digest = v1alpha1.HelmDeployed, hr.Annotations[digestKey]
		st.Reason, st.Message = ready.Reason, ready.Message
		if rel, found, err := f.Helm.Observe(ctx, want.Namespace, want.Name); err != nil {
			return st, err
		} else if found {
			st.takeManifest(rel)
		}
	case ready != nil && ready.Status == metav1.ConditionFalse && (current || ready.Reason != meta.ProgressingReason):
		st.Status, st.Reason, st.Message = v1alpha1.HelmFailed, ready.Reason, ready.Message
	case f.waitedTooLong(hr):
		st.Reason = "HelmControllerUnresponsive"
		st.Message = fmt.Sprintf("helm-controller has not handled HelmRelease %s for more than %s: is helm-controller running?", id, f.unresponsive())
	case ready != nil && (current || ready.Status != metav1.ConditionTrue):
		st.Reason, st.Message = ready.Reason, ready.Message
	case ready != nil:
		// Ready=True of an older generation says nothing about this one.
		st.Reason, st.Message = meta.ProgressingReason, fmt.Sprintf("HelmRelease %s: helm-controller has yet to apply generation %d", id, hr.Generation)
	default:
		st.Reason, st.Message = meta.ProgressingReason, fmt.Sprintf("HelmRelease %s is waiting for helm-controller", id)
	}
	if st.Status == v1alpha1.HelmDeployed && st.Revision > 1 && ready.Reason == helmv2.UpgradeSucceededReason {
		// The message names the revision, so the log gets one entry per upgrade.
		st.Events = append(st.Events, v1alpha1.ActivityEntry{Timestamp: ready.LastTransitionTime, Event: v1alpha1.EventHelmUpgraded, Message: ready.Message})
	}
	if rem := apimeta.FindStatusCondition(hr.Status.Conditions, helmv2.RemediatedCondition); rem != nil && rem.Status == metav1.ConditionTrue {
		st.Events = append(st.Events, v1alpha1.ActivityEntry{Timestamp: rem.LastTransitionTime, Event: v1alpha1.EventHelmRemediated, Message: rem.Message})
	}
	if st.Status == v1alpha1.HelmFailed && helmActionFailed(ready.Reason) {
		st.Events = append(st.Events, v1alpha1.ActivityEntry{Timestamp: ready.LastTransitionTime, Event: v1alpha1.EventHelmFailed, Message: ready.Message})
	}
	return st, nil
}

// helmActionFailed tells a failed Helm action from a release that is only
// waiting (e.g. for its chart artifact).
func helmActionFailed(reason string) bool {
	switch reason {
	case helmv2.InstallFailedReason, helmv2.UpgradeFailedReason, helmv2.TestFailedReason, helmv2.RollbackFailedReason, helmv2.UninstallFailedReason:
		return true
	}
	return false
}

// waitedTooLong reports a change that helm-controller has not picked up
// within the unresponsive period.
func (f *FluxDelivery) waitedTooLong(hr *helmv2.HelmRelease) bool {
	if hr.Status.ObservedGeneration == hr.Generation && apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition) != nil {
		return false
	}
	applied, err := time.Parse(time.RFC3339Nano, hr.Annotations[fluxAppliedAnnotation])
	return err == nil && time.Since(applied) > f.unresponsive()
}

// Observe implements Delivery from the release helm-controller wrote.
func (f *FluxDelivery) Observe(ctx context.Context, namespace, name string) (ReleaseState, bool, error) {
	return f.Helm.Observe(ctx, namespace, name)
}

// Remove implements Delivery: delete the HelmRelease and wait until
// helm-controller has uninstalled the release and let the HelmRelease go.
func (f *FluxDelivery) Remove(ctx context.Context, s *v1alpha1.Store, _, name string) (string, error) {
	hr, err := f.ownHelmRelease(ctx, s, name)
	if hr == nil || err != nil {
		return "", err
	}
	id := hr.Namespace + "/" + hr.Name
	if hr.DeletionTimestamp.IsZero() {
		if err := f.Client.Delete(ctx, hr); err != nil && !apierrors.IsNotFound(err) {
			return "", err
		}
		return fmt.Sprintf("waiting for helm-controller to uninstall HelmRelease %s", id), nil
	}
	if waited := time.Since(hr.DeletionTimestamp.Time); waited > f.unresponsive() {
		return fmt.Sprintf("HelmRelease %s has waited %s for helm-controller to uninstall it: is helm-controller running?", id, waited.Round(time.Second)), nil
	}
	return fmt.Sprintf("waiting for helm-controller to uninstall HelmRelease %s", id), nil
}

// Detach implements Delivery: the HelmRelease is suspended, so
// helm-controller leaves the release alone, then removed together with its
// finalizer — what helm-controller itself does for a suspended HelmRelease.
func (f *FluxDelivery) Detach(ctx context.Context, s *v1alpha1.Store, _, name string) (string, error) {
	hr, err := f.ownHelmRelease(ctx, s, name)
	if hr == nil || err != nil {
		return "", err
	}
	if !hr.Spec.Suspend {
		patch := client.MergeFrom(hr.DeepCopy())
		hr.Spec.Suspend = true
		if err := f.Client.Patch(ctx, hr, patch); err != nil {
			return "", err
		}
	}
	if len(hr.Finalizers) > 0 {
		patch := client.MergeFrom(hr.DeepCopy())
		hr.Finalizers = nil
		if err := f.Client.Patch(ctx, hr, patch); err != nil && !apierrors.IsNotFound(err) {
			return "", err
		}
	}
	if err := f.Client.Delete(ctx, hr); err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	return fmt.Sprintf("waiting for HelmRelease %s/%s to be gone", hr.Namespace, hr.Name), nil
}

// helmRelease reads a store's HelmRelease uncached; nil when there is none.
func (f *FluxDelivery) helmRelease(ctx context.Context, name string) (*helmv2.HelmRelease, error) {
	var hr helmv2.HelmRelease
	key := client.ObjectKey{Namespace: f.Namespace, Name: name}
	err := f.Reader.Get(ctx, key, &hr)
	if apierrors.IsNotFound(err) {
		f.written.Delete(key) // gone: nothing of it to wait for in the cache
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &hr, nil
}

// ownHelmRelease is s's HelmRelease, or nil when there is none or the one
// of that name is not s's own: only the Store's own is ever deleted.
func (f *FluxDelivery) ownHelmRelease(ctx context.Context, s *v1alpha1.Store, name string) (*helmv2.HelmRelease, error) {
	hr, err := f.helmRelease(ctx, name)
	if hr == nil || err != nil || !ownedBy(hr, s) {
		return nil, err
	}
	return hr, nil
}

// ownedBy reports whether obj's controller is the Store s itself (by UID,
// which a copied name or label cannot fake).
func ownedBy(obj metav1.Object, s *v1alpha1.Store) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.Kind == "Store" && ref.APIVersion == v1alpha1.GroupVersion.String() && ref.UID == s.UID
}

// foreignHelmRelease says whose a HelmRelease of the store's name is.
func foreignHelmRelease(hr *helmv2.HelmRelease, s *v1alpha1.Store) error {
	owner := "no Store"
	if ref := metav1.GetControllerOf(hr); ref != nil {
		owner = fmt.Sprintf("%s %s (uid %s)", ref.Kind, ref.Name, ref.UID)
	}
	return fmt.Errorf("HelmRelease %s/%s exists and is not this store's (uid %s) but controlled by %s: it is neither overwritten nor deleted; "+
		"one left by a deleted store of the same name is garbage-collected shortly, any other must be removed by its owner", hr.Namespace, hr.Name, s.UID, owner)
}

// ensureSource keeps the managed HelmRepository (when Source.URL is set):
// applied at the first Ensure and re-applied at most every sourceRecheck, so
// a deleted one comes back without a read on every reconcile.
func (f *FluxDelivery) ensureSource(ctx context.Context) error {
	if f.Source.URL == "" {
		return nil
	}
	f.sourceMu.Lock()
	defer f.sourceMu.Unlock()
	if time.Since(f.sourceApplied) < sourceRecheck {
		return nil
	}
	repo := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": sourcev1.GroupVersion.String(),
		"kind":       sourcev1.HelmRepositoryKind,
		"metadata": map[string]any{
			"name": f.Source.Name, "namespace": f.Source.Namespace,
			"labels": map[string]any{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue},
		},
		"spec": map[string]any{"url": f.Source.URL, "interval": "10m"},
	}}
	if err := f.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(repo), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply HelmRepository %s/%s: %w", f.Source.Namespace, f.Source.Name, err)
	}
	f.sourceApplied = time.Now()
	return nil
}

// sourceRecheck bounds how long a deleted managed HelmRepository stays gone.
const sourceRecheck = time.Minute
