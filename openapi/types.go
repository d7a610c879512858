package openapi

import (
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// CreateStoreRequest asks for a new store.
type CreateStoreRequest struct {
	Name   string `json:"name" minLength:"1" maxLength:"40" pattern:"^[a-z]([-a-z0-9]*[a-z0-9])?$" patternDescription:"lowercase letters, digits and '-', starting with a letter and ending with a letter or digit" doc:"The store's name: its hosts are <name>.<domain> and its namespace store-<name>. Some names are reserved." example:"acme"`
	Engine string `json:"engine" enum:"medusa,woocommerce" doc:"E-commerce engine. WooCommerce is accepted and shown as coming soon." example:"medusa"`
	Plan   string `json:"plan,omitempty" enum:"small,medium,large" default:"small" doc:"Size: quota, limits and replicas." example:"small"`
	Domain string `json:"domain,omitempty" maxLength:"200" pattern:"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$" patternDescription:"a DNS name" doc:"DNS suffix of the store's hosts: one of the platform's allowed domains; empty means the platform's default domain." example:"shops.example.com"`
}

// Resolve adds the rule a schema cannot express, so it is reported together
// with the schema's findings.
func (r *CreateStoreRequest) Resolve(_ huma.Context, prefix *huma.PathBuffer) []error {
	if slices.Contains(v1alpha1.ReservedNames, r.Name) {
		return []error{&huma.ErrorDetail{Location: prefix.With("name"), Message: "name is reserved", Value: r.Name}}
	}
	return nil
}

// StoreSummary is a store as lists show it.
type StoreSummary struct {
	Name      string         `json:"name" example:"acme"`
	Engine    string         `json:"engine" enum:"medusa,woocommerce"`
	Plan      string         `json:"plan" enum:"small,medium,large"`
	Owner     string         `json:"owner" example:"alice"`
	Domain    string         `json:"domain,omitempty"`
	Phase     v1alpha1.Phase `json:"phase" doc:"The store's state in one word."`
	Ready     bool           `json:"ready"`
	Message   string         `json:"message,omitempty" doc:"Why the store is not ready, in the words of the object that said so."`
	URLs      *StoreURLs     `json:"urls,omitempty"`
	Runtime   string         `json:"runtime,omitempty" enum:"Real,Simulated,Mixed" doc:"Whether the store's pods really run (Real) or are simulated by kwok nodes (Simulated; a Ready then proves the manifests, not the store), or both (Mixed). Empty until a pod is scheduled."`
	CreatedAt time.Time      `json:"createdAt"`
}

// Store is one store in full.
type Store struct {
	StoreSummary
	Conditions []Condition `json:"conditions" doc:"Ready, Reconciling, Stalled and one per provisioning step."`
	Activity   []Activity  `json:"activity" doc:"The last transitions, oldest first."`
	Release    *Release    `json:"release,omitempty"`
	Drift      *Drift      `json:"drift,omitempty"`
	Source     *Source     `json:"source,omitempty"`
	Diagnosis  *Diagnosis  `json:"diagnosis,omitempty"`
}

type StoreURLs struct {
	Storefront string `json:"storefront,omitempty" example:"http://acme.localtest.me"`
	Admin      string `json:"admin,omitempty" example:"http://acme.localtest.me/app"`
}

type Condition struct {
	Type               string    `json:"type" example:"Ready"`
	Status             string    `json:"status" enum:"True,False,Unknown"`
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

type Activity struct {
	Timestamp time.Time `json:"timestamp"`
	Event     string    `json:"event" example:"NAMESPACE_READY"`
	Message   string    `json:"message,omitempty"`
}

type Release struct {
	Mode         string `json:"mode" enum:"helm,flux"`
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	Revision     int    `json:"revision,omitempty"`
	ChartVersion string `json:"chartVersion,omitempty"`
}

type Drift struct {
	LastChecked    *time.Time `json:"lastChecked,omitempty" doc:"When the store's objects were last compared with its release, as of the status's last change (a check that finds nothing new is not written)."`
	LastCorrected  *time.Time `json:"lastCorrected,omitempty"`
	LastCorrection string     `json:"lastCorrection,omitempty"`
	Corrections    int64      `json:"corrections"`
}

type Source struct {
	Channel string `json:"channel" enum:"api,git,kubectl"`
	// User is who asked through the API; a Git store has none (see GitAuthor).
	User        string `json:"user,omitempty" doc:"The authenticated user who asked through the Intent API; empty for stores declared in Git."`
	RequestID   string `json:"requestId,omitempty"`
	Commit      string `json:"commit,omitempty"`
	PullRequest string `json:"pullRequest,omitempty"`
	GitAuthor   string `json:"gitAuthor,omitempty" doc:"Author of the commit that declared the store, as Git recorded it: whatever the committer claimed, not an authenticated identity."`
}

type Diagnosis struct {
	Reason  string `json:"reason" example:"CrashLoopBackOff"`
	Message string `json:"message"`
	Object  string `json:"object,omitempty"`
}

// StoreList is one page of stores.
type StoreList struct {
	Items []StoreSummary `json:"items"`
	// Next is the cursor of the following page; empty on the last one.
	Next string `json:"next,omitempty" doc:"Pass as cursor to get the next page; absent on the last page."`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status" example:"ok"`
}

// phaseOf is the phase a reader should see: a Store the operator has not
// written yet is Pending; one being deleted is Deleting at once.
func phaseOf(s *v1alpha1.Store) v1alpha1.Phase {
	switch {
	case !s.DeletionTimestamp.IsZero():
		return v1alpha1.PhaseDeleting
	case s.Status.Phase == "":
		return v1alpha1.PhasePending
	}
	return s.Status.Phase
}

func summaryOf(s *v1alpha1.Store) StoreSummary {
	out := StoreSummary{
		Name: s.Name, Engine: string(s.Spec.Engine), Plan: string(s.Spec.Plan), Owner: s.Spec.Owner,
		Domain: s.Spec.Domain, Phase: phaseOf(s), CreatedAt: s.CreationTimestamp.UTC(),
		Runtime: string(s.Status.Runtime),
	}
	if out.Plan == "" {
		out.Plan = string(v1alpha1.PlanSmall)
	}
	for _, c := range s.Status.Conditions {
		if c.Type == v1alpha1.ReadyCondition {
			out.Ready = c.Status == "True"
			if !out.Ready {
				out.Message = c.Message
			}
		}
	}
	if u := s.Status.URLs; u != nil && out.Ready {
		out.URLs = &StoreURLs{Storefront: u.Storefront, Admin: u.Admin}
	}
	return out
}

// StoreOf is the API view of a Store object.
func StoreOf(s *v1alpha1.Store) Store {
	out := Store{StoreSummary: summaryOf(s), Conditions: []Condition{}, Activity: []Activity{}}
	for _, c := range s.Status.Conditions {
		out.Conditions = append(out.Conditions, Condition{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message, LastTransitionTime: c.LastTransitionTime.UTC()})
	}
	for _, a := range s.Status.ActivityLog {
		out.Activity = append(out.Activity, Activity{Timestamp: a.Timestamp.UTC(), Event: a.Event, Message: a.Message})
	}
	if r := s.Status.Release; r != nil {
		out.Release = &Release{Mode: string(r.Mode), Name: r.Name, Namespace: r.Namespace, Revision: r.Revision, ChartVersion: r.ChartVersion}
	}
	if d := s.Status.Drift; d != nil {
		out.Drift = &Drift{LastCorrection: d.LastCorrection, Corrections: d.Corrections}
		if d.LastChecked != nil {
			out.Drift.LastChecked = ptrTime(d.LastChecked.UTC())
		}
		if d.LastCorrected != nil {
			out.Drift.LastCorrected = ptrTime(d.LastCorrected.UTC())
		}
	}
	src := s.Status.Source
	if src == nil {
		// Until the operator has copied it, the origin is on the object.
		src = v1alpha1.SourceOf(s)
	}
	out.Source = &Source{Channel: string(src.Channel), User: src.User, RequestID: src.RequestID, Commit: src.Commit, PullRequest: src.PullRequest, GitAuthor: src.GitAuthor}
	if d := s.Status.Diagnosis; d != nil {
		out.Diagnosis = &Diagnosis{Reason: d.Reason, Message: d.Message, Object: d.Object}
	}
	return out
}

func ptrTime(t time.Time) *time.Time { return &t }
