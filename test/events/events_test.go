package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/eventstream"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/test/testenv"
)

func createStore(t testing.TB, base, user, name string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/stores", strings.NewReader(`{"name":"`+name+`","engine":"medusa"}`))
	req.Header.Set(openapi.UserHeader, user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("create %s: %d %s", name, resp.StatusCode, body)
	}
}

// collect reads a store stream until READY and returns the activity events,
// after checking the snapshot came first.
func collect(t *testing.T, s *stream, wantSnapshot bool) (snapshot openapi.Store, events []v1alpha1.StoreEvent) {
	t.Helper()
	for {
		m, ok := s.next(t, 60*time.Second)
		if !ok {
			t.Fatalf("stream ended or stalled before READY; got %d events", len(events))
		}
		switch m.event {
		case "snapshot":
			if !wantSnapshot {
				t.Fatalf("unexpected snapshot after resuming")
			}
			if err := json.Unmarshal([]byte(m.data), &snapshot); err != nil {
				t.Fatal(err)
			}
		case "activity":
			var e v1alpha1.StoreEvent
			if err := json.Unmarshal([]byte(m.data), &e); err != nil {
				t.Fatal(err)
			}
			if m.id == "" || e.ID != m.id {
				t.Fatalf("activity without matching id: %q vs %q", m.id, e.ID)
			}
			events = append(events, e)
			if e.Type == v1alpha1.EventReady {
				return snapshot, events
			}
		case "end":
			t.Fatalf("stream ended: %s", m.data)
		}
	}
}

// checkSequence: the snapshot's ring plus the streamed events are every
// entry from 1 to the last, in order, each once.
func checkSequence(t *testing.T, ring []openapi.Activity, snapshotSeqs int64, events []v1alpha1.StoreEvent) {
	t.Helper()
	next := snapshotSeqs + 1
	for _, e := range events {
		if e.Seq != next {
			t.Fatalf("event %s has seq %d, want %d (events %v)", e.Type, e.Seq, next, types(events))
		}
		next++
	}
	if len(events) == 0 || events[len(events)-1].Type != v1alpha1.EventReady {
		t.Fatalf("no READY at the end: %v", types(events))
	}
}

func types(events []v1alpha1.StoreEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, fmt.Sprintf("%d:%s", e.Seq, e.Type))
	}
	return out
}

func testStream(t *testing.T, base, name string) {
	createStore(t, base, "alice", name)
	s, code := openStream(t, base, "/api/v1/stores/"+name+"/events", "alice", "")
	if code != http.StatusOK {
		t.Fatalf("open stream: %d", code)
	}
	snap, events := collect(t, s, true)
	s.close()
	if snap.Name != name {
		t.Fatalf("snapshot %+v", snap)
	}
	checkSequence(t, snap.Activity, int64(len(snap.Activity)), events)
	for _, e := range events {
		if e.Store != name || e.Owner != "alice" || e.Source != v1alpha1.EventSourceOperator || e.Phase == "" || e.Time.IsZero() {
			t.Errorf("event %+v lacks its model fields", e)
		}
	}
	if events[len(events)-1].Condition != v1alpha1.ReadyCondition {
		t.Errorf("READY event condition %q", events[len(events)-1].Condition)
	}

	// Resume in the middle: the rest, nothing twice, no snapshot.
	all := append(ringEvents(snap), events...)
	mid := all[len(all)/2]
	if mid.ID == "" {
		// The snapshot's ring has no stream ids: resume from a streamed one.
		mid = events[len(events)/2]
	}
	r, code := openStream(t, base, "/api/v1/stores/"+name+"/events", "alice", mid.ID)
	if code != http.StatusOK {
		t.Fatalf("resume: %d", code)
	}
	defer r.close()
	_, rest := collect(t, r, false)
	if len(rest) == 0 || rest[0].Seq != mid.Seq+1 {
		t.Fatalf("resumed after seq %d with %v", mid.Seq, types(rest))
	}
	checkSequence(t, nil, mid.Seq, rest)
}

func ringEvents(s openapi.Store) []v1alpha1.StoreEvent {
	var out []v1alpha1.StoreEvent
	for i, a := range s.Activity {
		out = append(out, v1alpha1.StoreEvent{Type: a.Event, Seq: int64(i + 1)})
	}
	return out
}

func TestStoreStreamWithRedis(t *testing.T) {
	testStream(t, withRedis.URL, "ev-redis")
	// The events really went through Redis.
	rc := goredis.NewClient(&goredis.Options{Addr: strings.TrimPrefix(strings.TrimSuffix(redis.URL(), "/0"), "redis://")})
	defer rc.Close()
	var st v1alpha1.Store
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: "ev-redis"}, &st); err != nil {
		t.Fatal(err)
	}
	n, err := rc.XLen(context.Background(), eventstream.StoreStream(st.UID)).Result()
	if err != nil || n < 7 {
		t.Fatalf("store stream has %d entries (%v)", n, err)
	}
}

func TestStoreStreamWithoutRedis(t *testing.T) {
	testStream(t, withoutRedis.URL, "ev-watch")
}

func deleteStore(t testing.TB, base, user, name string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, base+"/api/v1/stores/"+name, nil)
	req.Header.Set(openapi.UserHeader, user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete %s: %d", name, resp.StatusCode)
	}
}

// TestEventsStayWithTheirStore: an open store stream ends when its store is
// deleted, and a name used again by another user is a new stream: resuming
// it from the earlier store's last event ID replays nothing of the earlier
// owner's.
func TestEventsStayWithTheirStore(t *testing.T) {
	for _, tc := range []struct{ base, name string }{{withRedis.URL, "reused"}, {withoutRedis.URL, "reused-watch"}} {
		createStore(t, tc.base, "alice", tc.name)
		s, code := openStream(t, tc.base, "/api/v1/stores/"+tc.name+"/events", "alice", "")
		if code != http.StatusOK {
			t.Fatalf("alice's stream: %d", code)
		}
		_, events := collect(t, s, true)
		lastID := events[len(events)-1].ID

		deleteStore(t, tc.base, "alice", tc.name)
		ended := false
		for !ended {
			m, ok := s.next(t, 60*time.Second)
			if !ok {
				t.Fatalf("%s: alice's stream still open a minute after the deletion", tc.name)
			}
			ended = m.event == "end" && strings.Contains(m.data, "deleted")
		}
		if _, more := s.next(t, 2*time.Second); more {
			t.Errorf("%s: the stream went on after its end message", tc.name)
		}
		s.close()
		testenv.Eventually(t, 60*time.Second, tc.name+" gone", func() (bool, error) {
			st, err := stores.Get(context.Background(), tc.name)
			return st == nil, err
		})

		createStore(t, tc.base, "bob", tc.name)
		b, code := openStream(t, tc.base, "/api/v1/stores/"+tc.name+"/events", "bob", lastID)
		if code != http.StatusOK {
			t.Fatalf("bob's stream: %d", code)
		}
		// Whatever it resumes with (bob's own events after that position,
		// or a snapshot), nothing of alice's store comes.
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			m, ok := b.next(t, time.Until(deadline))
			if !ok {
				break
			}
			if m.event != "activity" {
				continue
			}
			var e v1alpha1.StoreEvent
			if err := json.Unmarshal([]byte(m.data), &e); err != nil {
				t.Fatal(err)
			}
			if e.Owner != "bob" {
				t.Fatalf("%s: bob's stream replayed the earlier owner's event %+v", tc.name, e)
			}
			if e.Type == v1alpha1.EventReady {
				break
			}
		}
		b.close()
	}
}

// TestResumeAcrossAGapSendsASnapshot: a client resuming from an event the
// store's Redis stream no longer holds — trimmed away by MAXLEN, or lost
// with the whole stream (a Redis restart or flush) — gets a fresh snapshot
// of the store first, never the events that happen to be left after a
// silent hole (or nothing at all).
func TestResumeAcrossAGapSendsASnapshot(t *testing.T) {
	const name = "gap"
	createStore(t, withRedis.URL, "alice", name)
	s, code := openStream(t, withRedis.URL, "/api/v1/stores/"+name+"/events", "alice", "")
	if code != http.StatusOK {
		t.Fatalf("open stream: %d", code)
	}
	_, events := collect(t, s, true)
	s.close()
	if len(events) < 3 {
		t.Fatalf("only %d live events to resume from", len(events))
	}
	var st v1alpha1.Store
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: name}, &st); err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(&goredis.Options{Addr: strings.TrimPrefix(strings.TrimSuffix(redis.URL(), "/0"), "redis://")})
	defer rc.Close()
	ctx := context.Background()

	resumeExpectingSnapshot := func(what, lastEventID string) {
		t.Helper()
		r, code := openStream(t, withRedis.URL, "/api/v1/stores/"+name+"/events", "alice", lastEventID)
		if code != http.StatusOK {
			t.Fatalf("%s: resume: %d", what, code)
		}
		defer r.close()
		m, ok := r.next(t, 10*time.Second)
		if !ok || m.event != "snapshot" {
			t.Fatalf("%s: resuming from %s began with %+v (%v), want a fresh snapshot", what, lastEventID, m, ok)
		}
		var snap openapi.Store
		if err := json.Unmarshal([]byte(m.data), &snap); err != nil || snap.Name != name || snap.Phase != "Ready" {
			t.Fatalf("%s: snapshot %s (%v)", what, m.data, err)
		}
	}

	// MAXLEN trimmed all but the last entry away.
	if err := rc.XTrimMaxLen(ctx, eventstream.StoreStream(st.UID), 1).Err(); err != nil {
		t.Fatal(err)
	}
	resumeExpectingSnapshot("after trimming", events[0].ID)
	// The stream is gone, as after a restart of a Redis without persistence.
	if err := rc.Del(ctx, eventstream.StoreStream(st.UID)).Err(); err != nil {
		t.Fatal(err)
	}
	resumeExpectingSnapshot("after the stream was lost", events[len(events)-1].ID)
}

// TestStreamsAreOwnersOnly: bob cannot open alice's store stream, and bob's
// fleet stream never carries alice's events.
func TestStreamsAreOwnersOnly(t *testing.T) {
	for _, base := range []string{withRedis.URL, withoutRedis.URL} {
		bobs, code := openStream(t, base, "/api/v1/events", "bob", "")
		if code != http.StatusOK {
			t.Fatalf("bob's fleet stream: %d", code)
		}
		name := "alice-only"
		if base == withoutRedis.URL {
			name = "alice-only-watch"
		}
		createStore(t, base, "alice", name)
		if _, code := openStream(t, base, "/api/v1/stores/"+name+"/events", "bob", ""); code != http.StatusNotFound {
			t.Errorf("bob opened alice's store stream: %d", code)
		}
		alices, _ := openStream(t, base, "/api/v1/stores/"+name+"/events", "alice", "")
		collect(t, alices, true)
		alices.close()
		deadline := time.After(2 * time.Second)
	drain:
		for {
			select {
			case m, ok := <-bobs.messages:
				if !ok {
					break drain
				}
				if m.event == "activity" && strings.Contains(m.data, name) {
					t.Fatalf("bob's fleet stream carried alice's event: %s", m.data)
				}
			case <-deadline:
				break drain
			}
		}
		bobs.close()
	}
}

// TestRedisOutage: Redis killed while a store provisions → the store still
// becomes Ready, the API answers, open Redis streams end with a clear
// message, new streams follow the cluster watch; Redis back → publishing
// resumes, and the dropped-events metric counted the gap.
func TestRedisOutage(t *testing.T) {
	s, code := openStream(t, withRedis.URL, "/api/v1/events", "carol", "")
	if code != http.StatusOK {
		t.Fatalf("fleet stream: %d", code)
	}
	defer s.close()
	if m, _ := s.next(t, 10*time.Second); m.event != "snapshot" {
		t.Fatalf("first message %+v", m)
	}
	redis.Stop()
	createStore(t, withRedis.URL, "carol", "outage")
	var ended bool
	for !ended {
		m, ok := s.next(t, 30*time.Second)
		if !ok {
			t.Fatal("stream neither ended with a message nor stayed open")
		}
		ended = m.event == "end" && strings.Contains(m.data, "redis")
	}
	// A new stream works, from the watch, and sees the store become Ready.
	w, code := openStream(t, withRedis.URL, "/api/v1/stores/outage/events", "carol", "")
	if code != http.StatusOK {
		t.Fatalf("stream during the outage: %d", code)
	}
	snap, events := collectUntilReady(t, w)
	w.close()
	t.Logf("during the outage: snapshot phase %s, %d live events", snap.Phase, len(events))
	if resp, err := http.Get(withRedis.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("API down during the Redis outage: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "dropped events counted", func() (bool, error) {
		return metric(t, "storefleet_events_dropped_total") > 0, nil
	})

	// Redis back on the same port: the operator publishes again.
	var err error
	if redis, err = devcluster.StartRedis(redis.Port); err != nil {
		t.Fatal(err)
	}
	published := metric(t, "storefleet_events_published_total")
	createStore(t, withRedis.URL, "carol", "after-outage")
	testenv.Eventually(t, 60*time.Second, "publishing resumed", func() (bool, error) {
		return metric(t, "storefleet_events_published_total") >= published+7, nil
	})
}

// collectUntilReady accepts a snapshot that is already Ready.
func collectUntilReady(t *testing.T, s *stream) (openapi.Store, []v1alpha1.StoreEvent) {
	var snap openapi.Store
	var events []v1alpha1.StoreEvent
	for {
		m, ok := s.next(t, 60*time.Second)
		if !ok {
			t.Fatal("stream ended before Ready")
		}
		switch m.event {
		case "snapshot":
			_ = json.Unmarshal([]byte(m.data), &snap)
			if snap.Phase == "Ready" {
				return snap, events
			}
		case "activity":
			var e v1alpha1.StoreEvent
			_ = json.Unmarshal([]byte(m.data), &e)
			events = append(events, e)
			if e.Type == v1alpha1.EventReady {
				return snap, events
			}
		}
	}
}

func metric(t *testing.T, name string) float64 {
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(line, name+" "), &v)
			return v
		}
	}
	return 0
}

// TestManyConcurrentStreams: 200 SSE clients on loopback for 30 s all get
// a store's events; after they leave, the API's goroutines and heap return
// to where they were.
func TestManyConcurrentStreams(t *testing.T) {
	const clients = 200
	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	createStore(t, withoutRedis.URL, "dave", "crowd")
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	stop := time.Now().Add(30 * time.Second)
	for i := range clients {
		base := withRedis.URL
		if i%2 == 1 {
			base = withoutRedis.URL
		}
		wg.Go(func() {
			s, code := openStream(t, base, "/api/v1/stores/crowd/events", "dave", "")
			if code != http.StatusOK {
				t.Errorf("client %d: %d", i, code)
				return
			}
			defer s.close()
			ready := false
			for time.Now().Before(stop) {
				m, ok := s.next(t, time.Until(stop))
				if !ok {
					break
				}
				if strings.Contains(m.data, `"phase":"Ready"`) || strings.Contains(m.data, `"type":"READY"`) {
					ready = true
				}
			}
			if ready {
				mu.Lock()
				got++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got != clients {
		t.Fatalf("%d of %d clients saw the store Ready", got, clients)
	}
	testenv.Eventually(t, 10*time.Second, "goroutines back to baseline", func() (bool, error) {
		runtime.GC()
		return runtime.NumGoroutine() <= baseGoroutines+10, nil
	}, func() string {
		return fmt.Sprintf("%d goroutines, baseline %d", runtime.NumGoroutine(), baseGoroutines)
	})
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > 32<<20 {
		t.Errorf("heap in use grew by %d MiB after the clients left", grow>>20)
	}
	t.Logf("heap in use: %d MiB before, %d MiB after", before.HeapInuse>>20, after.HeapInuse>>20)
}
