package v1alpha1

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// StoreEvent is one step in a store's life, the same everywhere it travels:
// an entry of status.activityLog, a Redis Streams entry (internal/eventstream),
// an SSE message.
// It is not stored as its own object; the activity log is its record.
// +kubebuilder:object:generate=false
type StoreEvent struct {
	// ID is the event's position in the stream it was read from (a Redis
	// stream ID, or the activity sequence number without Redis); clients
	// resume from it with Last-Event-ID.
	ID    string    `json:"id,omitempty"`
	Time  time.Time `json:"time"`
	Store string    `json:"store"`
	// UID is the Store object's: a name can be used again by someone else,
	// the UID never, so a store's stream is keyed by it.
	UID       types.UID `json:"uid,omitempty"`
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

// EventSourceOperator is the Source of the events the operator records.
const EventSourceOperator = "operator"

// EventDeleted is published when a store is gone (it has no activity log left
// to record it in).
const EventDeleted = "DELETED"

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
		Time: e.Timestamp.Time, Store: s.Name, UID: s.UID, Owner: s.Spec.Owner, Type: e.Event, Message: e.Message,
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
