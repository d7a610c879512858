// Package eventstream is the wire format of store events in Redis, and its
// two ends: the operator's Publisher writes every event to the store's
// stream and the fleet stream and announces it; the API's Feed reads the
// fleet stream and replays a store's. The stream names and the entry
// encoding live here only, so writer and reader cannot disagree. Redis being
// slow or down never blocks either side.
package eventstream

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/apimachinery/pkg/types"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

const (
	// FleetStream holds every store's events; its entries carry the store
	// stream ID too.
	FleetStream = "storefleet:events"
	// LiveChannel announces each event (Pub/Sub) for live fan-out.
	LiveChannel = "storefleet:events:live"
	// field is an entry's one field: the event as JSON.
	field = "event"
)

// StoreStream is the Redis stream of one store's events, keyed by the Store
// object's UID: a name used again (by another owner) starts a new stream
// instead of replaying the previous store's.
func StoreStream(uid types.UID) string { return "storefleet:events:store:" + string(uid) }

// DeletedStreamTTL is how long a deleted store's stream stays readable, so a
// client reconnecting just after the deletion still gets its last events.
const DeletedStreamTTL = time.Hour

// encode is the JSON of e, as entries and announcements carry it.
func encode(e v1alpha1.StoreEvent) ([]byte, error) { return json.Marshal(e) }

// decode reads a stream entry; a store-stream entry's ID is the event's ID,
// a fleet entry carries it in the payload.
func decode(m redis.XMessage) (v1alpha1.StoreEvent, bool) {
	var e v1alpha1.StoreEvent
	s, _ := m.Values[field].(string)
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return e, false
	}
	if e.ID == "" {
		e.ID = m.ID
	}
	return e, true
}

// validID reports whether id is a Redis stream ID (<ms>-<seq>).
func validID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ok && err1 == nil && err2 == nil
}
