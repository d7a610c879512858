package openapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/storefleet/storefleet/openapi"
)

// TestPlansAllowedPerGroup: with a plan policy, a user picks only the plans
// of their groups (and of "*", everyone); another plan is a 403 naming the
// plans they may pick, before anything is created.
func TestPlansAllowedPerGroup(t *testing.T) {
	policy, err := openapi.ParsePlanPolicy("*=small; pro=small,medium")
	if err != nil {
		t.Fatal(err)
	}
	_, api := newUnitTestAPI(t, options{cfg: openapi.Config{Plans: policy}})
	groups := func(g string) string { return openapi.GroupsHeader + ": " + g }
	cases := []struct {
		name, plan, groups string
		status             int
		allowed            string
	}{
		{name: "everyone-small", plan: "small", status: http.StatusCreated},
		{name: "default-plan", plan: "", status: http.StatusCreated},
		{name: "everyone-medium", plan: "medium", status: http.StatusForbidden, allowed: "small"},
		{name: "pro-medium", plan: "medium", groups: "staff, pro", status: http.StatusCreated},
		{name: "pro-large", plan: "large", groups: "pro", status: http.StatusForbidden, allowed: "small, medium"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := map[string]any{"name": c.name, "engine": "medusa"}
			if c.plan != "" {
				body["plan"] = c.plan
			}
			rec := api.Post("/api/v1/stores", as("alice"), groups(c.groups), body)
			if c.status != http.StatusForbidden {
				if rec.Code != c.status {
					t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body.String())
				}
				return
			}
			p := problem(t, rec, http.StatusForbidden, "plan-not-allowed")
			if !strings.Contains(p.Detail, `plan "`+c.plan+`"`) || !strings.Contains(p.Detail, "you may pick: "+c.allowed) {
				t.Errorf("detail %q does not name the plan and the allowed ones (%s)", p.Detail, c.allowed)
			}
			if len(p.Errors) != 1 || p.Errors[0].Location != "body.plan" {
				t.Errorf("errors %+v, want one at body.plan", p.Errors)
			}
			if rec := api.Get("/api/v1/stores/"+c.name, as("alice")); rec.Code != http.StatusNotFound {
				t.Errorf("refused store exists: %d", rec.Code)
			}
		})
	}
	// Repeating an earlier create is answered with the store, whatever the
	// caller's groups are now: it creates nothing.
	if rec := api.Post("/api/v1/stores", as("alice"), map[string]any{"name": "pro-medium", "engine": "medusa", "plan": "medium"}); rec.Code != http.StatusOK {
		t.Errorf("repeated create of an existing medium store: %d %s", rec.Code, rec.Body.String())
	}
	// The dashboard learns what to offer from /me.
	me := decode[openapi.Me](t, api.Get("/api/v1/me", as("alice"), groups("pro")))
	if !slices.Equal(me.Plans, []string{"small", "medium"}) {
		t.Errorf("/me plans %v, want [small medium]", me.Plans)
	}
}

// TestEveryPlanForEveryoneByDefault: without a policy nothing changes.
func TestEveryPlanForEveryoneByDefault(t *testing.T) {
	_, api := newUnitTestAPI(t, options{})
	if rec := api.Post("/api/v1/stores", as("alice"), map[string]any{"name": "big", "engine": "medusa", "plan": "large"}); rec.Code != http.StatusCreated {
		t.Fatalf("large without a policy: %d %s", rec.Code, rec.Body.String())
	}
	me := decode[openapi.Me](t, api.Get("/api/v1/me", as("alice")))
	if !slices.Equal(me.Plans, []string{"small", "medium", "large"}) {
		t.Errorf("/me plans %v, want every plan", me.Plans)
	}
}

// TestPlansFollowTheTokensGroups: in jwt mode the groups claim decides.
func TestPlansFollowTheTokensGroups(t *testing.T) {
	iss := newIssuer(t)
	auth, err := openapi.NewJWTAuth(context.Background(), openapi.JWTConfig{Issuer: iss.srv.URL, Audience: "storefleet", Algorithms: []string{"RS256"}})
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := openapi.ParsePlanPolicy("*=small;pro=medium")
	_, api := newUnitTestAPI(t, options{cfg: openapi.Config{Auth: auth, Plans: policy}})
	now := time.Now()
	claims := jwt.Claims{Issuer: iss.srv.URL, Subject: "alice", Audience: jwt.Audience{"storefleet"}, Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)}
	bearer := func(groups ...string) string {
		return "Authorization: Bearer " + iss.token(t, iss.key, iss.kid, claims, map[string]any{"groups": groups})
	}
	problem(t, api.Post("/api/v1/stores", bearer("staff"), map[string]any{"name": "mid", "engine": "medusa", "plan": "medium"}), http.StatusForbidden, "plan-not-allowed")
	if rec := api.Post("/api/v1/stores", bearer("pro"), map[string]any{"name": "mid", "engine": "medusa", "plan": "medium"}); rec.Code != http.StatusCreated {
		t.Fatalf("medium for a pro token: %d %s", rec.Code, rec.Body.String())
	}
}

func TestParsePlanPolicy(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{in: "pro=huge", want: `group "pro": unknown plan "huge" (plans: small, medium, large)`},
		{in: "pro", want: `"pro" is not group=plan,plan`},
		{in: "=small", want: `"=small" is not group=plan,plan`},
		{in: "pro=", want: `group "pro" lists no plan`},
	} {
		if _, err := openapi.ParsePlanPolicy(c.in); err == nil || err.Error() != c.want {
			t.Errorf("ParsePlanPolicy(%q) = %v, want %q", c.in, err, c.want)
		}
	}
	if p, err := openapi.ParsePlanPolicy(" "); err != nil || p != nil {
		t.Errorf("an empty policy: %v, %v; want none (every plan for everyone)", p, err)
	}
}
