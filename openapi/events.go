package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// HeartbeatInterval keeps proxies from closing idle event streams.
var HeartbeatInterval = 15 * time.Second

// StoreEventsInput resumes a store's stream.
type StoreEventsInput struct {
	StoreNameInput
	LastEventID string `header:"Last-Event-ID" maxLength:"64" doc:"Resume after this event (sent by EventSource on reconnect)."`
}

// FleetEventsInput opens the caller's fleet stream.
type FleetEventsInput struct {
	LastEventID string `header:"Last-Event-ID" maxLength:"64" doc:"Ignored: a fleet stream restarts with a fresh snapshot."`
	All         bool   `query:"all" doc:"Every user's stores; for admins only."`
}

// EndOfStream is the last message of a stream the server ends.
type EndOfStream struct {
	Reason string `json:"reason" example:"Redis became unreachable; reconnect to continue from the cluster watch"`
}

// streamLimits counts open streams per user and in all.
type streamLimits struct {
	mu      sync.Mutex
	perUser map[string]int
	total   int
}

func (l *streamLimits) acquire(user string, maxUser, maxTotal int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perUser == nil {
		l.perUser = map[string]int{}
	}
	if l.perUser[user] >= maxUser || l.total >= maxTotal {
		return false
	}
	l.perUser[user]++
	l.total++
	return true
}

func (l *streamLimits) release(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.perUser[user]--
	if l.perUser[user] == 0 {
		delete(l.perUser, user)
	}
	l.total--
}

// eventStreamResponses documents the text/event-stream body: one message
// type per SSE event name.
func (s *Server) eventStreamResponses(snapshot any) map[string]*huma.Response {
	reg := s.api.OpenAPI().Components.Schemas
	message := func(name string, data any) *huma.Schema {
		return &huma.Schema{
			Title: "Event " + name, Type: huma.TypeObject, Required: []string{"event", "data"},
			Properties: map[string]*huma.Schema{
				"id":    {Type: huma.TypeString, Description: "Pass as Last-Event-ID to resume after this message."},
				"event": {Type: huma.TypeString, Extensions: map[string]any{"const": name}},
				"data":  reg.Schema(reflect.TypeOf(data), true, name),
			},
		}
	}
	return map[string]*huma.Response{"200": {
		Description: "Server-Sent Events: first a snapshot, then one activity message per store event, comment heartbeats, and an end message when the server closes the stream.",
		Content: map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{
			Type: huma.TypeArray,
			Items: &huma.Schema{Extensions: map[string]any{"oneOf": []*huma.Schema{
				message("snapshot", snapshot), message("activity", v1alpha1.StoreEvent{}), message("end", EndOfStream{}),
			}}},
		}}},
	}}
}

func (s *Server) registerEvents() {
	read := huma.Middlewares{s.authenticate}
	huma.Register(s.api, huma.Operation{
		OperationID: "store-events", Method: http.MethodGet, Path: APIPrefix + "/stores/{name}/events",
		Summary:     "Watch a store",
		Description: "The store's status, then every provisioning event as it happens. Reconnecting with Last-Event-ID continues without gaps or repeats; when the events after that ID are no longer kept (trimmed, or lost with a Redis restart), the stream starts again with a fresh snapshot.",
		Tags:        []string{"events"}, Security: storeSecurity, Middlewares: read,
		Responses: s.eventStreamResponses(Store{}),
		Errors:    []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable},
	}, s.storeEvents)
	huma.Register(s.api, huma.Operation{
		OperationID: "fleet-events", Method: http.MethodGet, Path: APIPrefix + "/events",
		Summary:     "Watch all my stores",
		Description: "The caller's stores (admins: with all=true, everyone's), then every event of any of them.",
		Tags:        []string{"events"}, Security: storeSecurity, Middlewares: read,
		Responses: s.eventStreamResponses(StoreList{}),
		Errors:    []int{http.StatusUnauthorized, http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable},
	}, s.fleetEvents)
}

// feed picks Redis when it is healthy, else the cluster watch.
func (s *Server) feed() Feed {
	if s.deps.Live != nil && s.deps.Live.Healthy() {
		return s.deps.Live
	}
	return s.deps.Watch
}

func (s *Server) storeEvents(ctx context.Context, in *StoreEventsInput) (*huma.StreamResponse, error) {
	id := identityFrom(ctx)
	st, err := s.deps.Stores.Get(ctx, in.Name)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if st == nil || !visible(st, id) {
		return nil, s.fail(ctx, notFound(in.Name))
	}
	name, uid := in.Name, st.UID
	// This Store object's events only: a store deleted and created again
	// under the same name (by anyone) is another store with another UID.
	ours := func(e v1alpha1.StoreEvent) bool { return e.Store == name && (e.UID == "" || e.UID == uid) }
	return s.stream(ctx, id, streamSpec{
		filter: ours,
		// Its deletion ends the stream, after the DELETED event itself.
		final: func(e v1alpha1.StoreEvent) bool { return e.Type == v1alpha1.EventDeleted },
		gone: func(ctx context.Context) bool {
			cur, err := s.deps.Stores.Get(ctx, name)
			return err == nil && (cur == nil || cur.UID != uid)
		},
		open: func(ctx context.Context, feed Feed, w *sseWriter) (int64, bool) {
			if in.LastEventID != "" {
				events, ok, err := feed.Replay(ctx, st, in.LastEventID)
				if err == nil && ok {
					for _, e := range events {
						w.activity(e)
					}
					return -1, true
				}
			}
			cur, err := s.deps.Stores.Get(ctx, name)
			if err != nil || cur == nil || cur.UID != uid {
				w.end(fmt.Sprintf("store %q is gone", name))
				return 0, false
			}
			w.send("snapshot", "", StoreOf(cur))
			last := v1alpha1.LastSeq(cur.Status.ActivityLog)
			if missed, err := feed.Since(ctx, cur, last); err == nil {
				for _, e := range missed {
					w.activity(e)
					last = e.Seq
				}
			}
			return last, true
		},
	})
}

func (s *Server) fleetEvents(ctx context.Context, in *FleetEventsInput) (*huma.StreamResponse, error) {
	id := identityFrom(ctx)
	if in.All && !id.Admin {
		return nil, s.fail(ctx, errorf(KindInvalid, "all=true is for admins only"))
	}
	owner := id.User
	if in.All {
		owner = ""
	}
	return s.stream(ctx, id, streamSpec{
		filter: func(e v1alpha1.StoreEvent) bool { return owner == "" || e.Owner == owner },
		open: func(ctx context.Context, _ Feed, w *sseWriter) (int64, bool) {
			stores, err := s.deps.Stores.List(ctx, owner)
			if err != nil {
				w.end("stores unavailable")
				return 0, false
			}
			list := StoreList{Items: []StoreSummary{}}
			for i := range stores {
				list.Items = append(list.Items, summaryOf(&stores[i]))
			}
			w.send("snapshot", "", list)
			// Per-store sequence numbers cannot dedupe a fleet: live
			// events may repeat the snapshot's last moments.
			return -1, true
		},
	})
}

// streamSpec is what one kind of event stream delivers.
type streamSpec struct {
	// filter picks the feed's events for this stream.
	filter func(v1alpha1.StoreEvent) bool
	// open sends the opening messages; it returns the sequence number up to
	// which live events were already sent (-1: none to skip).
	open func(ctx context.Context, feed Feed, w *sseWriter) (skipSeq int64, ok bool)
	// final, when set, ends the stream after an event it accepts.
	final func(v1alpha1.StoreEvent) bool
	// gone, when set, is asked at every heartbeat whether the stream's
	// subject no longer exists (a deletion whose event was not delivered).
	gone func(ctx context.Context) bool
}

// stream runs an event stream: it takes a stream slot, subscribes before
// sending the opening messages (so nothing falls between them), skips live
// events already sent, sends heartbeats, and ends when the client leaves or
// the feed stops.
func (s *Server) stream(ctx context.Context, id Identity, spec streamSpec) (*huma.StreamResponse, error) {
	feed := s.feed()
	if feed == nil {
		return nil, s.fail(ctx, errorf(KindUnavailable, "event streams are not available"))
	}
	if !s.streams.acquire(id.User, s.cfg.MaxStreamsPerUser, s.cfg.MaxStreams) {
		return nil, s.fail(ctx, &Error{Kind: KindTooManyStreams, Limit: s.cfg.MaxStreamsPerUser, RetryAfter: 10 * time.Second,
			Message: fmt.Sprintf("too many open event streams (at most %d per user, %d in all); close one first", s.cfg.MaxStreamsPerUser, s.cfg.MaxStreams)})
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		ctx := hctx.Context()
		defer s.streams.release(id.User)
		events, cancel := feed.Subscribe(spec.filter)
		defer cancel()
		_, rw := humago.Unwrap(hctx)
		w := &sseWriter{w: rw, rc: http.NewResponseController(rw)}
		hctx.SetHeader("Content-Type", "text/event-stream")
		hctx.SetHeader("Cache-Control", "no-cache")
		hctx.SetHeader("X-Accel-Buffering", "no")
		hctx.SetStatus(http.StatusOK)
		skipSeq, ok := spec.open(ctx, feed, w)
		if !ok {
			return
		}
		heartbeat := time.NewTicker(HeartbeatInterval)
		defer heartbeat.Stop()
		for w.err == nil {
			select {
			case <-ctx.Done():
				return
			case e, open := <-events:
				if !open {
					w.end(fmt.Sprintf("live events from %s stopped; reconnect with Last-Event-ID to continue", feed.Name()))
					return
				}
				if e.Seq > skipSeq && !w.sent(e.ID) {
					w.activity(e)
				}
				if spec.final != nil && spec.final(e) {
					w.end("the store was deleted")
					return
				}
			case <-heartbeat.C:
				if spec.gone != nil && spec.gone(ctx) {
					w.end("the store was deleted")
					return
				}
				w.comment("heartbeat")
			}
		}
	}}, nil
}

// sseWriter writes Server-Sent Events, each with a fresh write deadline (the
// server's WriteTimeout would otherwise cut long streams).
type sseWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	err  error
	seen map[string]bool
}

func (w *sseWriter) write(b []byte) {
	if w.err != nil {
		return
	}
	_ = w.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, w.err = w.w.Write(b); w.err == nil {
		w.err = w.rc.Flush()
	}
}

func (w *sseWriter) send(event, id string, data any) {
	payload, err := json.Marshal(data)
	if err != nil {
		w.err = err
		return
	}
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + event + "\ndata: ")
	b.Write(payload)
	b.WriteString("\n\n")
	w.write([]byte(b.String()))
}

// activity sends one store event, remembering its ID so a replayed event
// that also arrives live is sent once.
func (w *sseWriter) activity(e v1alpha1.StoreEvent) {
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	w.seen[e.ID] = true
	w.send("activity", e.ID, e)
}

func (w *sseWriter) sent(id string) bool { return id != "" && w.seen[id] }

func (w *sseWriter) comment(text string) { w.write([]byte(": " + text + "\n\n")) }

func (w *sseWriter) end(reason string) { w.send("end", "", EndOfStream{Reason: reason}) }
