package openapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// Feed delivers store events to the API's streams: from Redis when it is
// configured and reachable, otherwise from the informer's watch of Stores.
type Feed interface {
	// Subscribe delivers live events accepted by filter until cancel is
	// called; the channel is closed when the feed can no longer deliver
	// (the reason is then returned by Err).
	Subscribe(filter func(v1alpha1.StoreEvent) bool) (events <-chan v1alpha1.StoreEvent, cancel func())
	// Replay returns the events after id, of one store or (store "") of
	// every store; ok is false when id cannot be resumed from here.
	Replay(ctx context.Context, store, id string) (events []v1alpha1.StoreEvent, ok bool, err error)
	// Since returns a store's latest events with a sequence number above seq
	// (what happened between a snapshot and the subscription).
	Since(ctx context.Context, store string, seq int64) ([]v1alpha1.StoreEvent, error)
	// Healthy reports whether the feed delivers now.
	Healthy() bool
	// Name says where the events come from, for clients and logs.
	Name() string
}

// hub fans events out to subscribers. A subscriber that cannot keep up is
// closed (its client reconnects and resumes) rather than slowing the others.
type hub struct {
	mu   sync.Mutex
	next int
	subs map[int]*subscriber
}

type subscriber struct {
	ch     chan v1alpha1.StoreEvent
	filter func(v1alpha1.StoreEvent) bool
}

func newHub() *hub { return &hub{subs: map[int]*subscriber{}} }

func (h *hub) subscribe(filter func(v1alpha1.StoreEvent) bool) (<-chan v1alpha1.StoreEvent, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	s := &subscriber{ch: make(chan v1alpha1.StoreEvent, 256), filter: filter}
	h.subs[id] = s
	return s.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[id]; ok {
			delete(h.subs, id)
			close(s.ch)
		}
	}
}

func (h *hub) dispatch(e v1alpha1.StoreEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, s := range h.subs {
		if !s.filter(e) {
			continue
		}
		select {
		case s.ch <- e:
		default:
			delete(h.subs, id)
			close(s.ch)
		}
	}
}

// closeAll ends every subscription (the feed stopped delivering).
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, s := range h.subs {
		delete(h.subs, id)
		close(s.ch)
	}
}

// WatchFeed turns the Store informer's updates into events: the activity
// entries an update adds, in order. IDs are the entries' sequence numbers,
// so a store stream resumes from the ring (its last 15 entries).
type WatchFeed struct {
	hub   *hub
	cache *StoreCache
}

// NewWatchFeed registers on the cache's Store informer.
func NewWatchFeed(ctx context.Context, c *StoreCache) (*WatchFeed, error) {
	f := &WatchFeed{hub: newHub(), cache: c}
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
					f.hub.dispatch(ev)
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
				f.hub.dispatch(ev)
			}
		},
	})
	return f, err
}

func (f *WatchFeed) Subscribe(filter func(v1alpha1.StoreEvent) bool) (<-chan v1alpha1.StoreEvent, func()) {
	return f.hub.subscribe(filter)
}

func (f *WatchFeed) Healthy() bool { return true }

// Since has nothing to add: the watch updates the cache before it
// dispatches, so a snapshot from the cache already holds what came before.
func (f *WatchFeed) Since(context.Context, string, int64) ([]v1alpha1.StoreEvent, error) {
	return nil, nil
}
func (f *WatchFeed) Name() string { return "cluster watch" }

// Replay resumes a store stream from the activity ring, when the entry
// after id is still in it.
func (f *WatchFeed) Replay(ctx context.Context, store, id string) ([]v1alpha1.StoreEvent, bool, error) {
	seq, err := strconv.ParseInt(id, 10, 64)
	if err != nil || store == "" {
		return nil, false, nil
	}
	s, err := f.cache.Get(ctx, store)
	if err != nil || s == nil {
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

// RedisFeed reads the fleet stream (one blocking XREAD for the whole API
// process) and fans it out. When Redis fails, every subscription ends, the
// feed reports unhealthy (new streams use the watch) and it retries.
type RedisFeed struct {
	client  *redis.Client
	hub     *hub
	healthy atomic.Bool
	log     *slog.Logger
}

// NewRedisFeed prepares a feed from url; Start runs it.
func NewRedisFeed(url string, log *slog.Logger) (*RedisFeed, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opts.DialTimeout = time.Second
	opts.MaxRetries = 0
	return &RedisFeed{client: redis.NewClient(opts), hub: newHub(), log: log}, nil
}

// Start reads the fleet stream until ctx ends.
func (f *RedisFeed) Start(ctx context.Context) {
	defer f.client.Close()
	last := "$"
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if last == "$" {
			// Anchor at the current end, so a reconnect misses nothing
			// between reads.
			if msgs, err := f.client.XRevRangeN(ctx, v1alpha1.FleetStream, "+", "-", 1).Result(); err == nil {
				if len(msgs) > 0 {
					last = msgs[0].ID
				} else {
					last = "0-0"
				}
			} else {
				f.down(ctx, err, &backoff)
				continue
			}
		}
		if !f.healthy.Swap(true) {
			f.log.Info("Event streams read from Redis")
		}
		backoff = 100 * time.Millisecond
		res, err := f.client.XRead(ctx, &redis.XReadArgs{Streams: []string{v1alpha1.FleetStream, last}, Block: 5 * time.Second, Count: 100}).Result()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			f.down(ctx, err, &backoff)
			last = "$"
			continue
		}
		for _, stream := range res {
			for _, m := range stream.Messages {
				last = m.ID
				if e, ok := decodeEvent(m); ok {
					f.hub.dispatch(e)
				}
			}
		}
	}
}

func (f *RedisFeed) down(ctx context.Context, err error, backoff *time.Duration) {
	if ctx.Err() != nil {
		return
	}
	if f.healthy.Swap(false) {
		f.log.Warn("Redis unreachable: open event streams end, new ones follow the cluster watch", "error", err)
	}
	f.hub.closeAll()
	select {
	case <-ctx.Done():
	case <-time.After(*backoff):
	}
	*backoff = min(*backoff*2, 5*time.Second)
}

// decodeEvent reads a stream entry; a store-stream entry's ID is the event's
// ID, a fleet entry carries it in the payload.
func decodeEvent(m redis.XMessage) (v1alpha1.StoreEvent, bool) {
	var e v1alpha1.StoreEvent
	s, _ := m.Values["event"].(string)
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return e, false
	}
	if e.ID == "" {
		e.ID = m.ID
	}
	return e, true
}

func (f *RedisFeed) Subscribe(filter func(v1alpha1.StoreEvent) bool) (<-chan v1alpha1.StoreEvent, func()) {
	return f.hub.subscribe(filter)
}

func (f *RedisFeed) Healthy() bool { return f.healthy.Load() }

// Since reads the end of the store's stream: the operator publishes after
// saving the status, so an event can reach Redis before the API's cache.
func (f *RedisFeed) Since(ctx context.Context, store string, seq int64) ([]v1alpha1.StoreEvent, error) {
	msgs, err := f.client.XRevRangeN(ctx, v1alpha1.StoreStream(store), "+", "-", 50).Result()
	if err != nil {
		return nil, err
	}
	var out []v1alpha1.StoreEvent
	for i := len(msgs) - 1; i >= 0; i-- {
		if e, ok := decodeEvent(msgs[i]); ok && e.Seq > seq {
			e.ID = msgs[i].ID
			out = append(out, e)
		}
	}
	return out, nil
}
func (f *RedisFeed) Name() string { return "redis" }

// Replay reads the store's stream after id. For the fleet (store "") there
// is no single position to resume from: the client gets a fresh snapshot.
func (f *RedisFeed) Replay(ctx context.Context, store, id string) ([]v1alpha1.StoreEvent, bool, error) {
	if store == "" || !validStreamID(id) {
		return nil, false, nil
	}
	msgs, err := f.client.XRange(ctx, v1alpha1.StoreStream(store), "("+id, "+").Result()
	if err != nil {
		return nil, false, err
	}
	out := make([]v1alpha1.StoreEvent, 0, len(msgs))
	for _, m := range msgs {
		if e, ok := decodeEvent(m); ok {
			e.ID = m.ID
			out = append(out, e)
		}
	}
	return out, true, nil
}

func validStreamID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ok && err1 == nil && err2 == nil
}
