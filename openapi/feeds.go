package openapi

import (
	"context"
	"strconv"
	"time"

	toolscache "k8s.io/client-go/tools/cache"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/eventstream"
)

// Feed delivers store events to the API's streams: from Redis when it is
// configured and reachable (eventstream.Feed), otherwise from the informer's
// watch of Stores (WatchFeed).
type Feed interface {
	// Subscribe delivers live events accepted by filter until cancel is
	// called; the channel is closed when the feed can no longer deliver
	// (the client then reconnects and resumes).
	Subscribe(filter func(v1alpha1.StoreEvent) bool) (events <-chan v1alpha1.StoreEvent, cancel func())
	// Replay returns the store's events after id: this Store object's (by
	// UID), never an earlier store's of the same name; ok is false when id
	// cannot be resumed from here.
	Replay(ctx context.Context, store *v1alpha1.Store, id string) (events []v1alpha1.StoreEvent, ok bool, err error)
	// Since returns a store's latest events with a sequence number above seq
	// (what happened between a snapshot and the subscription).
	Since(ctx context.Context, store *v1alpha1.Store, seq int64) ([]v1alpha1.StoreEvent, error)
	// Healthy reports whether the feed delivers now.
	Healthy() bool
	// Name says where the events come from, for clients and logs.
	Name() string
}

// WatchFeed turns the Store informer's updates into events: the activity
// entries an update adds, in order. IDs are the entries' sequence numbers,
// so a store stream resumes from the ring (its last 15 entries).
type WatchFeed struct {
	hub   *eventstream.Hub
	cache *StoreCache
}

// NewWatchFeed registers on the cache's Store informer.
func NewWatchFeed(ctx context.Context, c *StoreCache) (*WatchFeed, error) {
	f := &WatchFeed{hub: eventstream.NewHub(), cache: c}
	inf, err := c.cache.GetInformer(ctx, &v1alpha1.Store{})
	if err != nil {
		return nil, err
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*v1alpha1.Store)
			n, ok2 := newObj.(*v1alpha1.Store)
			if !ok1 || !ok2 {
				return
			}
			seen := v1alpha1.LastSeq(o.Status.ActivityLog)
			for _, e := range n.Status.ActivityLog {
				if e.Seq > seen {
					ev := v1alpha1.EventOf(n, e)
					ev.ID = strconv.FormatInt(e.Seq, 10)
					f.hub.Dispatch(ev)
				}
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if s, ok := obj.(*v1alpha1.Store); ok {
				ev := v1alpha1.EventOf(s, v1alpha1.ActivityEntry{Event: v1alpha1.EventDeleted, Message: "store " + s.Name + " is gone", Seq: v1alpha1.LastSeq(s.Status.ActivityLog) + 1})
				ev.Time, ev.Phase, ev.ID = time.Now().UTC(), v1alpha1.PhaseDeleting, strconv.FormatInt(ev.Seq, 10)
				f.hub.Dispatch(ev)
			}
		},
	})
	return f, err
}

func (f *WatchFeed) Subscribe(filter func(v1alpha1.StoreEvent) bool) (<-chan v1alpha1.StoreEvent, func()) {
	return f.hub.Subscribe(filter)
}

func (f *WatchFeed) Healthy() bool { return true }

// Since has nothing to add: the watch updates the cache before it
// dispatches, so a snapshot from the cache already holds what came before.
func (f *WatchFeed) Since(context.Context, *v1alpha1.Store, int64) ([]v1alpha1.StoreEvent, error) {
	return nil, nil
}
func (f *WatchFeed) Name() string { return "cluster watch" }

// Replay resumes a store stream from the activity ring, when the entry
// after id is still in it.
func (f *WatchFeed) Replay(ctx context.Context, store *v1alpha1.Store, id string) ([]v1alpha1.StoreEvent, bool, error) {
	seq, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, false, nil
	}
	s, err := f.cache.Get(ctx, store.Name)
	if err != nil || s == nil || s.UID != store.UID {
		return nil, false, err
	}
	log := s.Status.ActivityLog
	if len(log) == 0 || log[0].Seq > seq+1 {
		return nil, false, nil // the entries after id have rotated out
	}
	var out []v1alpha1.StoreEvent
	for _, e := range log {
		if e.Seq > seq {
			ev := v1alpha1.EventOf(s, e)
			ev.ID = strconv.FormatInt(e.Seq, 10)
			out = append(out, ev)
		}
	}
	return out, true, nil
}
