package v1alpha1

import "time"

// StoreEvent is one step in a store's life, the same everywhere it travels:
// an entry of status.activityLog, a Redis Streams entry, an SSE message.
// It is not stored as its own object; the activity log is its record.
// +kubebuilder:object:generate=false
type StoreEvent struct {
	// ID is the event's position in the stream it was read from (a Redis
	// stream ID, or the activity sequence number without Redis); clients
	// resume from it with Last-Event-ID.
	ID        string    `json:"id,omitempty"`
	Time      time.Time `json:"time"`
	Store     string    `json:"store"`
	Owner     string    `json:"owner,omitempty"`
	Type      string    `json:"type"`
	Message   string    `json:"message,omitempty"`
	Condition string    `json:"condition,omitempty"`
	Phase     Phase     `json:"phase,omitempty"`
	// Source is the component that recorded it.
	Source    string `json:"source"`
	RequestID string `json:"requestId,omitempty"`
	// Seq is the store's activity sequence number.
	Seq int64 `json:"seq"`
}

// Event sources.
const (
	EventSourceOperator = "operator"
	EventSourceAPI      = "api"
	EventSourceGitSync  = "gitsync"
)

// EventDeleted is published when a store is gone (it has no activity log left
// to record it in).
const EventDeleted = "DELETED"

// Redis names shared by the operator (writer) and the API (reader).
const (
	// FleetStream holds every store's events; its entries carry the store
	// stream ID too.
	FleetStream = "storefleet:events"
	// EventsChannel announces each event (Pub/Sub) for live fan-out.
	EventsChannel = "storefleet:events:live"
)

// StoreStream is the Redis stream of one store's events.
func StoreStream(store string) string { return "storefleet:events:store:" + store }

// conditionOfEvent names the condition a step event reports.
var conditionOfEvent = map[string]string{
	EventNamespaceReady:  NamespaceReadyCondition,
	EventHelmInstalled:   HelmInstalledCondition,
	EventHelmUpgraded:    HelmInstalledCondition,
	EventHelmFailed:      HelmInstalledCondition,
	EventDatabaseReady:   DatabaseReadyCondition,
	EventBackendReady:    BackendReadyCondition,
	EventStorefrontReady: StorefrontReadyCondition,
	EventReady:           ReadyCondition,
	EventFailed:          StalledCondition,
	EventDriftDetected:   DriftedCondition,
	EventDriftCorrected:  DriftedCondition,
}

// EventOf is the StoreEvent of an activity entry of s.
func EventOf(s *Store, e ActivityEntry) StoreEvent {
	phase := s.Status.Phase
	if phase == "" {
		phase = PhasePending
	}
	return StoreEvent{
		Time: e.Timestamp.Time, Store: s.Name, Owner: s.Spec.Owner, Type: e.Event, Message: e.Message,
		Condition: conditionOfEvent[e.Event], Phase: phase, Source: EventSourceOperator,
		RequestID: s.Annotations[RequestIDAnnotation], Seq: e.Seq,
	}
}

// LastSeq is the sequence number of the newest activity entry (0 for none).
func LastSeq(log []ActivityEntry) int64 {
	if len(log) == 0 {
		return 0
	}
	return log[len(log)-1].Seq
}
