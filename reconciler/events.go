package reconciler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Event recording keeps a bounded memory, whatever the fleet's size.
// controller-runtime's recorder (events/v1) keeps every Event it sent for
// six to twelve minutes, to count repeats of it: after a fleet was created,
// its creation Events were the largest part of the operator's memory per
// store besides the cache (7 KB a store, measured at 250). client-go's core/v1
// broadcaster counts repeats in caches of a fixed number of keys and keeps
// no Event once sent. Both write the same Event objects (`kubectl events`,
// `kubectl describe store` show them alike).
const (
	// eventKeysKept is how many recent Events' keys each of the
	// correlator's caches holds: enough for the repeats of a burst of store
	// transitions to be counted, not one per store of a large fleet.
	eventKeysKept = 1024
	// A store's Events are its transitions, a few per change: its spam
	// filter (per store and type) lets a burst of eventBurst through, then
	// one every 1/eventRefill seconds. The default (25, then one per five
	// minutes) dropped the Events of a store healed twenty times in a row.
	eventBurst  = 100
	eventRefill = 0.1
)

// newEventRecorder records Events for the operator, and returns the
// manager runnable that stops its broadcaster with the manager.
func newEventRecorder(cfg *rest.Config, scheme *runtime.Scheme) (record.EventRecorder, manager.Runnable, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("event recorder: %w", err)
	}
	b := record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{
		LRUCacheSize: eventKeysKept, BurstSize: eventBurst, QPS: eventRefill,
	}))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	stop := manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		b.Shutdown()
		return nil
	})
	return b.NewRecorder(scheme, corev1.EventSource{Component: FieldManager}), stop, nil
}
