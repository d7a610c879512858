package reconciler

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// A store's objects change in bursts while it is created (each pod's and
// Deployment's progress, helm-controller's status writes). Each change used
// to reconcile the store; a burst now reconciles it once, after
// wakeCoalescing — while a deletion (drift to heal) still wakes it at once.
func TestABurstOfChangesWakesTheStoreOnce(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("wakes-test")
	defer q.ShutDown()
	h := coalescedWakes(storeForObject)
	ctx := context.Background()
	pod := func(phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "medusa-0", Namespace: "store-shop", Labels: map[string]string{v1alpha1.StoreLabel: "shop"}},
			Status: corev1.PodStatus{Phase: phase}}
	}
	start := time.Now()
	h.Create(ctx, event.CreateEvent{Object: pod("")}, q)
	h.Update(ctx, event.UpdateEvent{ObjectOld: pod(""), ObjectNew: pod(corev1.PodPending)}, q)
	h.Update(ctx, event.UpdateEvent{ObjectOld: pod(corev1.PodPending), ObjectNew: pod(corev1.PodRunning)}, q)
	other := pod(corev1.PodRunning)
	other.Labels[v1alpha1.StoreLabel] = "other"
	h.Update(ctx, event.UpdateEvent{ObjectOld: other, ObjectNew: other}, q)
	if n := q.Len(); n != 0 {
		t.Fatalf("%d requests ready right after the changes, want 0 until the window ends", n)
	}

	got := map[string]int{}
	for len(got) < 2 {
		req, _ := q.Get()
		got[req.Name]++
		q.Done(req)
	}
	if waited := time.Since(start); waited < wakeCoalescing {
		t.Errorf("the burst reconciled after %s, want after the %s window", waited, wakeCoalescing)
	}
	time.Sleep(2 * wakeCoalescing)
	if n := q.Len(); n != 0 || got["shop"] != 1 || got["other"] != 1 {
		t.Errorf("four changes of two stores gave %v and %d more, want one request a store", got, n)
	}

	// A deleted Deployment is drift: the store is reconciled at once.
	deployment := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "medusa", Namespace: "store-shop", Labels: map[string]string{v1alpha1.StoreLabel: "shop"}}}
	h.Delete(ctx, event.DeleteEvent{Object: deployment}, q)
	deleted := time.Now()
	req, _ := q.Get()
	q.Done(req)
	if req.Name != "shop" || time.Since(deleted) > wakeCoalescing/2 {
		t.Errorf("a deletion woke %q after %s, want shop at once", req.Name, time.Since(deleted))
	}
}
