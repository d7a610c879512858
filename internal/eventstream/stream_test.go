package eventstream

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// The names are the contract with every reader of the streams (the API, and
// anyone tailing Redis): they change only on purpose.
func TestStreamNames(t *testing.T) {
	if got := StoreStream("6a1f0c3e-uid"); got != "storefleet:events:store:6a1f0c3e-uid" {
		t.Errorf("StoreStream = %q", got)
	}
	if FleetStream != "storefleet:events" || LiveChannel != "storefleet:events:live" {
		t.Errorf("FleetStream %q, LiveChannel %q", FleetStream, LiveChannel)
	}
}

func TestDecodeWhatEncodeWrote(t *testing.T) {
	e := v1alpha1.StoreEvent{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Store: "acme", Owner: "alice",
		Type: v1alpha1.EventReady, Condition: v1alpha1.ReadyCondition, Phase: v1alpha1.PhaseReady, Source: v1alpha1.EventSourceOperator, Seq: 7}
	data, err := encode(e)
	if err != nil {
		t.Fatal(err)
	}
	// A store-stream entry: its own ID is the event's.
	got, ok := decode(redis.XMessage{ID: "1-2", Values: map[string]any{field: string(data)}})
	want := e
	want.ID = "1-2"
	if !ok || got != want {
		t.Errorf("store entry decoded as %+v, %v; want %+v", got, ok, want)
	}
	// A fleet entry carries the store stream ID in its payload.
	e.ID = "1-2"
	data, _ = encode(e)
	if got, ok := decode(redis.XMessage{ID: "9-9", Values: map[string]any{field: string(data)}}); !ok || got.ID != "1-2" {
		t.Errorf("fleet entry decoded with ID %q, %v; want the store stream's 1-2", got.ID, ok)
	}
	for _, bad := range []map[string]any{{}, {field: "{"}, {field: 42}} {
		if _, ok := decode(redis.XMessage{ID: "1-1", Values: bad}); ok {
			t.Errorf("entry %v decoded", bad)
		}
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{"1-0": true, "1712345678901-12": true, "7": false, "a-1": false, "1-": false, "-1": false, "": false, "1-2-3": false} {
		if got := validID(id); got != want {
			t.Errorf("validID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestHubFansOutAndDropsTheSlow(t *testing.T) {
	h := NewHub()
	acme, cancelAcme := h.Subscribe(func(e v1alpha1.StoreEvent) bool { return e.Store == "acme" })
	defer cancelAcme()
	all, _ := h.Subscribe(func(v1alpha1.StoreEvent) bool { return true })
	h.Dispatch(v1alpha1.StoreEvent{Store: "other"})
	h.Dispatch(v1alpha1.StoreEvent{Store: "acme"})
	if e := <-acme; e.Store != "acme" {
		t.Errorf("acme's subscriber got %q first", e.Store)
	}
	if len(all) != 2 {
		t.Errorf("the catch-all subscriber has %d events, want 2", len(all))
	}
	// Nobody reads all: once its buffer is full it is closed, not waited for.
	for range cap(all) {
		h.Dispatch(v1alpha1.StoreEvent{Store: "other"})
	}
	n := 0
	for range all {
		n++
	}
	if n != cap(all) {
		t.Errorf("the slow subscriber got %d events before its close, want %d", n, cap(all))
	}
	h.CloseAll()
	if _, open := <-acme; open {
		t.Error("CloseAll left a subscription open")
	}
}
