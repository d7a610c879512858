package gitsync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
)

// WebhookPath is where forges deliver push events.
const WebhookPath = "/hooks/git"

// ServeHTTP accepts a forge's push webhook: the body's HMAC-SHA256 under the
// shared secret must match X-Gitea-Signature, X-Hub-Signature-256
// ("sha256=<hex>") or X-Storefleet-Signature. A valid one triggers a sync.
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
	r.metrics.webhooks.WithLabelValues("accepted").Inc()
	r.Trigger()
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
