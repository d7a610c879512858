package reconciler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/reconciler"
)

func TestMedusaStoreBecomesReady(t *testing.T) {
	suite(t)
	ctx := context.Background()
	createStore(t, newStore("ready-shop"))

	// kubectl wait works on a Store, as on any kstatus resource.
	wait := exec.Command(devcluster.DefaultTools().Bin("kubectl"), "--kubeconfig", cluster.Kubeconfig,
		"wait", "--for=condition=Ready", "store/ready-shop", "--timeout=90s")
	if out, err := wait.CombinedOutput(); err != nil {
		t.Fatalf("kubectl wait: %v\n%s\noperator log:\n%s", err, out, operator.logTail(30))
	}
	s := getStore(t, "ready-shop")
	if s.Status.Phase != v1alpha1.PhaseReady {
		t.Fatalf("phase %q, want Ready; conditions %+v; activity %+v", s.Status.Phase, s.Status.Conditions, s.Status.ActivityLog)
	}
	for _, c := range []string{v1alpha1.ReadyCondition, v1alpha1.NamespaceReadyCondition, v1alpha1.HelmInstalledCondition,
		v1alpha1.DatabaseReadyCondition, v1alpha1.BackendReadyCondition, v1alpha1.StorefrontReadyCondition} {
		if cond := condition(s, c); cond == nil || cond.Status != metav1.ConditionTrue {
			t.Errorf("condition %s = %+v, want True", c, cond)
		}
	}
	if cond := condition(s, v1alpha1.ReconcilingCondition); cond != nil {
		t.Errorf("Reconciling still set on a Ready store: %+v", cond)
	}
	if s.Status.ObservedGeneration != s.Generation {
		t.Errorf("observedGeneration %d, generation %d", s.Status.ObservedGeneration, s.Generation)
	}
	// kwok's nodes ran nothing: the store says so.
	if s.Status.Runtime != v1alpha1.RuntimeSimulated {
		t.Errorf("runtime %q of a store on kwok nodes, want Simulated", s.Status.Runtime)
	}
	if s.Status.URLs == nil || s.Status.URLs.Storefront != "http://ready-shop.localtest.me" || s.Status.URLs.Admin != "http://ready-shop.localtest.me/app" {
		t.Errorf("urls = %+v", s.Status.URLs)
	}
	if r := s.Status.Release; r == nil || r.Mode != v1alpha1.DeliveryHelm || r.Revision != 1 || r.Name != "ready-shop" || r.Namespace != "store-ready-shop" || r.ChartVersion == "" {
		t.Errorf("release = %+v, want helm mode revision 1", r)
	}
	for _, want := range []string{"Namespace/store-ready-shop", "ResourceQuota/store-quota", "NetworkPolicy/default-deny", "StatefulSet/postgres",
		"Deployment/medusa-backend", "Deployment/medusa-worker", "Deployment/storefront", "Ingress/store", "Secret/store-credentials"} {
		found := false
		for _, e := range s.Status.Inventory {
			found = found || e.Kind+"/"+e.Name == want
		}
		if !found {
			t.Errorf("inventory lacks %s: %+v", want, s.Status.Inventory)
		}
	}

	// One Helm release, revision 1, stored in the store's namespace.
	var releases corev1.SecretList
	if err := cluster.Client.List(ctx, &releases, client.InNamespace("store-ready-shop"), client.MatchingLabels{"owner": "helm"}); err != nil {
		t.Fatal(err)
	}
	if len(releases.Items) != 1 || releases.Items[0].Labels["version"] != "1" || releases.Items[0].Labels["status"] != "deployed" {
		t.Errorf("helm release records: %d, want exactly one deployed revision 1", len(releases.Items))
	}

	// The namespace is isolated.
	var ns corev1.Namespace
	if err := cluster.Client.Get(ctx, client.ObjectKey{Name: "store-ready-shop"}, &ns); err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" || ns.Labels[v1alpha1.StoreLabel] != "ready-shop" || ns.Labels[v1alpha1.OwnerLabel] != "alice_example.com" {
		t.Errorf("namespace labels %v", ns.Labels)
	}
	var deny networkingv1.NetworkPolicy
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: "store-ready-shop", Name: "default-deny"}, &deny); err != nil {
		t.Fatalf("default-deny policy: %v", err)
	}
	if len(deny.Spec.Ingress) != 0 || len(deny.Spec.PolicyTypes) != 2 {
		t.Errorf("default-deny policy %+v", deny.Spec)
	}

	// The activity log holds the transitions in order: the start, the
	// namespace, the release, then the three workloads in whatever order they
	// became ready, then READY.
	var events []string
	for _, e := range s.Status.ActivityLog {
		events = append(events, e.Event)
	}
	if len(events) != 7 || !slices.Equal(events[:3], []string{v1alpha1.EventProvisioningStart, v1alpha1.EventNamespaceReady, v1alpha1.EventHelmInstalled}) ||
		events[6] != v1alpha1.EventReady || !sameSet(events[3:6], []string{v1alpha1.EventDatabaseReady, v1alpha1.EventBackendReady, v1alpha1.EventStorefrontReady}) {
		t.Errorf("activity log %v", events)
	}
	if operator.metric(t, "storefleet_stores", `phase="Ready"`) < 1 {
		t.Errorf("storefleet_stores{phase=Ready} not counted")
	}
	if operator.metric(t, "storefleet_provisioning_duration_seconds_count") < 1 {
		t.Errorf("provisioning duration not observed")
	}
}

func TestWooCommerceIsComingSoon(t *testing.T) {
	suite(t)
	createStore(t, newStore("woo-shop", func(s *v1alpha1.Store) { s.Spec.Engine = v1alpha1.EngineWooCommerce }))
	s := waitPhase(t, "woo-shop", v1alpha1.PhaseComingSoon, 30*time.Second)
	if c := condition(s, v1alpha1.ReadyCondition); c == nil || c.Reason != v1alpha1.ReasonEngineComingSoon {
		t.Errorf("Ready = %+v, want reason %s", c, v1alpha1.ReasonEngineComingSoon)
	}
	time.Sleep(2 * time.Second)
	err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: "store-woo-shop"}, &corev1.Namespace{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("a WooCommerce store got a namespace: %v", err)
	}
	deleteStore(t, "woo-shop")
}

func TestDriftIsHealedAndOnlyWhenReal(t *testing.T) {
	suite(t)
	ctx := context.Background()
	createStore(t, newStore("drift-shop"))
	s := waitPhase(t, "drift-shop", v1alpha1.PhaseReady, 90*time.Second)
	revision := s.Status.Release.Revision
	key := client.ObjectKey{Namespace: "store-drift-shop", Name: "medusa-backend"}

	// A deleted Deployment comes back within 2 s.
	if took := deleteDeployment(t, key)(10 * time.Second); took > 2*time.Second {
		t.Errorf("deleted deployment came back after %s, want within 2 s", took)
	}
	s = waitCorrections(t, "drift-shop", 1)
	if !strings.Contains(s.Status.Drift.LastCorrection, "Deployment medusa-backend deleted") {
		t.Errorf("drift status %+v", s.Status.Drift)
	}
	if !hasEvent(s, v1alpha1.EventDriftCorrected) {
		t.Errorf("no DRIFT_CORRECTED in the activity log")
	}

	// Scaled to zero: restored.
	var d appsv1.Deployment
	editLive(t, key, &d, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](0) })
	eventually(t, 10*time.Second, "backend replicas restored", func() (bool, error) {
		err := cluster.Client.Get(ctx, key, &d)
		return err == nil && *d.Spec.Replicas == 1, err
	})
	s = waitCorrections(t, "drift-shop", 2)
	if !strings.Contains(s.Status.Drift.LastCorrection, "Deployment medusa-backend changed (spec.replicas)") {
		t.Errorf("last correction %q", s.Status.Drift.LastCorrection)
	}
	if s.Status.Release.Revision <= revision {
		t.Errorf("revision %d after two repairs, want > %d", s.Status.Release.Revision, revision)
	}

	// A deleted quota (the operator's own object) is restored too.
	if err := cluster.Client.Delete(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "store-drift-shop", Name: "store-quota"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "quota restored", func() (bool, error) {
		err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: "store-drift-shop", Name: "store-quota"}, &corev1.ResourceQuota{})
		return err == nil, err
	})

	// No drift: ten periodic re-checks (every second in this suite) change
	// nothing, call Helm not once and do not write the Store (an idle fleet
	// costs etcd no write per store per interval).
	waitCorrections(t, "drift-shop", 3)
	waitSettled(t, "drift-shop")
	s = getStore(t, "drift-shop")
	revision = s.Status.Release.Revision
	installs := operator.metric(t, "storefleet_helm_actions_total", `action="install"`)
	upgrades := operator.metric(t, "storefleet_helm_actions_total", `action="upgrade"`)
	checks := operator.metric(t, "storefleet_drift_checks_total", `result="clean"`)
	compared := operator.metric(t, "storefleet_drift_objects_compared_total")
	secretLists, secretGets := apiRequests(t, "LIST", "secrets"), apiRequests(t, "GET", "secrets")
	time.Sleep(11 * time.Second)
	// Nothing was written, so nothing is compared again: each check reads
	// the objects' resourceVersions from the cache.
	if got := operator.metric(t, "storefleet_drift_objects_compared_total") - compared; got != 0 {
		t.Errorf("idle re-checks compared %v release objects in 11 s; want none (none was written since the last clean check)", got)
	}
	if got := operator.metric(t, "storefleet_drift_checks_total", `result="clean"`) - checks; got < 5 {
		t.Errorf("%v clean drift checks in 11 s, want the periodic re-check (every second)", got)
	}
	// The release comes from the operator's memo, vouched for by its
	// metadata cache of Helm's release Secrets, not from Helm's storage.
	if got := apiRequests(t, "LIST", "secrets") - secretLists; got > 1 {
		t.Errorf("the API server served %v LISTs of secrets in 11 s of idle re-checks; want none (Helm's history read every pass)", got)
	}
	// Nor the release's manifest: the memo keeps its digest only, and an
	// unchanged store's check needs no more.
	if got := apiRequests(t, "GET", "secrets") - secretGets; got > 1 {
		t.Errorf("the API server served %v GETs of secrets in 11 s of idle re-checks; want none (the release manifest read every pass)", got)
	}
	after := getStore(t, "drift-shop")
	if after.ResourceVersion != s.ResourceVersion {
		t.Errorf("idle re-checks wrote the Store (resourceVersion %s -> %s): status %+v", s.ResourceVersion, after.ResourceVersion, after.Status.Drift)
	}
	s = after
	if s.Status.Release.Revision != revision {
		t.Errorf("revision moved %d -> %d without drift", revision, s.Status.Release.Revision)
	}
	if got := operator.metric(t, "storefleet_helm_actions_total", `action="install"`) - installs; got != 0 {
		t.Errorf("%v Helm installs without drift", got)
	}
	if got := operator.metric(t, "storefleet_helm_actions_total", `action="upgrade"`) - upgrades; got != 0 {
		t.Errorf("%v Helm upgrades without drift", got)
	}

	// An edit after all those unchanged checks is still seen and healed:
	// it changed the object's resourceVersion.
	var svc corev1.Service
	svcKey := client.ObjectKey{Namespace: "store-drift-shop", Name: "storefront"}
	var port int32
	editLive(t, svcKey, &svc, func(svc *corev1.Service) { port = svc.Spec.Ports[0].Port; svc.Spec.Ports[0].Port++ })
	s = waitCorrections(t, "drift-shop", 4)
	if !strings.Contains(s.Status.Drift.LastCorrection, "Service storefront changed (spec.ports") {
		t.Errorf("last correction %q, want the edited Service port", s.Status.Drift.LastCorrection)
	}
	eventually(t, 10*time.Second, "storefront Service port restored", func() (bool, error) {
		err := cluster.Client.Get(ctx, svcKey, &svc)
		return err == nil && svc.Spec.Ports[0].Port == port, err
	})

	// An edit of a pod template, which the operator's cache does not hold
	// (its generation tells): seen, read live, and healed.
	var image string
	editLive(t, key, &d, func(d *appsv1.Deployment) {
		image = d.Spec.Template.Spec.Containers[0].Image
		d.Spec.Template.Spec.Containers[0].Image = "tampered.example/medusa:1"
	})
	s = waitCorrections(t, "drift-shop", 5)
	if !strings.Contains(s.Status.Drift.LastCorrection, "Deployment medusa-backend changed (spec.template.spec.containers") {
		t.Errorf("last correction %q, want the edited backend image", s.Status.Drift.LastCorrection)
	}
	eventually(t, 10*time.Second, "backend image restored", func() (bool, error) {
		err := cluster.Client.Get(ctx, key, &d)
		return err == nil && d.Spec.Template.Spec.Containers[0].Image == image, err
	})
	deleteStore(t, "drift-shop")
}

// editLive reads the object, edits it as a user would and patches the
// change (a merge patch of the difference).
func editLive[T client.Object](t *testing.T, key client.ObjectKey, obj T, edit func(T)) {
	t.Helper()
	ctx := context.Background()
	if err := cluster.Client.Get(ctx, key, obj); err != nil {
		t.Fatal(err)
	}
	orig := obj.DeepCopyObject().(client.Object)
	edit(obj)
	if err := cluster.Client.Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// waitCorrections waits until the store has healed at least n drifts and is Ready again.
func waitCorrections(t *testing.T, name string, n int64) *v1alpha1.Store {
	t.Helper()
	var s *v1alpha1.Store
	eventually(t, 30*time.Second, fmt.Sprintf("%s: %d drift corrections and Ready", name, n), func() (bool, error) {
		s = getStore(t, name)
		return s.Status.Drift != nil && s.Status.Drift.Corrections >= n && s.Status.Phase == v1alpha1.PhaseReady, nil
	})
	return s
}

// waitSettled waits until the Store has not been written for 3 s: the last
// repair's aftermath (workloads becoming ready again) is recorded.
func waitSettled(t *testing.T, name string) {
	t.Helper()
	rv, since := "", time.Now()
	eventually(t, 30*time.Second, name+": status settled", func() (bool, error) {
		s := getStore(t, name)
		if s.ResourceVersion != rv {
			rv, since = s.ResourceVersion, time.Now()
		}
		return time.Since(since) >= 3*time.Second, nil
	})
}

func hasEvent(s *v1alpha1.Store, event string) bool {
	for _, e := range s.Status.ActivityLog {
		if e.Event == event {
			return true
		}
	}
	return false
}

func TestCredentialsAreNeverRegeneratedOrExposed(t *testing.T) {
	suite(t)
	ctx := context.Background()
	createStore(t, newStore("secret-shop"))
	waitPhase(t, "secret-shop", v1alpha1.PhaseReady, 90*time.Second)
	key := client.ObjectKey{Namespace: "store-secret-shop", Name: "store-credentials"}
	var orig corev1.Secret
	if err := cluster.Client.Get(ctx, key, &orig); err != nil {
		t.Fatal(err)
	}
	unchanged := func(when string) {
		t.Helper()
		var now corev1.Secret
		if err := cluster.Client.Get(ctx, key, &now); err != nil {
			t.Fatal(err)
		}
		for k, v := range orig.Data {
			if string(now.Data[k]) != string(v) {
				t.Fatalf("secret key %s changed after %s", k, when)
			}
		}
	}

	// An upgrade (plan change).
	s := getStore(t, "secret-shop")
	s.Spec.Plan = v1alpha1.PlanMedium
	if err := cluster.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "upgrade to medium", func() (bool, error) {
		s := getStore(t, "secret-shop")
		return s.Status.Phase == v1alpha1.PhaseReady && s.Status.Release.Revision >= 2 && s.Status.ObservedGeneration == s.Generation,
			fmt.Errorf("phase %s revision %d observed %d/%d conditions %+v", s.Status.Phase, s.Status.Release.Revision, s.Status.ObservedGeneration, s.Generation, s.Status.Conditions)
	})
	unchanged("an upgrade")

	// A drift repair.
	deleteDeployment(t, client.ObjectKey{Namespace: key.Namespace, Name: "storefront"})(30 * time.Second)
	unchanged("a drift repair")

	// An operator restart.
	operator.stop()
	var err error
	if operator, err = startOperator("primary"); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, "secret-shop", v1alpha1.PhaseReady, 60*time.Second)
	time.Sleep(2 * time.Second)
	unchanged("an operator restart")

	// No secret value in the Store, its events or the operator's logs.
	s = getStore(t, "secret-shop")
	storeJSON, _ := json.Marshal(s)
	var events corev1.EventList
	if err := cluster.Client.List(ctx, &events); err != nil {
		t.Fatal(err)
	}
	eventsJSON, _ := json.Marshal(events)
	logs := operator.log()
	for k, v := range orig.Data {
		for where, text := range map[string]string{"Store": string(storeJSON), "events": string(eventsJSON), "operator log": logs} {
			if strings.Contains(text, string(v)) {
				t.Errorf("secret %s appears in the %s", k, where)
			}
		}
	}
	deleteStore(t, "secret-shop")
}

func TestDeletionLeavesNothingBehind(t *testing.T) {
	suite(t)
	ctx := context.Background()
	createStore(t, newStore("gone-shop"))
	waitPhase(t, "gone-shop", v1alpha1.PhaseReady, 90*time.Second)
	if err := cluster.Client.Delete(ctx, getStore(t, "gone-shop")); err != nil {
		t.Fatal(err)
	}
	// The store shows Deleting while it goes.
	eventually(t, 10*time.Second, "phase Deleting", func() (bool, error) {
		s := &v1alpha1.Store{}
		err := cluster.Client.Get(ctx, client.ObjectKey{Name: "gone-shop"}, s)
		return apierrors.IsNotFound(err) || s.Status.Phase == v1alpha1.PhaseDeleting, nil
	})
	deleteStore(t, "gone-shop")
	if err := cluster.Client.Get(ctx, client.ObjectKey{Name: "store-gone-shop"}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace left behind: %v", err)
	}
	var pvs corev1.PersistentVolumeList
	if err := cluster.Client.List(ctx, &pvs); err != nil {
		t.Fatal(err)
	}
	for _, pv := range pvs.Items {
		if pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.Namespace == "store-gone-shop" {
			t.Errorf("PersistentVolume %s left behind", pv.Name)
		}
	}
	var nss corev1.NamespaceList
	if err := cluster.Client.List(ctx, &nss, client.MatchingLabels{v1alpha1.StoreLabel: "gone-shop"}); err != nil {
		t.Fatal(err)
	}
	if len(nss.Items) != 0 {
		t.Errorf("labelled namespaces left: %d", len(nss.Items))
	}
}

func TestActivityLogIsBoundedAndOrdered(t *testing.T) {
	suite(t)
	createStore(t, newStore("busy-shop"))
	waitPhase(t, "busy-shop", v1alpha1.PhaseReady, 90*time.Second)
	key := client.ObjectKey{Namespace: "store-busy-shop", Name: "storefront"}
	// Each repair adds DRIFT_DETECTED and DRIFT_CORRECTED: 5 rounds overflow the ring.
	for i := 0; i < 5; i++ {
		deleteDeployment(t, key)(10 * time.Second)
		waitCorrections(t, "busy-shop", int64(i+1))
	}
	s := getStore(t, "busy-shop")
	if n := len(s.Status.ActivityLog); n != v1alpha1.ActivityLogSize {
		t.Fatalf("activity log has %d entries, want %d", n, v1alpha1.ActivityLogSize)
	}
	if s.Status.ActivityLog[0].Event == v1alpha1.EventProvisioningStart {
		t.Errorf("oldest entry not dropped: %+v", s.Status.ActivityLog)
	}
	for i := 1; i < len(s.Status.ActivityLog); i++ {
		if s.Status.ActivityLog[i].Timestamp.Before(&s.Status.ActivityLog[i-1].Timestamp) {
			t.Errorf("activity log out of order at %d", i)
		}
	}
	// The transitions are the Store's Kubernetes Events too (kubectl
	// describe store): repeats counted, none dropped by the recorder's spam
	// filter (its default let 25 a store through, then one per 5 minutes).
	eventually(t, 30*time.Second, "the Store's Events", func() (bool, error) {
		var events corev1.EventList
		if err := cluster.Client.List(context.Background(), &events, client.InNamespace("default"),
			client.MatchingFields{"involvedObject.kind": "Store", "involvedObject.name": "busy-shop"}); err != nil {
			return false, err
		}
		counts := map[string]int32{}
		for _, e := range events.Items {
			if e.Source.Component != reconciler.FieldManager {
				return false, fmt.Errorf("event %s from %q, want %q", e.Reason, e.Source.Component, reconciler.FieldManager)
			}
			counts[e.Reason+"/"+e.Type] += max(e.Count, 1)
		}
		for reason, want := range map[string]int32{
			v1alpha1.EventProvisioningStart + "/Normal": 1, v1alpha1.EventHelmInstalled + "/Normal": 1,
			v1alpha1.EventDriftDetected + "/Warning": 5, v1alpha1.EventDriftCorrected + "/Normal": 5,
		} {
			if counts[reason] != want {
				return false, fmt.Errorf("%s: %d events, want %d (all: %v)", reason, counts[reason], want, counts)
			}
		}
		if counts[v1alpha1.EventReady+"/Normal"] == 0 {
			return false, fmt.Errorf("no %s event (all: %v)", v1alpha1.EventReady, counts)
		}
		return true, nil
	})
	deleteStore(t, "busy-shop")
}

// TestStuckDeletionSaysWhy holds the namespace with a foreign finalizer: the
// Store stays Deleting and its Ready condition quotes the namespace's reason.
func TestStuckDeletionSaysWhy(t *testing.T) {
	suite(t)
	ctx := context.Background()
	createStore(t, newStore("held-shop"))
	waitPhase(t, "held-shop", v1alpha1.PhaseReady, 90*time.Second)
	held := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace: "store-held-shop", Name: "held", Finalizers: []string{"example.com/hold"},
	}}
	if err := cluster.Client.Create(ctx, held); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Client.Delete(ctx, getStore(t, "held-shop")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "Ready quoting the namespace's remaining finalizers", func() (bool, error) {
		s := getStore(t, "held-shop")
		c := condition(s, v1alpha1.ReadyCondition)
		return s.Status.Phase == v1alpha1.PhaseDeleting && c != nil && c.Reason == v1alpha1.ReasonDeleting &&
			strings.Contains(c.Message, "waiting for namespace store-held-shop to be deleted") &&
			strings.Contains(c.Message, "example.com/hold"), fmt.Errorf("%+v", c)
	})
	orig := held.DeepCopy()
	held.Finalizers = nil
	if err := cluster.Client.Patch(ctx, held, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	deleteStore(t, "held-shop")
}

// TestHelmRecordRemovedByHandIsRewritten: the operator's memo of a release
// never outlives Helm's own record. Someone deleting the release's Secrets
// (what `helm uninstall` does to the record) is seen at the next check and
// the release is installed again, so `helm list` shows the store.
func TestHelmRecordRemovedByHandIsRewritten(t *testing.T) {
	suite(t)
	ctx := context.Background()
	createStore(t, newStore("record-shop"))
	waitPhase(t, "record-shop", v1alpha1.PhaseReady, 90*time.Second)
	ns, record := client.InNamespace("store-record-shop"), client.MatchingLabels{"owner": "helm", "name": "record-shop"}
	if err := cluster.Client.DeleteAllOf(ctx, &corev1.Secret{}, ns, record); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Helm's record of record-shop written again", func() (bool, error) {
		var l corev1.SecretList
		err := cluster.Client.List(ctx, &l, ns, record)
		return err == nil && len(l.Items) > 0, err
	})
	waitPhase(t, "record-shop", v1alpha1.PhaseReady, 30*time.Second)
	deleteStore(t, "record-shop")
}
