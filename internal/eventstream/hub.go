package eventstream

import (
	"sync"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// Hub fans events out to subscribers, for the Feed and for any other source
// of events (the API's cluster watch). A subscriber that cannot keep up is
// closed (its client reconnects and resumes) rather than slowing the others.
type Hub struct {
	mu   sync.Mutex
	next int
	subs map[int]*subscriber
}

type subscriber struct {
	ch     chan v1alpha1.StoreEvent
	filter func(v1alpha1.StoreEvent) bool
}

// NewHub returns a Hub without subscribers.
func NewHub() *Hub { return &Hub{subs: map[int]*subscriber{}} }

// Subscribe delivers the dispatched events accepted by filter until cancel
// is called or the subscriber falls behind; then the channel is closed.
func (h *Hub) Subscribe(filter func(v1alpha1.StoreEvent) bool) (events <-chan v1alpha1.StoreEvent, cancel func()) {
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

// Dispatch hands e to every subscriber whose filter accepts it.
func (h *Hub) Dispatch(e v1alpha1.StoreEvent) {
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

// CloseAll ends every subscription (the source stopped delivering).
func (h *Hub) CloseAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, s := range h.subs {
		delete(h.subs, id)
		close(s.ch)
	}
}
