package eventstream

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
)

// startRedis runs a real redis-server for one test: part of make test, not
// of make unit (STOREFLEET_UNIT=1), which starts no server.
func startRedis(t *testing.T) *devcluster.Redis {
	t.Helper()
	if os.Getenv("STOREFLEET_UNIT") != "" {
		t.Skip("redis-server test: not part of make unit")
	}
	r, err := devcluster.StartRedis(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// TestReplayNeverSkipsAGap: resuming a store stream works only from an
// entry the stream still holds. An ID trimmed away by MAXLEN, one lost when
// the stream went (a Redis restart or flush), or one the stream never had
// answers "cannot resume" — the API then sends a fresh snapshot — instead
// of the entries that happen to be left, with a silent hole before them.
func TestReplayNeverSkipsAGap(t *testing.T) {
	srv := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc := redis.NewClient(&redis.Options{Addr: srv.URL()[len("redis://") : len(srv.URL())-len("/0")]})
	defer rc.Close()
	feed, err := NewFeed(srv.URL(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	store := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "acme", UID: "acme-uid"}}
	var ids []string
	for seq := int64(1); seq <= 5; seq++ {
		data, _ := encode(v1alpha1.StoreEvent{Store: "acme", UID: store.UID, Type: v1alpha1.EventReady, Seq: seq})
		id, err := rc.XAdd(ctx, &redis.XAddArgs{Stream: StoreStream(store.UID), Values: map[string]any{field: data}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	replay := func(id string) ([]int64, bool) {
		t.Helper()
		events, ok, err := feed.Replay(ctx, store, id)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, e := range events {
			seqs = append(seqs, e.Seq)
		}
		return seqs, ok
	}

	if seqs, ok := replay(ids[1]); !ok || len(seqs) != 3 || seqs[0] != 3 {
		t.Fatalf("resume after seq 2 of an intact stream: %v, %v; want 3 4 5", seqs, ok)
	}
	if seqs, ok := replay(ids[4]); !ok || len(seqs) != 0 {
		t.Fatalf("resume after the last entry: %v, %v; want nothing to add", seqs, ok)
	}
	if _, ok := replay("1-1"); ok {
		t.Error("an ID the stream never had was resumed from")
	}

	// MAXLEN trimmed seq 1 to 3 away: after seq 1, seq 2 and 3 are lost.
	if err := rc.XTrimMaxLen(ctx, StoreStream(store.UID), 2).Err(); err != nil {
		t.Fatal(err)
	}
	if seqs, ok := replay(ids[0]); ok {
		t.Errorf("resumed after a trimmed entry with %v: seq 2 and 3 silently missing", seqs)
	}
	if seqs, ok := replay(ids[3]); !ok || len(seqs) != 1 || seqs[0] != 5 {
		t.Errorf("resume after a kept entry: %v, %v; want 5", seqs, ok)
	}

	// The stream is gone (Redis restarted without persistence, or flushed).
	if err := rc.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if seqs, ok := replay(ids[4]); ok {
		t.Errorf("resumed from a stream that is gone with %v", seqs)
	}
}
