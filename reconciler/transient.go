package reconciler

import (
	"errors"
	"io"
	"net"
	"net/url"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// transientAPIError reports whether err says the API server (or the way to
// it) could not answer for now: a 5xx or 429 status, or a broken connection.
// Such an error says nothing about the store, so it is retried with the
// controller's backoff without counting as a failed attempt: a handful of
// hiccups must never turn a healthy store Failed and stop its drift healing.
// A plain context deadline is not one: Helm's waits end that way when a
// store's own pods never come up.
func transientAPIError(err error) bool {
	if err == nil {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		return code >= 500 || code == 429
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	// A request to the API server that failed on the way (client-go's
	// errors are *url.Error); not net.Error, which a bare context deadline
	// also is.
	var urlErr *url.Error
	var opErr *net.OpError
	return errors.As(err, &urlErr) || errors.As(err, &opErr)
}
