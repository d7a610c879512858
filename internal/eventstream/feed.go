package eventstream

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// Feed reads the fleet stream (one blocking XREAD for the whole API
// process) and fans it out. When Redis fails, every subscription ends, the
// feed reports unhealthy (new streams use the cluster watch) and it retries.
type Feed struct {
	client  *redis.Client
	hub     *Hub
	healthy atomic.Bool
	log     *slog.Logger
}

// NewFeed prepares a feed from url; Start runs it.
func NewFeed(url string, log *slog.Logger) (*Feed, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opts.DialTimeout = time.Second
	opts.MaxRetries = 0
	return &Feed{client: redis.NewClient(opts), hub: NewHub(), log: log}, nil
}

// Start reads the fleet stream until ctx ends.
func (f *Feed) Start(ctx context.Context) {
	defer f.client.Close()
	last := "$"
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if last == "$" {
			// Anchor at the current end, so a reconnect misses nothing
			// between reads.
			if msgs, err := f.client.XRevRangeN(ctx, FleetStream, "+", "-", 1).Result(); err == nil {
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
		res, err := f.client.XRead(ctx, &redis.XReadArgs{Streams: []string{FleetStream, last}, Block: 5 * time.Second, Count: 100}).Result()
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
				if e, ok := decode(m); ok {
					f.hub.Dispatch(e)
				}
			}
		}
	}
}

func (f *Feed) down(ctx context.Context, err error, backoff *time.Duration) {
	if ctx.Err() != nil {
		return
	}
	if f.healthy.Swap(false) {
		f.log.Warn("Redis unreachable: open event streams end, new ones follow the cluster watch", "error", err)
	}
	f.hub.CloseAll()
	select {
	case <-ctx.Done():
	case <-time.After(*backoff):
	}
	*backoff = min(*backoff*2, 5*time.Second)
}

// Subscribe delivers live events accepted by filter until cancel is called;
// the channel is closed when Redis fails or the subscriber falls behind.
func (f *Feed) Subscribe(filter func(v1alpha1.StoreEvent) bool) (<-chan v1alpha1.StoreEvent, func()) {
	return f.hub.Subscribe(filter)
}

// Healthy reports whether the last read from Redis succeeded.
func (f *Feed) Healthy() bool { return f.healthy.Load() }

// Since reads the end of the store's stream: the operator publishes after
// saving the status, so an event can reach Redis before the API's cache.
func (f *Feed) Since(ctx context.Context, store *v1alpha1.Store, seq int64) ([]v1alpha1.StoreEvent, error) {
	msgs, err := f.client.XRevRangeN(ctx, StoreStream(store.UID), "+", "-", 50).Result()
	if err != nil {
		return nil, err
	}
	var out []v1alpha1.StoreEvent
	for i := len(msgs) - 1; i >= 0; i-- {
		if e, ok := decode(msgs[i]); ok && e.Seq > seq {
			e.ID = msgs[i].ID
			out = append(out, e)
		}
	}
	return out, nil
}

// Name says where the events come from.
func (f *Feed) Name() string { return "redis" }

// Replay reads the store's stream after id: the stream of this Store object
// (its UID), never of an earlier store of the same name. It resumes only
// when the stream still holds the entry id itself: one trimmed away (MAXLEN),
// lost with a Redis restart or flush, or never there is a gap of unknown
// size, so ok is false and the caller sends a fresh snapshot instead of
// silently skipping what was lost.
func (f *Feed) Replay(ctx context.Context, store *v1alpha1.Store, id string) ([]v1alpha1.StoreEvent, bool, error) {
	if !validID(id) {
		return nil, false, nil
	}
	msgs, err := f.client.XRange(ctx, StoreStream(store.UID), id, "+").Result()
	if err != nil {
		return nil, false, err
	}
	if len(msgs) == 0 || msgs[0].ID != id {
		return nil, false, nil
	}
	msgs = msgs[1:]
	out := make([]v1alpha1.StoreEvent, 0, len(msgs))
	for _, m := range msgs {
		if e, ok := decode(m); ok {
			e.ID = m.ID
			out = append(out, e)
		}
	}
	return out, true, nil
}
