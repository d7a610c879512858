package openapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// AuthInfo tells a client (the dashboard) how to identify itself before it
// has an identity.
type AuthInfo struct {
	Mode string `json:"mode" enum:"header,jwt" doc:"header: a trusted proxy sets X-User-Id; jwt: send an OIDC bearer token."`
	// The user switcher is for trying storefleet on a laptop (storefleet
	// dev): there the caller on loopback may say who it is.
	UserSwitcher bool   `json:"userSwitcher" doc:"The client may set X-User-Id itself (storefleet dev only): dashboards offer a user switcher."`
	UserHeader   string `json:"userHeader,omitempty" doc:"The header carrying the user id in header mode." example:"X-User-Id"`
	Issuer       string `json:"issuer,omitempty" doc:"The OIDC issuer whose tokens are accepted in jwt mode."`
}

// Me is the caller as the API sees it.
type Me struct {
	User  string `json:"user" doc:"The user id; stores created by the caller are owned by it." example:"alice"`
	Admin bool   `json:"admin" doc:"May read every user's stores (all=true)."`
	// Plans lets a dashboard offer only what a create would accept.
	Plans []string `json:"plans" nullable:"false" enum:"small,medium,large" doc:"The plans the caller may pick when creating a store (set per group by the platform)." example:"[\"small\",\"medium\"]"`
}

type AuthInfoOutput struct{ Body AuthInfo }
type MeOutput struct{ Body Me }

// registerSession adds the two operations a dashboard starts with.
func (s *Server) registerSession() {
	huma.Register(s.api, huma.Operation{
		OperationID: "get-auth", Method: http.MethodGet, Path: APIPrefix + "/auth",
		Summary:     "How to authenticate",
		Description: "The authentication this server runs with, so a client knows what to send before it has an identity.",
		Tags:        []string{"session"}, Security: public,
	}, func(context.Context, *struct{}) (*AuthInfoOutput, error) {
		info := AuthInfo{UserSwitcher: s.cfg.UserSwitcher}
		if s.cfg.Auth != nil {
			info.Mode = s.cfg.Auth.Scheme()
		}
		switch a := s.cfg.Auth.(type) {
		case HeaderAuth:
			info.UserHeader = UserHeader
		case *JWTAuth:
			info.Issuer = a.cfg.Issuer
		}
		return &AuthInfoOutput{Body: info}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "get-me", Method: http.MethodGet, Path: APIPrefix + "/me",
		Summary:     "Who am I",
		Description: "The caller's user id and whether it is an admin; 401 with the reason when the request carries no valid identity.",
		Tags:        []string{"session"}, Security: storeSecurity, Middlewares: huma.Middlewares{s.authenticate},
		Errors: []int{http.StatusUnauthorized},
	}, func(ctx context.Context, _ *struct{}) (*MeOutput, error) {
		id := identityFrom(ctx)
		me := Me{User: id.User, Admin: id.Admin, Plans: []string{}}
		for _, p := range s.cfg.Plans.Allowed(id) {
			me.Plans = append(me.Plans, string(p))
		}
		return &MeOutput{Body: me}, nil
	})
}

// notFoundUnderAPI answers paths under /api/ that no operation serves with a
// problem document, so they never reach the dashboard's SPA fallback.
func (s *Server) notFoundUnderAPI(w http.ResponseWriter, r *http.Request) {
	p := newProblem(KindNotFound, "no operation at "+r.Method+" "+r.URL.Path)
	p.Instance = r.URL.Path
	p.RequestID = requestIDOf(r.Header.Get(RequestIDHeader))
	w.Header().Set(RequestIDHeader, p.RequestID)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(p)
}
