package openapi

import (
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// The words clients match on — phases, the provisioning steps with their
// conditions and events, the reasons that mean failure — come from
// api/v1alpha1 and are published in the OpenAPI document, from which the
// dashboard generates its copy (web/scripts/generate.mjs); nothing is typed
// twice.

// phaseSchema is how the document shows v1alpha1.Phase: a string, one of
// v1alpha1.Phases.
type phaseSchema string

func (phaseSchema) Schema(huma.Registry) *huma.Schema {
	s := &huma.Schema{Type: huma.TypeString}
	for _, p := range v1alpha1.Phases {
		s.Enum = append(s.Enum, string(p))
	}
	return s
}

// describeVocabularyTypes makes the document list the values of the
// v1alpha1 enums the API types use.
func describeVocabularyTypes(r huma.Registry) {
	r.RegisterTypeAlias(reflect.TypeFor[v1alpha1.Phase](), reflect.TypeFor[phaseSchema]())
}

// Step is one provisioning step as clients show it: done when its condition
// is True, reached when its event enters the activity log.
type Step struct {
	// Key names the step for clients (stable, lowercase).
	Key string `json:"key"`
	// Title is the step's name for people.
	Title     string `json:"title"`
	Condition string `json:"condition"`
	Event     string `json:"event"`
}

// Provisioning is the vocabulary of a store's progress, published as the
// Store schema's x-provisioning.
type Provisioning struct {
	// StartEvent begins an attempt (its time starts the first step's clock).
	StartEvent string `json:"startEvent"`
	// Steps are in the order a store goes through them; Ready closes them.
	Steps []Step `json:"steps"`
	// ReadyCondition is True when the store is ready.
	ReadyCondition string `json:"readyCondition"`
	// FailureReasons are the reasons of a False step condition that mean the
	// step failed, not that it is still under way.
	FailureReasons []string `json:"failureReasons"`
	// CommittedReason and PullRequestReason are the Ready reasons of a store
	// that exists only in the stores repo so far (Git intent).
	CommittedReason   string `json:"committedReason"`
	PullRequestReason string `json:"pullRequestReason"`
}

// provisioning is what x-provisioning says.
var provisioning = Provisioning{
	StartEvent: v1alpha1.EventProvisioningStart,
	Steps: []Step{
		{Key: "namespace", Title: "Namespace", Condition: v1alpha1.NamespaceReadyCondition, Event: v1alpha1.EventNamespaceReady},
		{Key: "helm", Title: "Helm release", Condition: v1alpha1.HelmInstalledCondition, Event: v1alpha1.EventHelmInstalled},
		{Key: "database", Title: "Database", Condition: v1alpha1.DatabaseReadyCondition, Event: v1alpha1.EventDatabaseReady},
		{Key: "backend", Title: "Backend", Condition: v1alpha1.BackendReadyCondition, Event: v1alpha1.EventBackendReady},
		{Key: "storefront", Title: "Storefront", Condition: v1alpha1.StorefrontReadyCondition, Event: v1alpha1.EventStorefrontReady},
		{Key: "ready", Title: "Ready", Condition: v1alpha1.ReadyCondition, Event: v1alpha1.EventReady},
	},
	ReadyCondition: v1alpha1.ReadyCondition,
	FailureReasons: []string{
		v1alpha1.ReasonInvalidSpec, v1alpha1.ReasonNamespaceConflict, v1alpha1.ReasonInstallFailed, v1alpha1.ReasonUpgradeFailed,
		v1alpha1.ReasonWorkloadFailing, v1alpha1.ReasonRetryLimitReached, v1alpha1.ReasonDeliveryUnavailable,
		v1alpha1.ReasonCredentialsLost,
	},
	CommittedReason:   ReasonCommitted,
	PullRequestReason: ReasonPullRequestOpen,
}

// publishVocabulary puts the reserved store names on the create request's
// name (x-reserved-names) and the provisioning vocabulary on the Store
// schema (x-provisioning), so clients such as the dashboard generate them
// from this document instead of repeating them.
func publishVocabulary(doc *huma.OpenAPI) {
	schemas := doc.Components.Schemas.Map()
	if req := schemas["CreateStoreRequest"]; req != nil && req.Properties["name"] != nil {
		extend(req.Properties["name"], "x-reserved-names", v1alpha1.ReservedNames)
	}
	if st := schemas["Store"]; st != nil {
		extend(st, "x-provisioning", provisioning)
	}
}

func extend(s *huma.Schema, key string, value any) {
	if s.Extensions == nil {
		s.Extensions = map[string]any{}
	}
	s.Extensions[key] = value
}
