package openapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/danielgtaylor/huma/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Kind is one entry of the API's error vocabulary. Handlers and the layers
// below speak only these kinds; problemTypes maps them to HTTP in one place.
type Kind string

const (
	KindInvalid   Kind = "invalid"
	KindMalformed Kind = "malformed"
	KindTooLarge  Kind = "too-large"
	// KindUnsupportedMedia: a body that is not JSON.
	KindUnsupportedMedia Kind = "unsupported-media-type"
	KindUnauthenticated  Kind = "unauthenticated"
	KindNotFound         Kind = "not-found"
	KindConflict         Kind = "conflict"
	KindNotReady         Kind = "not-ready"
	KindQuotaExceeded    Kind = "quota-exceeded"
	// KindPlanNotAllowed: a plan the caller's groups may not pick.
	KindPlanNotAllowed Kind = "plan-not-allowed"
	KindRateLimited    Kind = "rate-limited"
	KindTooManyStreams Kind = "too-many-streams"
	KindUnavailable    Kind = "unavailable"
	KindInternal       Kind = "internal"
)

type problemType struct {
	status int
	title  string
}

// problemTypes is the one error table: every problem document the API sends
// takes its status and title from here.
var problemTypes = map[Kind]problemType{
	KindMalformed:        {http.StatusBadRequest, "Malformed request"},
	KindUnauthenticated:  {http.StatusUnauthorized, "Not authenticated"},
	KindQuotaExceeded:    {http.StatusForbidden, "Store quota exceeded"},
	KindPlanNotAllowed:   {http.StatusForbidden, "Plan not allowed"},
	KindNotFound:         {http.StatusNotFound, "Not found"},
	KindConflict:         {http.StatusConflict, "Name already taken"},
	KindNotReady:         {http.StatusConflict, "Store not ready"},
	KindTooLarge:         {http.StatusRequestEntityTooLarge, "Request body too large"},
	KindUnsupportedMedia: {http.StatusUnsupportedMediaType, "Unsupported media type"},
	KindInvalid:          {http.StatusUnprocessableEntity, "Invalid request"},
	KindRateLimited:      {http.StatusTooManyRequests, "Too many requests"},
	KindTooManyStreams:   {http.StatusTooManyRequests, "Too many event streams"},
	KindInternal:         {http.StatusInternalServerError, "Internal error"},
	KindUnavailable:      {http.StatusServiceUnavailable, "Service unavailable"},
}

// kindOfStatus names the kind of an error Huma raises itself (validation,
// body parsing), which arrives as a bare status.
func kindOfStatus(status int) Kind {
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusMethodNotAllowed, http.StatusNotAcceptable:
		return KindMalformed
	case http.StatusUnprocessableEntity:
		return KindInvalid
	case http.StatusRequestEntityTooLarge:
		return KindTooLarge
	case http.StatusNotFound:
		return KindNotFound
	case http.StatusUnauthorized:
		return KindUnauthenticated
	case http.StatusServiceUnavailable:
		return KindUnavailable
	}
	if status >= 500 {
		return KindInternal
	}
	return ""
}

// ProblemTypeBase prefixes a kind to form a problem document's type URI.
const ProblemTypeBase = "https://storefleet.dev/problems/"

// Error is an error of the API's vocabulary, raised below the handlers.
type Error struct {
	Kind    Kind
	Message string
	// Limit is the quota or rate that was exceeded.
	Limit int
	// RetryAfter tells a rate-limited client when to come back.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

func errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type      string              `json:"type" format:"uri" doc:"URI naming the problem type; its last segment is the stable error code." example:"https://storefleet.dev/problems/not-found"`
	Title     string              `json:"title" doc:"Short summary of the problem type." example:"Not found"`
	Status    int                 `json:"status" doc:"HTTP status code." example:"404"`
	Detail    string              `json:"detail,omitempty" doc:"What happened in this occurrence." example:"store \"acme\" not found"`
	Instance  string              `json:"instance,omitempty" doc:"The request path."`
	RequestID string              `json:"requestId,omitempty" doc:"Id of the request; logs carry the same id." example:"01J9Z3J8V6Q2T4X5"`
	Limit     int                 `json:"limit,omitempty" doc:"The limit that was exceeded (stores per user, or requests per minute)."`
	Errors    []*huma.ErrorDetail `json:"errors,omitempty" doc:"One entry per invalid field."`

	retryAfter time.Duration
}

func (p *Problem) Error() string  { return p.Detail }
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes Huma send application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" || ct == "" {
		return "application/problem+json"
	}
	return ct
}

// GetHeaders adds Retry-After to rate-limit problems.
func (p *Problem) GetHeaders() http.Header {
	h := http.Header{}
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((p.retryAfter+time.Second-1)/time.Second)))
	}
	return h
}

func newProblem(kind Kind, detail string) *Problem {
	pt, ok := problemTypes[kind]
	if !ok {
		kind, pt = KindInternal, problemTypes[KindInternal]
	}
	return &Problem{Type: ProblemTypeBase + string(kind), Title: pt.title, Status: pt.status, Detail: detail}
}

// internalDetail is all a client learns of an internal error; the cause is
// logged under the request id the response carries.
const internalDetail = "internal error; the platform team can find it in the logs by its requestId"

// problemFor turns any error from below the handlers into the problem the
// client sees. Errors outside the vocabulary are internal: logged, not shown.
func problemFor(ctx context.Context, log *slog.Logger, err error) *Problem {
	var e *Error
	var p *Problem
	switch {
	case errors.As(err, &p):
	case errors.As(err, &e):
		p = newProblem(e.Kind, e.Message)
		p.Limit, p.retryAfter = e.Limit, e.RetryAfter
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		p = newProblem(KindUnavailable, "the request did not finish in time; try again")
	case transient(err):
		// The cluster's API server (or the network to it) failing for a
		// moment is not the caller's fault, nor a bug: try again.
		log.WarnContext(ctx, "Dependency unavailable", "requestId", requestIDFrom(ctx), "error", err)
		p = newProblem(KindUnavailable, "the cluster's API server did not answer; try again in a few seconds")
		p.retryAfter = 5 * time.Second
	default:
		log.ErrorContext(ctx, "Request failed", "requestId", requestIDFrom(ctx), "error", err)
		p = newProblem(KindInternal, internalDetail)
	}
	p.RequestID = requestIDFrom(ctx)
	if r := requestFrom(ctx); r != nil {
		p.Instance = r.URL.Path
	}
	return p
}

// installHumaErrors makes the errors Huma raises itself (validation, body
// parsing, an unexpected handler error) problem documents from the same table,
// with the request id, and never with an internal cause.
func installHumaErrors(log *slog.Logger) {
	huma.NewErrorWithContext = func(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		ctx := context.Background()
		if hctx != nil {
			ctx = hctx.Context()
		}
		kind := kindOfStatus(status)
		if kind == KindInternal {
			log.ErrorContext(ctx, "Request failed", "requestId", requestIDFrom(ctx), "error", errors.Join(append([]error{errors.New(msg)}, errs...)...))
			return problemFor(ctx, log, errors.New(msg))
		}
		var p *Problem
		if kind == "" {
			p = &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: msg}
		} else {
			p = newProblem(kind, msg)
		}
		for _, err := range errs {
			var d huma.ErrorDetailer
			switch {
			case err == nil:
			case errors.As(err, &d):
				p.Errors = append(p.Errors, d.ErrorDetail())
			default:
				p.Errors = append(p.Errors, &huma.ErrorDetail{Message: err.Error()})
			}
		}
		p.RequestID = requestIDFrom(ctx)
		if hctx != nil {
			p.Instance = hctx.URL().Path
		}
		return p
	}
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		return huma.NewErrorWithContext(nil, status, msg, errs...)
	}
}

// transient reports errors of a dependency that clear by themselves: the
// Kubernetes API server timing out, throttling or unavailable, or a
// connection to it refused or reset.
func transient(err error) bool {
	if apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsUnexpectedServerError(err) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}
