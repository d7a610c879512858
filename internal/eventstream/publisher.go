package eventstream

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

var (
	eventsPublished = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "storefleet_events_published_total",
		Help: "Store events written to Redis Streams.",
	})
	eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "storefleet_events_dropped_total",
		Help: "Store events not written to Redis (Redis unreachable or too slow); the status activity log still has them.",
	})
)

// Metrics are the Publisher's counters, for the operator's metrics registry.
func Metrics() []prometheus.Collector {
	return []prometheus.Collector{eventsPublished, eventsDropped}
}

// Publisher writes store events to Redis: XADD to the store's stream and to
// the fleet stream (both trimmed to about MaxLen entries), and PUBLISH on
// the live channel. Publish only queues: a writer goroutine talks to Redis,
// so Redis being slow or down never blocks a reconcile. When the queue is
// full or Redis fails, events are dropped and counted; an outage is logged
// once, and its end too.
type Publisher struct {
	client *redis.Client
	maxLen int64
	queue  chan v1alpha1.StoreEvent
	log    *slog.Logger

	mu     sync.Mutex
	outage bool
}

// NewPublisher connects lazily to url (redis://host:port/db).
func NewPublisher(url string, maxLen int64, log *slog.Logger) (*Publisher, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, time.Second, time.Second
	opts.MaxRetries = 0
	if maxLen <= 0 {
		maxLen = 1000
	}
	return &Publisher{client: redis.NewClient(opts), maxLen: maxLen, queue: make(chan v1alpha1.StoreEvent, 4096), log: log}, nil
}

// Publish queues events for Redis; it never blocks.
func (p *Publisher) Publish(events ...v1alpha1.StoreEvent) {
	for _, e := range events {
		select {
		case p.queue <- e:
		default:
			eventsDropped.Inc()
			p.failed("publish queue full")
		}
	}
}

// Start writes queued events until ctx ends (a manager Runnable).
func (p *Publisher) Start(ctx context.Context) error {
	defer p.client.Close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-p.queue:
			if err := p.write(ctx, e); err != nil {
				eventsDropped.Inc()
				p.failed(err.Error())
				continue
			}
			eventsPublished.Inc()
			p.recovered()
		}
	}
}

// NeedLeaderElection: every replica publishes what it reconciles (only the
// leader reconciles).
func (p *Publisher) NeedLeaderElection() bool { return false }

func (p *Publisher) write(ctx context.Context, e v1alpha1.StoreEvent) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	data, err := encode(e)
	if err != nil {
		return err
	}
	if e.UID == "" {
		return fmt.Errorf("event %s of store %s has no store UID", e.Type, e.Store)
	}
	id, err := p.client.XAdd(ctx, &redis.XAddArgs{
		Stream: StoreStream(e.UID), MaxLen: p.maxLen, Approx: true,
		Values: map[string]any{field: data},
	}).Result()
	if err != nil {
		return err
	}
	// The fleet entry and the announcement carry the store stream ID, so a
	// reader of either can resume the store's own stream.
	e.ID = id
	data, _ = encode(e)
	pipe := p.client.Pipeline()
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: FleetStream, MaxLen: p.maxLen * 10, Approx: true, Values: map[string]any{field: data}})
	pipe.Publish(ctx, LiveChannel, data)
	if e.Type == v1alpha1.EventDeleted {
		// The store is gone: its stream goes too, after a grace period.
		pipe.Expire(ctx, StoreStream(e.UID), DeletedStreamTTL)
	}
	_, err = pipe.Exec(ctx)
	return err
}

func (p *Publisher) failed(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.outage {
		p.outage = true
		p.log.Warn("Store events are not reaching Redis; they are dropped (and counted) until it is back", "reason", reason)
	}
}

func (p *Publisher) recovered() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.outage {
		p.outage = false
		p.log.Info("Store events reach Redis again")
	}
}
