package openapi

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/http"
	"regexp"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	requestKey
	identityKey
	auditKey
)

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-Id"

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

func newRequestID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// requestIDOf keeps a well-formed id from the client or proxy, or mints one.
func requestIDOf(header string) string {
	if validRequestID.MatchString(header) {
		return header
	}
	return newRequestID()
}

// requestContext gives every request an id (a well-formed one from the
// client or proxy is kept, so one id follows a request through the proxy)
// and makes the id and the request reachable from handler contexts. It is
// the first middleware of every operation.
func requestContext(ctx huma.Context, next func(huma.Context)) {
	r, _ := humago.Unwrap(ctx)
	id := requestIDOf(ctx.Header(RequestIDHeader))
	ctx.SetHeader(RequestIDHeader, id)
	ctx = huma.WithValue(ctx, requestIDKey, id)
	next(huma.WithValue(ctx, requestKey, r))
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func requestFrom(ctx context.Context) *http.Request {
	r, _ := ctx.Value(requestKey).(*http.Request)
	return r
}
