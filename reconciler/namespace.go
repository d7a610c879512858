package reconciler

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// Names of the objects the operator itself puts in a store namespace.
const (
	quotaName       = "store-quota"
	limitRangeName  = "store-limits"
	denyPolicyName  = "default-deny"
	podSecurityMode = "restricted"
)

// storeLabels mark every object of a store, so the operator's watches find them.
func storeLabels(s *v1alpha1.Store) map[string]string {
	return map[string]string{
		v1alpha1.StoreLabel:     s.Name,
		v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue,
	}
}

// reconcileNamespace creates store-<name>, or refuses one that is not ours.
func (r *StoreReconciler) reconcileNamespace(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.store
	var existing corev1.Namespace
	// The cache holds the namespaces labelled as a store's, so a Ready
	// store's periodic check reads nothing from the API server here; only
	// one the cache lacks (a new store's, or a foreign one) needs its word.
	key := client.ObjectKey{Name: sc.namespace}
	// Read without a copy: it is only compared (see apply).
	err := r.Get(ctx, key, &existing, client.UnsafeDisableDeepCopy)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, &existing)
	}
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return ctrl.Result{}, err
	case !existing.DeletionTimestamp.IsZero():
		// Whoever's it is (a store of the same name deleted moments ago),
		// it is going away.
		conditions.MarkFalse(s, v1alpha1.NamespaceReadyCondition, v1alpha1.ReasonProgressing, "namespace %s is still terminating", sc.namespace)
		return ctrl.Result{RequeueAfter: watchBackstop}, nil
	case !ownsNamespace(&existing, s):
		msg := fmt.Sprintf("namespace %s exists and was not made by storefleet for this store (uid %s); refusing to take it over", sc.namespace, s.UID)
		conditions.MarkFalse(s, v1alpha1.NamespaceReadyCondition, v1alpha1.ReasonNamespaceConflict, "%s", msg)
		return ctrl.Result{}, terminal(fmt.Errorf("%s", msg))
	}
	labels := storeLabels(s)
	labels[v1alpha1.OwnerLabel] = v1alpha1.OwnerLabelValue(s.Spec.Owner)
	labels["pod-security.kubernetes.io/enforce"] = podSecurityMode
	labels["pod-security.kubernetes.io/enforce-version"] = "latest"
	ns := &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: sc.namespace, Labels: labels,
			Annotations: map[string]string{v1alpha1.StoreUIDAnnotation: string(s.UID)}},
	}
	changed, err := r.apply(ctx, ns, &existing, apierrors.IsNotFound(err))
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("apply namespace: %w", err)
	}
	if changed && conditions.IsTrue(s, v1alpha1.NamespaceReadyCondition) {
		r.driftCorrected(sc, "namespace "+sc.namespace+" labels restored")
	}
	return ctrl.Result{}, nil
}

// ownsNamespace reports whether ns is s's own namespace: made for this very
// Store (its UID annotation), not merely labelled with its name — anyone who
// may create namespaces can copy labels, and a Store deleted and created
// again under the same name is another Store. A namespace without the
// annotation was made by an operator that did not record UIDs yet; it is
// the store's only if it is no older than the Store, so a namespace
// prepared before a victim's Store existed is never adopted.
func ownsNamespace(ns *corev1.Namespace, s *v1alpha1.Store) bool {
	if ns.Labels[v1alpha1.StoreLabel] != s.Name || ns.Labels[v1alpha1.ManagedByLabel] != v1alpha1.ManagedByValue {
		return false
	}
	if uid, ok := ns.Annotations[v1alpha1.StoreUIDAnnotation]; ok {
		return uid == string(s.UID)
	}
	return !ns.CreationTimestamp.Before(&s.CreationTimestamp)
}

// reconcileIsolation applies the plan's quota and limits and the
// default-deny network policy, then waits until the quota is observed.
func (r *StoreReconciler) reconcileIsolation(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.store
	plan := planFor(s)
	labels := storeLabels(s)
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: sc.namespace, Labels: labels}
	}
	quota := &corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: meta(quotaName),
		Spec:       corev1.ResourceQuotaSpec{Hard: plan.Quota},
	}
	limits := &corev1.LimitRange{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"},
		ObjectMeta: meta(limitRangeName),
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type:           corev1.LimitTypeContainer,
			Default:        plan.DefaultLimits,
			DefaultRequest: plan.DefaultRequests,
		}}},
	}
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dns := intstr.FromInt32(53)
	deny := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: meta(denyPolicyName),
		Spec: networkingv1.NetworkPolicySpec{
			// Every pod: no ingress, and egress only to the cluster DNS.
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
				}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}},
			}},
		},
	}
	for _, obj := range []struct {
		desired  client.Object
		existing client.Object
		what     string
	}{
		{quota, &corev1.ResourceQuota{}, "ResourceQuota " + quotaName},
		{limits, &corev1.LimitRange{}, "LimitRange " + limitRangeName},
		{deny, &networkingv1.NetworkPolicy{}, "NetworkPolicy " + denyPolicyName},
	} {
		// Read without a copy: apply only compares what it holds.
		err := r.Get(ctx, client.ObjectKeyFromObject(obj.desired), obj.existing, client.UnsafeDisableDeepCopy)
		if err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		changed, err := r.apply(ctx, obj.desired, obj.existing, apierrors.IsNotFound(err))
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("apply %s: %w", obj.what, err)
		}
		if changed && conditions.IsTrue(s, v1alpha1.NamespaceReadyCondition) {
			r.driftCorrected(sc, obj.what+" restored")
		}
	}
	// Installing before the quota is observed would let pods in unchecked.
	var observed corev1.ResourceQuota
	if err := r.Get(ctx, client.ObjectKeyFromObject(quota), &observed, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if len(observed.Status.Hard) == 0 {
		conditions.MarkFalse(s, v1alpha1.NamespaceReadyCondition, v1alpha1.ReasonQuotaPending, "waiting for ResourceQuota %s/%s to be observed by the quota controller", sc.namespace, quotaName)
		return ctrl.Result{RequeueAfter: watchBackstop}, nil
	}
	if !conditions.IsTrue(s, v1alpha1.NamespaceReadyCondition) {
		enforced, err := r.quotaEnforced(ctx, sc.namespace, observed.Status.Hard)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !enforced {
			conditions.MarkFalse(s, v1alpha1.NamespaceReadyCondition, v1alpha1.ReasonQuotaPending, "waiting for the API server to enforce ResourceQuota %s/%s", sc.namespace, quotaName)
			return ctrl.Result{RequeueAfter: requeueWaiting}, nil
		}
	}
	return ctrl.Result{}, nil
}

// quotaEnforcementProbe names the claim that is never created: a
// server-side dry run of it asks the API server whether it enforces the
// namespace's quota yet.
const quotaEnforcementProbe = "storefleet-quota-probe"

// quotaEnforced asks the API server, by a dry-run claim bigger than the
// quota allows, whether its admission enforces the quota. The quota
// controller's status (what the operator's cache shows) is not enough: the
// API server admits against its own informer's copy, and while that copy
// lacks the quota's hard limits it admits everything — seen on a loaded
// machine as a small-plan store running 13 pods and 1.22 CPUs of requests
// against a quota of 12 and 1. Asked once, before the store's first install.
func (r *StoreReconciler) quotaEnforced(ctx context.Context, namespace string, hard corev1.ResourceList) (bool, error) {
	limit, ok := hard[corev1.ResourceRequestsStorage]
	if !ok {
		return true, nil // nothing this probe can exceed; the plans all set it
	}
	over := limit.DeepCopy()
	over.Add(resource.MustParse("1Gi"))
	probe := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: quotaEnforcementProbe},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: over}},
		},
	}
	err := r.Create(ctx, probe, client.DryRunAll)
	switch {
	case err == nil:
		return false, nil
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"):
		return true, nil
	case apierrors.IsAlreadyExists(err):
		// Someone made a claim of that name: the question cannot be asked.
		return true, nil
	}
	return false, fmt.Errorf("ask the API server whether it enforces the quota: %w", err)
}

// credentialKeys are the keys of the credentials Secret the chart reads.
var credentialKeys = []string{"postgres-password", "jwt-secret", "cookie-secret"}

// DatabaseVolumeClaim is the claim of the store's PostgreSQL data (the
// chart's StatefulSet postgres, volume data): while it exists the database
// holds the passwords of the credentials Secret.
const DatabaseVolumeClaim = "data-postgres-0"

// CredentialsCopyPrefix names the operator's copy of a store's credentials
// in the platform namespace: store-credentials-<name>.
const CredentialsCopyPrefix = CredentialsSecret + "-"

// credentialsCopyLabel marks the operator's copies, which only its role
// reads in the platform namespace.
const credentialsCopyLabel = "storefleet.dev/credentials-copy"

// credentialsCopyKey is where the operator keeps a store's credentials.
func (r *StoreReconciler) credentialsCopyKey(s *v1alpha1.Store) client.ObjectKey {
	return client.ObjectKey{Namespace: r.credentialsNamespace(), Name: CredentialsCopyPrefix + s.Name}
}

func (r *StoreReconciler) credentialsNamespace() string {
	if r.CredentialsNamespace != "" {
		return r.CredentialsNamespace
	}
	return DefaultCredentialsNamespace
}

// reconcileCredentials creates the store's Secret once, together with the
// operator's copy in the platform namespace. It is never regenerated: not on
// upgrade, not after a restart, not when the chart changes. A Secret that
// disappears is restored from the copy; without a copy, while the database
// volume exists, the store stalls (CredentialsLost) instead of minting
// passwords the database does not know.
func (r *StoreReconciler) reconcileCredentials(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.store
	key := client.ObjectKey{Namespace: sc.namespace, Name: CredentialsSecret}
	var existing corev1.Secret
	err := r.Get(ctx, key, &existing)
	if apierrors.IsNotFound(err) {
		// The cache may not hold a Secret created moments ago: only the
		// API server's word makes it missing.
		err = r.APIReader.Get(ctx, key, &existing)
	}
	if err == nil {
		if missing := missingKeys(existing.Data); len(missing) > 0 {
			// Regenerating would lock the application out of its database.
			return ctrl.Result{}, terminal(fmt.Errorf("secret %s/%s lacks keys %v; restore it (values are never regenerated)", key.Namespace, key.Name, missing))
		}
		// The store's Secret is the truth while it exists; the copy follows it
		// (and is made for stores created before copies were kept).
		if err := r.keepCredentialsCopy(ctx, s, existing.Data); err != nil {
			return ctrl.Result{}, err
		}
		markNamespaceReady(sc)
		return ctrl.Result{}, nil
	}
	if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	data, err := r.credentialsCopy(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	restored := data != nil
	if !restored {
		var pvc corev1.PersistentVolumeClaim
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: sc.namespace, Name: DatabaseVolumeClaim}, &pvc)
		if err == nil {
			msg := credentialsLostMessage(sc.namespace, r.credentialsCopyKey(s))
			conditions.MarkFalse(s, v1alpha1.NamespaceReadyCondition, v1alpha1.ReasonCredentialsLost, "%s", msg)
			sc.stallOn(v1alpha1.ReasonCredentialsLost, "%s", msg)
			sc.done = true
			return ctrl.Result{}, nil
		}
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		// A new store (no data yet): mint its credentials.
		if data, err = newCredentials(); err != nil {
			return ctrl.Result{}, err
		}
	}
	// The copy first, so a store Secret never exists without one.
	if err := r.keepCredentialsCopy(ctx, s, data); err != nil {
		return ctrl.Result{}, err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: storeLabels(s)},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	// Create, not apply: an existing Secret must never be overwritten. Should
	// another create have won, the next reconcile makes the copy follow it.
	if err := r.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("create credentials secret: %w", err)
	}
	if restored {
		r.record(sc, v1alpha1.EventCredentialsRestored, fmt.Sprintf("secret %s/%s was missing and was restored from the operator's copy %s", key.Namespace, key.Name, r.credentialsCopyKey(s)))
	}
	markNamespaceReady(sc)
	return ctrl.Result{}, nil
}

// credentialsLostMessage says what happened and how to recover, without a
// secret value.
func credentialsLostMessage(namespace string, copyKey client.ObjectKey) string {
	return fmt.Sprintf("secret %s/%s is missing and the operator has no copy (%s), but the database volume %s/%s exists: "+
		"new passwords would lock the store out of its data, so none were generated. "+
		"Restore the Secret (keys %s) from a backup, e.g. kubectl apply -f store-credentials.yaml; "+
		"the store resumes by itself once it is back",
		namespace, CredentialsSecret, copyKey, namespace, DatabaseVolumeClaim, strings.Join(credentialKeys, ", "))
}

// newCredentials mints a store's credentials from crypto/rand.
func newCredentials() (map[string][]byte, error) {
	data := map[string][]byte{}
	for _, k := range credentialKeys {
		v, err := randomSecret()
		if err != nil {
			return nil, err
		}
		data[k] = v
	}
	return data, nil
}

// credentialsCopy returns the operator's complete copy of a store's
// credentials, or nil when there is none.
func (r *StoreReconciler) credentialsCopy(ctx context.Context, s *v1alpha1.Store) (map[string][]byte, error) {
	var cp corev1.Secret
	err := r.APIReader.Get(ctx, r.credentialsCopyKey(s), &cp)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read credentials copy: %w", err)
	case cp.Labels[v1alpha1.StoreLabel] != s.Name || cp.Labels[credentialsCopyLabel] != "true" || len(missingKeys(cp.Data)) > 0:
		// Not the operator's copy for this store, or incomplete.
		return nil, nil
	}
	return cp.Data, nil
}

// keepCredentialsCopy makes the operator's copy hold data. The copy lives in
// the platform namespace (where only the operator's role reads Secrets)
// and carries the store label, so its deletion reconciles the store, which
// writes it again.
func (r *StoreReconciler) keepCredentialsCopy(ctx context.Context, s *v1alpha1.Store, data map[string][]byte) error {
	key := r.credentialsCopyKey(s)
	var existing corev1.Secret
	err := r.Get(ctx, key, &existing)
	if err == nil {
		if sameCredentials(existing.Data, data) {
			return nil
		}
		existing.Data = data
		if err := r.Update(ctx, &existing); err != nil {
			return fmt.Errorf("update credentials copy: %w", err)
		}
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	labels := storeLabels(s)
	labels[credentialsCopyLabel] = "true"
	cp := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: labels},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	err = r.Create(ctx, cp)
	if apierrors.IsNotFound(err) {
		// The platform namespace does not exist yet (e.g. a bare cluster).
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: key.Namespace}}
		if err := r.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s for the credentials copy: %w", key.Namespace, err)
		}
		err = r.Create(ctx, cp)
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create credentials copy: %w", err)
	}
	return nil
}

// deleteCredentialsCopy removes the operator's copy of a deleted store's
// credentials.
func (r *StoreReconciler) deleteCredentialsCopy(ctx context.Context, s *v1alpha1.Store) error {
	cp := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.credentialsNamespace(), Name: CredentialsCopyPrefix + s.Name}}
	var existing corev1.Secret
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cp), &existing); err != nil {
		return client.IgnoreNotFound(err)
	}
	if existing.Labels[v1alpha1.StoreLabel] != s.Name || existing.Labels[credentialsCopyLabel] != "true" {
		return nil
	}
	if err := r.Delete(ctx, &existing); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete credentials copy: %w", err)
	}
	return nil
}

func sameCredentials(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// markNamespaceReady records that the namespace step (namespace, isolation,
// credentials) is complete.
func markNamespaceReady(sc *scope) {
	conditions.MarkTrue(sc.store, v1alpha1.NamespaceReadyCondition, v1alpha1.ReasonSucceeded,
		"namespace %s is isolated (quota, limits, default-deny network policy) and has its credentials", sc.namespace)
}

func missingKeys(data map[string][]byte) []string {
	var missing []string
	for _, k := range credentialKeys {
		if len(data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	return missing
}

// randomSecret returns 32 bytes from crypto/rand, URL-safe base64 encoded so
// it can sit in a connection URL.
func randomSecret() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate secret: %w", err)
	}
	return []byte(base64.RawURLEncoding.EncodeToString(b)), nil
}
