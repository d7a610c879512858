package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestTransientAPIError(t *testing.T) {
	gr := schema.GroupResource{Resource: "namespaces"}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"503 service unavailable", apierrors.NewServiceUnavailable("etcd leader changed"), true},
		{"500 internal error", apierrors.NewInternalError(errors.New("etcdserver: request timed out")), true},
		{"504 timeout", apierrors.NewTimeoutError("request did not complete", 1), true},
		{"429 too many requests", apierrors.NewTooManyRequests("slow down", 1), true},
		{"wrapped 503", fmt.Errorf("apply namespace: %w", apierrors.NewServiceUnavailable("x")), true},
		{"connection refused", &url.Error{Op: "Get", URL: "https://10.0.0.1", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, true},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"unexpected EOF", fmt.Errorf("stream: %w", io.ErrUnexpectedEOF), true},
		{"not found", apierrors.NewNotFound(gr, "store-x"), false},
		{"forbidden", apierrors.NewForbidden(gr, "store-x", errors.New("no")), false},
		{"invalid", apierrors.NewBadRequest("bad"), false},
		{"conflict", apierrors.NewConflict(gr, "store-x", errors.New("changed")), false},
		{"a store's own failure", errors.New("pod backend: CrashLoopBackOff"), false},
		{"context deadline (Helm waiting for pods)", context.DeadlineExceeded, false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := transientAPIError(c.err); got != c.want {
				t.Errorf("transientAPIError(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

// A store the API server keeps failing is retried after half the outage so
// far (1 s to 30 s), however many watch events bring it back meanwhile; once
// a reconcile gets through, the next outage starts again at 1 s.
func TestOutageRetriesGrowWithTheOutage(t *testing.T) {
	var o outages
	t0 := time.Now()
	for _, c := range []struct {
		at   time.Duration
		want time.Duration
	}{{0, time.Second}, {100 * time.Millisecond, time.Second}, {900 * time.Millisecond, time.Second}, {6 * time.Second, 3 * time.Second}, {12 * time.Second, 6 * time.Second}, {5 * time.Minute, 30 * time.Second}} {
		if got := o.retryAfter("shop", t0.Add(c.at)); got != c.want {
			t.Errorf("%s into the outage: retry in %s, want %s", c.at, got, c.want)
		}
	}
	if got := o.retryAfter("other", t0.Add(5*time.Minute)); got != time.Second {
		t.Errorf("another store's first failure: retry in %s, want 1s", got)
	}
	o.end("shop")
	if got := o.retryAfter("shop", t0.Add(6*time.Minute)); got != time.Second {
		t.Errorf("after the outage ended: retry in %s, want 1s", got)
	}
}
