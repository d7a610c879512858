package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/devcluster"
)

// WaitWatched waits until done holds for the objects of list's kind (by
// namespace/name, as last seen), from one LIST and then a watch of their
// changes. The fleet benchmarks wait this way, not by polling: a LIST of
// every Store ten times a second was, at 1000 stores, the API server's
// largest load during the very runs it timed (O(N) per poll, for as long as
// the fleet takes to start).
func WaitWatched(t testing.TB, c *devcluster.Cluster, list client.ObjectList, timeout time.Duration, what string, done func(map[string]client.Object) bool, opts ...client.ListOption) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := waitWatched(ctx, c, list, done, opts...); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func waitWatched(ctx context.Context, c *devcluster.Cluster, list client.ObjectList, done func(map[string]client.Object) bool, opts ...client.ListOption) error {
	wc, err := client.NewWithWatch(c.Config, client.Options{Scheme: c.Client.Scheme(), Mapper: c.Client.RESTMapper()})
	if err != nil {
		return err
	}
	for {
		// (Re)list: at the start, and when the watch ends or its
		// resourceVersion is too old.
		if err := wc.List(ctx, list, opts...); err != nil {
			return err
		}
		items, err := apimeta.ExtractList(list)
		if err != nil {
			return err
		}
		seen := make(map[string]client.Object, len(items))
		for _, it := range items {
			if o, ok := it.(client.Object); ok {
				seen[keyOf(o)] = o
			}
		}
		if done(seen) {
			return nil
		}
		watchOpts := append([]client.ListOption{&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.GetResourceVersion()}}}, opts...)
		w, err := wc.Watch(ctx, list, watchOpts...)
		if err != nil {
			return err
		}
		finished, err := follow(ctx, w, seen, done)
		w.Stop()
		if finished || err != nil {
			return err
		}
	}
}

// follow applies a watch's events to seen until done holds (true), the
// watch ends or expires (false: list again) or ctx ends.
func follow(ctx context.Context, w watch.Interface, seen map[string]client.Object, done func(map[string]client.Object) bool) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%w (%d objects seen)", ctx.Err(), len(seen))
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			switch ev.Type {
			case watch.Error:
				// Expired (410) or broken: a new LIST says where things
				// stand, and fails itself if the API server does.
				return false, nil
			case watch.Bookmark:
				continue
			}
			o, isObject := ev.Object.(client.Object)
			if !isObject {
				continue
			}
			if ev.Type == watch.Deleted {
				delete(seen, keyOf(o))
			} else {
				seen[keyOf(o)] = o
			}
			if done(seen) {
				return true, nil
			}
		}
	}
}

func keyOf(o client.Object) string { return o.GetNamespace() + "/" + o.GetName() }

// countNamed counts the objects whose name starts with prefix and that
// satisfy ok (nil: all of them).
func countNamed(seen map[string]client.Object, prefix string, ok func(client.Object) bool) int {
	n := 0
	for _, o := range seen {
		if strings.HasPrefix(o.GetName(), prefix) && (ok == nil || ok(o)) {
			n++
		}
	}
	return n
}
