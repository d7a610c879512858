package openapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// AdminInviter asks a store's running backend for one-time admin access
// (internal/storeadmin calls the store's own route). No password passes
// through: the answer is a link the owner opens once to choose one.
type AdminInviter interface {
	Invite(ctx context.Context, st *v1alpha1.Store, email, baseURL string) (*AdminInvite, error)
}

// ErrStoreUnreachable is an AdminInviter's answer when the store's backend
// cannot be asked (not answering, no platform token yet): the caller may
// retry.
var ErrStoreUnreachable = errors.New("the store's backend cannot be reached")

type AdminInviteRequest struct {
	Email string `json:"email,omitempty" maxLength:"254" format:"email" doc:"The e-mail the admin account is for; default: your user id, when it is an e-mail address."`
}

// AdminInvite is the one-time admin link, shown to the store's owner only.
type AdminInvite struct {
	Kind      string    `json:"kind" enum:"invite,reset" doc:"invite: a new admin account (valid 24 h, usable once); reset: the account exists, a password-reset link (valid 15 min)."`
	Email     string    `json:"email" example:"alice@example.com"`
	URL       string    `json:"url" doc:"Open once to choose the admin password. A credential until used: do not share it."`
	ExpiresAt time.Time `json:"expiresAt"`
}

type AdminInviteInput struct {
	StoreNameInput
	Body *AdminInviteRequest `required:"false"`
}

type AdminInviteOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         AdminInvite
}

func (s *Server) registerAdminInvite(mutate huma.Middlewares, common []int) {
	huma.Register(s.api, huma.Operation{
		OperationID: "create-admin-invite", Method: http.MethodPost, Path: APIPrefix + "/stores/{name}/admin-invite",
		Summary: "Get a one-time admin link",
		Description: "For the store's owner only (anyone else gets 404): asks the store's running Medusa for a link that opens its admin to set a password. " +
			"The link is in this answer and nowhere else (not in the Store, events, logs or Git); each call rotates it, so an earlier link stops working. " +
			"The call is audited (user, store, e-mail, request id). 409 while the store is not Ready; 503 when its backend does not answer.",
		Tags: []string{"stores"}, Security: storeSecurity, Middlewares: mutate, MaxBodyBytes: s.cfg.MaxBodyBytes,
		Errors: append(common, http.StatusNotFound, http.StatusConflict, http.StatusTooManyRequests, http.StatusServiceUnavailable),
	}, s.createAdminInvite)
}

func (s *Server) createAdminInvite(ctx context.Context, in *AdminInviteInput) (*AdminInviteOutput, error) {
	st, err := s.ownedLive(ctx, in.Name)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	id := identityFrom(ctx)
	email := id.User
	if in.Body != nil && in.Body.Email != "" {
		email = in.Body.Email
	}
	if !strings.Contains(email, "@") {
		p := problemFor(ctx, s.log, errorf(KindInvalid, "validation failed"))
		p.Errors = []*huma.ErrorDetail{{Location: "body.email", Message: "an e-mail address is required: your user id is not one", Value: email}}
		return nil, p
	}
	if st.Spec.Engine != v1alpha1.EngineMedusa {
		return nil, s.fail(ctx, errorf(KindNotReady, "store %q runs %s, which has no admin yet", st.Name, st.Spec.Engine))
	}
	if phaseOf(st) != v1alpha1.PhaseReady || st.Status.URLs == nil || st.Status.URLs.Storefront == "" {
		return nil, s.fail(ctx, errorf(KindNotReady, "store %q is not Ready yet; its admin can be opened once it is", st.Name))
	}
	if s.deps.Admin == nil {
		return nil, s.fail(ctx, errorf(KindUnavailable, "this API cannot reach store backends (no admin inviter configured)"))
	}
	inv, err := s.deps.Admin.Invite(ctx, st, email, st.Status.URLs.Storefront)
	if err != nil {
		if errors.Is(err, ErrStoreUnreachable) {
			return nil, s.fail(ctx, &Error{Kind: KindUnavailable, RetryAfter: 10 * time.Second, Message: err.Error()})
		}
		return nil, s.fail(ctx, err)
	}
	// The audit line of this request names the e-mail; the link never is logged.
	auditDetail(ctx, "email", inv.Email, "inviteKind", inv.Kind)
	return &AdminInviteOutput{CacheControl: "no-store", Body: *inv}, nil
}
