package gitsync

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// webhookReader is a Reader that has not started (a replica that does not
// lead), recording in c.
func webhookReader(t *testing.T, c client.Client) *Reader {
	t.Helper()
	r, err := NewReader(ReaderOptions{Remote: Remote{URL: "file:///nonexistent/stores.git", Branch: "main", Path: "stores"}, Dir: t.TempDir(),
		WebhookSecret: []byte("s3cret"), Namespace: "storefleet-system", Client: c, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func postWebhook(r *Reader) *httptest.ResponseRecorder {
	body := `{"ref":"refs/heads/main"}`
	req := httptest.NewRequest(http.MethodPost, WebhookPath, strings.NewReader(body))
	req.Header.Set("X-Storefleet-Signature", Sign([]byte("s3cret"), []byte(body)))
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec
}

// TestWebhookOnAFollowerIsPassedOn: a replica that does not lead records an
// accepted webhook where the leader's reader watches; when it cannot, the
// forge is told to redeliver (503) instead of the push being forgotten.
func TestWebhookOnAFollowerIsPassedOn(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	r := webhookReader(t, c)
	if rec := postWebhook(r); rec.Code != http.StatusAccepted {
		t.Fatalf("webhook on a follower: %d %s", rec.Code, rec.Body)
	}
	var cm corev1.ConfigMap
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "storefleet-system", Name: SyncRequestConfigMap}, &cm); err != nil {
		t.Fatalf("the request was not recorded for the leader: %v", err)
	}
	first := cm.Data[SyncRequestKey]
	if first == "" {
		t.Fatalf("recorded %v, want %s", cm.Data, SyncRequestKey)
	}
	postWebhook(r)
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "storefleet-system", Name: SyncRequestConfigMap}, &cm); err != nil || cm.Data[SyncRequestKey] == first {
		t.Errorf("a second webhook recorded %q again (%v): the leader would not see it", first, err)
	}

	broken := interceptor.NewClient(fake.NewClientBuilder().WithScheme(scheme).Build(), interceptor.Funcs{
		Apply: func(context.Context, client.WithWatch, runtime.ApplyConfiguration, ...client.ApplyOption) error {
			return errors.New("the API server is unreachable")
		},
	})
	if rec := postWebhook(webhookReader(t, broken)); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("webhook that could not be passed on: %d %s, want 503", rec.Code, rec.Body)
	}
}
