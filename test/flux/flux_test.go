package flux_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/test/testenv"
)

var fluxOnce sync.Once

// requireFlux installs Flux (once) for the tests that need it.
func requireFlux(t testing.TB) {
	t.Helper()
	var err error
	fluxOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err = cluster.StartFlux(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func createStore(t *testing.T, name string, mutate ...func(*v1alpha1.Store)) *v1alpha1.Store {
	t.Helper()
	s := &v1alpha1.Store{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.StoreSpec{Engine: v1alpha1.EngineMedusa, Owner: "alice"},
	}
	for _, m := range mutate {
		m(s)
	}
	if err := cluster.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func getStore(t *testing.T, name string) *v1alpha1.Store {
	t.Helper()
	var s v1alpha1.Store
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func waitReady(t *testing.T, name string, timeout time.Duration) *v1alpha1.Store {
	t.Helper()
	var s v1alpha1.Store
	testenv.Eventually(t, timeout, "store "+name+" Ready", func() (bool, error) {
		err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: name}, &s)
		return err == nil && s.Status.Phase == v1alpha1.PhaseReady && s.Status.ObservedGeneration == s.Generation, err
	}, func() string { return fmt.Sprintf("status: %+v\noperator log:\n%s", s.Status.Conditions, tail(opLog)) })
	return &s
}

func helmRelease(t *testing.T, name string) (*helmv2.HelmRelease, error) {
	t.Helper()
	var hr helmv2.HelmRelease
	err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: platformNamespace, Name: name}, &hr)
	return &hr, err
}

func condition(s *v1alpha1.Store, t string) *metav1.Condition {
	return apimeta.FindStatusCondition(s.Status.Conditions, t)
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(devcluster.DefaultTools().Bin("kubectl"), append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestAutoModeFollowsFlux: without Flux a store is installed with the Helm
// SDK; once Flux is installed (no operator restart) new stores become Flux
// HelmReleases, and the first store stays where it is.
func TestAutoModeFollowsFlux(t *testing.T) {
	createStore(t, "before-flux")
	s := waitReady(t, "before-flux", 90*time.Second)
	if s.Status.Release == nil || s.Status.Release.Mode != v1alpha1.DeliveryHelm {
		t.Fatalf("without Flux: release %+v, want helm", s.Status.Release)
	}

	requireFlux(t)
	// Auto mode rechecks the CRDs every 10 s.
	time.Sleep(11 * time.Second)
	createStore(t, "after-flux")
	s = waitReady(t, "after-flux", 120*time.Second)
	if s.Status.Release == nil || s.Status.Release.Mode != v1alpha1.DeliveryFlux || s.Status.Release.Revision != 1 {
		t.Fatalf("with Flux: release %+v, want flux revision 1", s.Status.Release)
	}
	for _, c := range []string{v1alpha1.NamespaceReadyCondition, v1alpha1.HelmInstalledCondition, v1alpha1.DatabaseReadyCondition, v1alpha1.BackendReadyCondition, v1alpha1.StorefrontReadyCondition, v1alpha1.ReadyCondition} {
		if cond := condition(s, c); cond == nil || cond.Status != metav1.ConditionTrue {
			t.Errorf("condition %s = %+v", c, cond)
		}
	}
	hr, err := helmRelease(t, "after-flux")
	if err != nil {
		t.Fatal(err)
	}
	ready := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
	if ready == nil || ready.Status != metav1.ConditionTrue {
		t.Fatalf("HelmRelease Ready %+v", ready)
	}
	// Flux's message is passed up verbatim.
	if msg := condition(s, v1alpha1.HelmInstalledCondition).Message; msg != ready.Message {
		t.Errorf("HelmInstalled message %q, HelmRelease says %q", msg, ready.Message)
	}
	if hr.Spec.TargetNamespace != "store-after-flux" || hr.Spec.StorageNamespace != "store-after-flux" || hr.Spec.ReleaseName != "after-flux" ||
		hr.Spec.MaxHistory == nil || *hr.Spec.MaxHistory != 5 || hr.Spec.DriftDetection == nil || hr.Spec.DriftDetection.Mode != helmv2.DriftDetectionEnabled ||
		hr.Spec.Install.Strategy.Name != "RetryOnFailure" || hr.Spec.Upgrade.Strategy.Name != "RetryOnFailure" {
		t.Errorf("HelmRelease spec %+v", hr.Spec)
	}
	if len(hr.OwnerReferences) != 1 || hr.OwnerReferences[0].UID != s.UID || hr.Labels[v1alpha1.StoreLabel] != "after-flux" {
		t.Errorf("HelmRelease owner %+v labels %v", hr.OwnerReferences, hr.Labels)
	}
	// kubectl shows what `flux get hr` shows: Ready with the chart revision.
	out := kubectl(t, "get", "helmreleases", "-A")
	if !strings.Contains(out, "after-flux") || !strings.Contains(out, "True") || !strings.Contains(out, "medusa-store@") {
		t.Errorf("kubectl get helmreleases -A:\n%s", out)
	}
	// No silent switch: the first store is still a Helm SDK release.
	if s := getStore(t, "before-flux"); s.Status.Release.Mode != v1alpha1.DeliveryHelm {
		t.Errorf("before-flux moved to %s without being asked", s.Status.Release.Mode)
	}
	if _, err := helmRelease(t, "before-flux"); !apierrors.IsNotFound(err) {
		t.Errorf("before-flux got a HelmRelease: %v", err)
	}
}

// TestMissingChartVersionShowsFluxsMessage: a chart version the source does
// not have fails with source-controller's words, and fixing it recovers.
func TestMissingChartVersionShowsFluxsMessage(t *testing.T) {
	requireFlux(t)
	createStore(t, "bad-version", func(s *v1alpha1.Store) { s.Spec.ChartVersion = "9.9.9" })
	var s v1alpha1.Store
	var hrMsg string
	testenv.Eventually(t, 90*time.Second, "HelmInstalled False with Flux's message", func() (bool, error) {
		if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: "bad-version"}, &s); err != nil {
			return false, err
		}
		hr, err := helmRelease(t, "bad-version")
		if err != nil {
			return false, client.IgnoreNotFound(err)
		}
		ready := apimeta.FindStatusCondition(hr.Status.Conditions, meta.ReadyCondition)
		c := condition(&s, v1alpha1.HelmInstalledCondition)
		if ready == nil || c == nil || ready.Status != metav1.ConditionFalse || !strings.Contains(ready.Message, "9.9.9") {
			return false, nil
		}
		hrMsg = ready.Message
		return c.Status == metav1.ConditionFalse && c.Message == ready.Message, nil
	}, func() string { return fmt.Sprintf("store conditions %+v", s.Status.Conditions) })
	t.Logf("Flux said: %s", hrMsg)

	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.ChartVersion = ""
	if err := cluster.Client.Patch(context.Background(), &s, patch); err != nil {
		t.Fatal(err)
	}
	waitReady(t, "bad-version", 120*time.Second)
}

// TestCredentialsStayOutOfValuesAndAcrossUpgrades: the HelmRelease names the
// credentials Secret but carries no secret value, and an upgrade through
// Flux leaves the Secret as it was.
func TestCredentialsStayOutOfValuesAndAcrossUpgrades(t *testing.T) {
	requireFlux(t)
	ctx := context.Background()
	createStore(t, "creds")
	s := waitReady(t, "creds", 120*time.Second)
	var secret corev1.Secret
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: "store-creds", Name: "store-credentials"}, &secret); err != nil {
		t.Fatal(err)
	}
	hr, err := helmRelease(t, "creds")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(hr)
	for k, v := range secret.Data {
		if len(v) >= 8 && strings.Contains(string(raw), string(v)) {
			t.Errorf("HelmRelease carries the value of secret key %s", k)
		}
	}
	if !strings.Contains(string(hr.Spec.Values.Raw), `"existingSecret":"store-credentials"`) {
		t.Errorf("values do not reference the credentials Secret: %s", hr.Spec.Values.Raw)
	}

	patch := client.MergeFrom(s.DeepCopy())
	two := int32(2)
	s.Spec.Values = &v1alpha1.StoreValues{StorefrontReplicas: &two}
	if err := cluster.Client.Patch(ctx, s, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 120*time.Second, "upgrade to revision 2 through Flux", func() (bool, error) {
		s = getStore(t, "creds")
		return s.Status.Release != nil && s.Status.Release.Revision == 2 && s.Status.Phase == v1alpha1.PhaseReady && s.Status.ObservedGeneration == s.Generation, nil
	}, func() string { return fmt.Sprintf("%+v %+v", s.Status.Release, s.Status.Conditions) })
	if !hasEvent(s, v1alpha1.EventHelmUpgraded) {
		t.Errorf("no %s in the activity log: %+v", v1alpha1.EventHelmUpgraded, s.Status.ActivityLog)
	}
	var after corev1.Secret
	if err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(&secret), &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != secret.ResourceVersion {
		t.Errorf("credentials Secret changed across the upgrade")
	}
}

// TestHandOverKeepsTheRelease moves a Helm SDK store to Flux and back: the
// same release is upgraded each time (revision grows), never uninstalled,
// and the database volume claim is the same object throughout.
func TestHandOverKeepsTheRelease(t *testing.T) {
	requireFlux(t)
	ctx := context.Background()
	createStore(t, "moving", func(s *v1alpha1.Store) { s.Annotations = map[string]string{v1alpha1.DeliveryAnnotation: "helm"} })
	s := waitReady(t, "moving", 90*time.Second)
	if s.Status.Release.Mode != v1alpha1.DeliveryHelm {
		t.Fatalf("mode %s, want helm (asked by annotation)", s.Status.Release.Mode)
	}
	var pvc corev1.PersistentVolumeClaim
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: "store-moving", Name: "data-postgres-0"}, &pvc); err != nil {
		t.Fatal(err)
	}
	revision := s.Status.Release.Revision

	for _, to := range []v1alpha1.DeliveryMode{v1alpha1.DeliveryFlux, v1alpha1.DeliveryHelm} {
		patch := client.MergeFrom(s.DeepCopy())
		s.Annotations[v1alpha1.DeliveryAnnotation] = string(to)
		if err := cluster.Client.Patch(ctx, s, patch); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 120*time.Second, "store moved to "+string(to), func() (bool, error) {
			s = getStore(t, "moving")
			r := s.Status.Release
			return r != nil && r.Mode == to && r.Revision > revision && s.Status.Phase == v1alpha1.PhaseReady, nil
		}, func() string { return fmt.Sprintf("%+v %+v\n%s", s.Status.Release, s.Status.Conditions, tail(opLog)) })
		revision = s.Status.Release.Revision
		var now corev1.PersistentVolumeClaim
		if err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(&pvc), &now); err != nil || now.UID != pvc.UID {
			t.Fatalf("after moving to %s the database claim is not the same object (%v)", to, err)
		}
		if !hasEvent(s, v1alpha1.EventDeliveryHandover) {
			t.Errorf("no %s event", v1alpha1.EventDeliveryHandover)
		}
	}
	if _, err := helmRelease(t, "moving"); !apierrors.IsNotFound(err) {
		t.Errorf("HelmRelease left after moving back to helm: %v", err)
	}
}

// TestDeletionUninstallsThroughFlux: deleting a Flux store deletes its
// HelmRelease, helm-controller uninstalls, then the namespace goes.
func TestDeletionUninstallsThroughFlux(t *testing.T) {
	requireFlux(t)
	ctx := context.Background()
	createStore(t, "doomed")
	s := waitReady(t, "doomed", 120*time.Second)
	if s.Status.Release.Mode != v1alpha1.DeliveryFlux {
		t.Fatalf("mode %s", s.Status.Release.Mode)
	}
	if err := cluster.Client.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 120*time.Second, "store, HelmRelease and namespace gone", func() (bool, error) {
		err1 := cluster.Client.Get(ctx, client.ObjectKey{Name: "doomed"}, &v1alpha1.Store{})
		_, err2 := helmRelease(t, "doomed")
		err3 := cluster.Client.Get(ctx, client.ObjectKey{Name: "store-doomed"}, &corev1.Namespace{})
		return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2) && apierrors.IsNotFound(err3), nil
	}, func() string { return tail(opLog) })
}

func hasEvent(s *v1alpha1.Store, event string) bool {
	for _, e := range s.Status.ActivityLog {
		if e.Event == event {
			return true
		}
	}
	return false
}

// TestHelmControllerDownIsReported runs last: with helm-controller stopped, a
// new store and a deletion say that helm-controller may not be running
// instead of waiting silently.
func TestHelmControllerDownIsReported(t *testing.T) {
	requireFlux(t)
	ctx := context.Background()
	createStore(t, "lonely")
	waitReady(t, "lonely", 120*time.Second)
	if err := cluster.StopFluxController("helm-controller"); err != nil {
		t.Fatal(err)
	}
	createStore(t, "orphan")
	testenv.Eventually(t, 60*time.Second, "HelmInstalled asks about helm-controller", func() (bool, error) {
		c := condition(getStore(t, "orphan"), v1alpha1.HelmInstalledCondition)
		return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "is helm-controller running?"), nil
	})
	if err := cluster.Client.Delete(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "lonely"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "deletion asks about helm-controller", func() (bool, error) {
		s := getStore(t, "lonely")
		c := condition(s, v1alpha1.ReadyCondition)
		return s.Status.Phase == v1alpha1.PhaseDeleting && c != nil && strings.Contains(c.Message, "is helm-controller running?"), nil
	})
}

// TestForeignHelmReleaseIsNeitherOverwrittenNorDeleted: a HelmRelease that
// carries a store's name and labels but is not controlled by that Store (by
// UID) is not taken over by the store's create, nor deleted by its deletion.
func TestForeignHelmReleaseIsNeitherOverwrittenNorDeleted(t *testing.T) {
	requireFlux(t)
	ctx := context.Background()
	const name = "squatter"
	foreign := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: platformNamespace, Labels: map[string]string{
			v1alpha1.StoreLabel: name, v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue,
		}},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Suspend:  true,
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart: "someone-elses-chart", SourceRef: helmv2.CrossNamespaceObjectReference{Kind: "HelmRepository", Name: "elsewhere"},
			}},
		},
	}
	if err := cluster.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cluster.Client.Delete(ctx, foreign) }()
	generation := foreign.Generation
	createStore(t, name, func(s *v1alpha1.Store) {
		s.Annotations = map[string]string{v1alpha1.DeliveryAnnotation: string(v1alpha1.DeliveryFlux)}
	})
	testenv.Eventually(t, 60*time.Second, "store refusing the foreign HelmRelease", func() (bool, error) {
		c := condition(getStore(t, name), v1alpha1.ReadyCondition)
		return c != nil && strings.Contains(c.Message, "neither overwritten nor deleted"), fmt.Errorf("Ready: %+v", c)
	}, func() string { return tail(opLog) })
	hr, err := helmRelease(t, name)
	if err != nil {
		t.Fatal(err)
	}
	// helm-controller writes its status and finalizer; the spec is the owner's.
	if hr.Generation != generation || hr.Spec.Chart.Spec.Chart != "someone-elses-chart" || len(hr.OwnerReferences) != 0 || hr.Annotations[v1alpha1.DeliveryAnnotation] != "" {
		t.Errorf("the foreign HelmRelease was changed: generation %d -> %d, chart %s, owners %v", generation, hr.Generation, hr.Spec.Chart.Spec.Chart, hr.OwnerReferences)
	}
	if err := cluster.Client.Delete(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, "store gone", func() (bool, error) {
		err := cluster.Client.Get(ctx, client.ObjectKey{Name: name}, &v1alpha1.Store{})
		return apierrors.IsNotFound(err), err
	}, func() string { return tail(opLog) })
	hr, err = helmRelease(t, name)
	if err != nil || !hr.DeletionTimestamp.IsZero() {
		t.Errorf("the foreign HelmRelease was deleted with the store (err %v)", err)
	}
}
