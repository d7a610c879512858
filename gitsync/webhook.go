package gitsync

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WebhookPath is where forges deliver push events.
const WebhookPath = "/hooks/git"

const (
	// SyncRequestConfigMap, in the platform namespace, records the last
	// webhook a replica accepted while another one leads: the reader syncs
	// on the leader only, and the forge's webhook lands on any replica.
	SyncRequestConfigMap = "storefleet-gitsync-webhook"
	// SyncRequestKey is the ConfigMap key holding when the webhook came.
	SyncRequestKey = "requestedAt"
	// webhookFieldManager owns SyncRequestKey.
	webhookFieldManager = "storefleet-gitsync-webhook"
)

// ServeHTTP accepts a forge's push webhook: the body's HMAC-SHA256 under the
// shared secret must match X-Gitea-Signature, X-Hub-Signature-256
// ("sha256=<hex>") or X-Storefleet-Signature. A valid one triggers a sync:
// here when this replica leads, else through SyncRequestConfigMap, which
// the leader's reader watches.
func (r *Reader) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20+1))
	if err != nil || len(body) > 1<<20 {
		r.metrics.webhooks.WithLabelValues("invalid").Inc()
		http.Error(w, "body unreadable or larger than 1 MiB", http.StatusBadRequest)
		return
	}
	if !r.signed(req.Header, body) {
		r.metrics.webhooks.WithLabelValues("unauthorized").Inc()
		http.Error(w, "missing or wrong signature", http.StatusUnauthorized)
		return
	}
	r.Trigger()
	if err := r.requestSync(req.Context()); err != nil {
		r.metrics.webhooks.WithLabelValues("unrecorded").Inc()
		r.opts.Log.Error(err, "Cannot pass a webhook on to the leading replica", "configmap", r.opts.Namespace+"/"+SyncRequestConfigMap)
		// The forge shows the failed delivery and can redeliver it.
		http.Error(w, "cannot pass the sync on to the leading replica; redeliver later", http.StatusServiceUnavailable)
		return
	}
	r.metrics.webhooks.WithLabelValues("accepted").Inc()
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "sync triggered\n")
}

func (r *Reader) signed(h http.Header, body []byte) bool {
	if len(r.opts.WebhookSecret) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, r.opts.WebhookSecret)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, v := range []string{h.Get("X-Storefleet-Signature"), h.Get("X-Gitea-Signature"), strings.TrimPrefix(h.Get("X-Hub-Signature-256"), "sha256=")} {
		if got, err := hex.DecodeString(v); err == nil && len(got) > 0 && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// Sign returns the signature header value a webhook sender puts in
// X-Storefleet-Signature for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// requestSync records a webhook for the leading replica's reader, unless
// this replica's reader leads (Trigger reached it) or there is no cluster
// to record in.
func (r *Reader) requestSync(ctx context.Context) error {
	if r.leading.Load() || r.opts.Client == nil || r.opts.Namespace == "" {
		return nil
	}
	return r.applyConfigMap(ctx, SyncRequestConfigMap, map[string]string{SyncRequestKey: time.Now().UTC().Format(time.RFC3339Nano)}, webhookFieldManager)
}

// followRequests triggers a sync whenever SyncRequestConfigMap records a
// webhook another replica accepted, until ctx ends. A watch that breaks is
// started again; a request recorded meanwhile still triggers, as the value
// differs from the last one seen.
func (r *Reader) followRequests(ctx context.Context) {
	var last string
	backoff := time.Second
	for ctx.Err() == nil {
		err := r.watchRequests(ctx, &last)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.opts.Log.Error(err, "Cannot watch for webhooks other replicas accepted; retrying", "configmap", r.opts.Namespace+"/"+SyncRequestConfigMap)
			backoff = min(backoff*2, 30*time.Second)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
}

// watchRequests runs one watch of SyncRequestConfigMap; it returns when the
// watch ends. The watch starts with the ConfigMap as it is, so a request
// recorded while no watch ran is seen.
func (r *Reader) watchRequests(ctx context.Context, last *string) error {
	w, err := r.opts.Watcher.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(r.opts.Namespace),
		client.MatchingFields{"metadata.name": SyncRequestConfigMap})
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Error:
				return apierrors.FromObject(ev.Object)
			case watch.Added, watch.Modified:
				cm, ok := ev.Object.(*corev1.ConfigMap)
				if !ok {
					continue
				}
				if v := cm.Data[SyncRequestKey]; v != "" && v != *last {
					*last = v
					r.Trigger()
				}
			}
		}
	}
}
