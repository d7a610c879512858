package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Engine is the e-commerce software a store runs.
// +kubebuilder:validation:Enum=medusa;woocommerce
type Engine string

const (
	// EngineMedusa runs a MedusaJS v2 server, worker and storefleet's own
	// server-rendered storefront.
	EngineMedusa Engine = "medusa"
	// EngineWooCommerce is accepted and recorded but not provisioned yet: its
	// stores stay in phase ComingSoon.
	EngineWooCommerce Engine = "woocommerce"
)

// Plan sizes a store: its namespace quota, container limits and replicas.
// +kubebuilder:validation:Enum=small;medium;large
type Plan string

const (
	PlanSmall  Plan = "small"
	PlanMedium Plan = "medium"
	PlanLarge  Plan = "large"
)

// Plans are the plans in the order of the enum above: the Intent API checks
// and lists them from here, and a test keeps the CRD's enum equal.
var Plans = []Plan{PlanSmall, PlanMedium, PlanLarge}

// MaxDatabaseStorage is the largest spec.values.databaseStorage of each
// plan: the plan's storage quota (requests.storage of its ResourceQuota) less
// the store's uploads volume (1Gi), so the database volume an owner asks for
// can always be created. The CRD's rule on StoreSpec holds the same numbers
// (TestValidateBoundsDatabaseStorage), the operator's plans the quotas
// (TestDatabaseStorageFitsThePlanQuota).
var MaxDatabaseStorage = map[Plan]resource.Quantity{
	PlanSmall:  resource.MustParse("19Gi"),
	PlanMedium: resource.MustParse("59Gi"),
	PlanLarge:  resource.MustParse("199Gi"),
}

// MinDatabaseStorage is the smallest database volume a store may ask for.
var MinDatabaseStorage = resource.MustParse("1Gi")

// Phase is the one-word summary of a store's state, for people; automation
// reads the conditions.
// +kubebuilder:validation:Enum=Pending;Provisioning;Ready;Failed;Deleting;ComingSoon
type Phase string

const (
	PhasePending      Phase = "Pending"
	PhaseProvisioning Phase = "Provisioning"
	PhaseReady        Phase = "Ready"
	PhaseFailed       Phase = "Failed"
	PhaseDeleting     Phase = "Deleting"
	PhaseComingSoon   Phase = "ComingSoon"
)

// Phases are the phases in the order of the enum above: the Intent API's
// document lists them from here, and a test keeps the CRD's enum equal.
var Phases = []Phase{PhasePending, PhaseProvisioning, PhaseReady, PhaseFailed, PhaseDeleting, PhaseComingSoon}

// DeliveryMode is how a store's chart is installed.
// +kubebuilder:validation:Enum=helm;flux
type DeliveryMode string

const (
	// DeliveryHelm installs the chart in-process with the Helm SDK.
	DeliveryHelm DeliveryMode = "helm"
	// DeliveryFlux applies a Flux HelmRelease that helm-controller installs.
	DeliveryFlux DeliveryMode = "flux"
)

// Runtime says whether a store's pods really run. kwok's nodes only
// simulate pods (a Ready on them proves the manifests, not the store), so a
// store on them says so wherever its state is shown.
// +kubebuilder:validation:Enum=Real;Simulated;Mixed
type Runtime string

const (
	// RuntimeReal: every scheduled pod is on a node with a kubelet.
	RuntimeReal Runtime = "Real"
	// RuntimeSimulated: every scheduled pod is on a kwok node.
	RuntimeSimulated Runtime = "Simulated"
	// RuntimeMixed: some pods run, some are simulated.
	RuntimeMixed Runtime = "Mixed"
)

// SimulatedNodeAnnotation marks the nodes kwok manages (and only those):
// their pods' statuses are written by kwok, no container runs.
const SimulatedNodeAnnotation = "kwok.x-k8s.io/node"

// Channel is the way a store was asked for.
// +kubebuilder:validation:Enum=api;git;kubectl
type Channel string

const (
	ChannelAPI     Channel = "api"
	ChannelGit     Channel = "git"
	ChannelKubectl Channel = "kubectl"
)

// Store is one e-commerce store: the intent (spec) and everything storefleet
// knows about provisioning it (status). It is cluster-scoped; its workloads
// live in the namespace "store-<name>".
//
// The name rules are enforced by the API server itself, so every way in
// (kubectl, the Intent API, Git) gets the same answer.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=st,categories=storefleet
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Engine",type=string,JSONPath=`.spec.engine`
// +kubebuilder:printcolumn:name="Owner",type=string,JSONPath=`.spec.owner`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Runtime",type=string,JSONPath=`.status.runtime`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.urls.storefront`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="name must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit"
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 40",message="name must be at most 40 characters (the namespace store-<name>, the Helm release and the chart's object names are derived from it)"
// +kubebuilder:validation:XValidation:rule="!(self.metadata.name in ['admin', 'api', 'app', 'apps', 'auth', 'dashboard', 'default', 'docs', 'flux', 'flux-system', 'git', 'gitea', 'grafana', 'hooks', 'kube', 'kube-system', 'kube-public', 'kube-node-lease', 'login', 'metrics', 'platform', 'prometheus', 'root', 'sso', 'status', 'storefleet', 'system', 'www'])",message="name is reserved"
type Store struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   StoreSpec   `json:"spec"`
	Status StoreStatus `json:"status,omitempty"`
}

// StoreSpec is what the requester asked for. The database volume must fit
// the plan's storage quota (MaxDatabaseStorage): a larger one could never be
// created, and the store would fail after it was accepted.
// +kubebuilder:validation:XValidation:rule="!has(self.values) || !has(self.values.databaseStorage) || quantity(string(self.values.databaseStorage)).compareTo(quantity({'small': '19Gi', 'medium': '59Gi', 'large': '199Gi'}[(has(self.plan) ? self.plan : 'small')])) <= 0",messageExpression="'must be at most ' + {'small': '19Gi', 'medium': '59Gi', 'large': '199Gi'}[(has(self.plan) ? self.plan : 'small')] + ' on plan ' + (has(self.plan) ? self.plan : 'small') + ': its storage quota less the uploads volume'",fieldPath=".values.databaseStorage",reason=FieldValueInvalid
type StoreSpec struct {
	// Engine is the e-commerce software to run.
	// +required
	Engine Engine `json:"engine"`

	// Owner is the user the store belongs to; it never changes, so a store
	// cannot be handed to another user by editing it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._@:-]*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="owner is immutable"
	Owner string `json:"owner"`

	// Plan sizes the store's quota, limits and replicas.
	// +kubebuilder:default=small
	// +optional
	Plan Plan `json:"plan,omitempty"`

	// Domain is the DNS suffix of the store's hosts (<name>.<domain>); empty
	// means the platform's default domain. It must be one of the platform's
	// allowed domains (the operator's --allowed-domains); another stalls the
	// store before anything is rendered.
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Domain string `json:"domain,omitempty"`

	// ChartVersion pins the store chart's version; empty means the platform's default.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$`
	// +optional
	ChartVersion string `json:"chartVersion,omitempty"`

	// Values are the few chart settings a store owner may override. Anything
	// else (images, security contexts, policies) is the platform's to set.
	// +optional
	Values *StoreValues `json:"values,omitempty"`

	// Suspend stops reconciling the store; what exists is left as it is.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// StoreValues are the restricted chart overrides of a store.
type StoreValues struct {
	// BackendReplicas overrides the plan's Medusa server replicas.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=5
	// +optional
	BackendReplicas *int32 `json:"backendReplicas,omitempty"`

	// StorefrontReplicas overrides the plan's storefront replicas.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=5
	// +optional
	StorefrontReplicas *int32 `json:"storefrontReplicas,omitempty"`

	// DatabaseStorage overrides the plan's PostgreSQL volume size: at least
	// MinDatabaseStorage, at most the plan's MaxDatabaseStorage.
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity('1Gi')) >= 0",message="must be at least 1Gi"
	// +optional
	DatabaseStorage *resource.Quantity `json:"databaseStorage,omitempty"`
}

// StoreStatus is everything observed about a store. It is written only by the
// operator, through the status subresource.
type StoreStatus struct {
	// ObservedGeneration is the generation whose spec was fully handled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase summarises the conditions in one word.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// Conditions: Ready, Reconciling and Stalled (kstatus), plus one per
	// provisioning step (see the ConditionType constants).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ActivityLog holds the last ActivityLogSize transitions, oldest first.
	// +kubebuilder:validation:MaxItems=15
	// +optional
	ActivityLog []ActivityEntry `json:"activityLog,omitempty"`

	// URLs where the store answers once ready.
	// +optional
	URLs *StoreURLs `json:"urls,omitempty"`

	// Release is the installed chart release.
	// +optional
	Release *ReleaseStatus `json:"release,omitempty"`

	// Inventory lists the objects the store's release manages.
	// +listType=atomic
	// +optional
	Inventory []InventoryEntry `json:"inventory,omitempty"`

	// Drift records the last drift check and correction.
	// +optional
	Drift *DriftStatus `json:"drift,omitempty"`

	// Source records how the store was asked for.
	// +optional
	Source *SourceStatus `json:"source,omitempty"`

	// Runtime says whether the store's scheduled pods really run (Real), are
	// simulated by kwok (Simulated) or both (Mixed); empty until one is
	// scheduled.
	// +optional
	Runtime Runtime `json:"runtime,omitempty"`

	// Diagnosis names the pod-level root cause while the store is not ready.
	// +optional
	Diagnosis *Diagnosis `json:"diagnosis,omitempty"`

	// Failures counts consecutive failed reconcile attempts of this
	// generation; at the operator's limit the phase becomes Failed.
	// +optional
	Failures int32 `json:"failures,omitempty"`

	// LastFailureTime is when the last failed attempt was counted.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// LastHandledRetry is the value of the retry annotation last acted on.
	// +optional
	LastHandledRetry string `json:"lastHandledRetry,omitempty"`
}

// ActivityLogSize is how many entries status.activityLog keeps.
const ActivityLogSize = 15

// ActivityEntry is one transition in a store's life.
type ActivityEntry struct {
	// Timestamp of the transition.
	Timestamp metav1.Time `json:"timestamp"`
	// Event is the transition's name, e.g. NAMESPACE_READY (see the Event constants).
	// +kubebuilder:validation:MaxLength=64
	Event string `json:"event"`
	// Message says what happened, in the words of the object that did it.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
	// Seq numbers the store's entries, 1, 2, 3 ... (it survives the ring's
	// rotation, so readers can resume after the last one they saw).
	// +optional
	Seq int64 `json:"seq,omitempty"`
}

// StoreURLs are the addresses of a ready store.
type StoreURLs struct {
	// +optional
	Storefront string `json:"storefront,omitempty"`
	// +optional
	Admin string `json:"admin,omitempty"`
}

// HelmStatus is the state of a store's Helm release in Helm's words: the
// SDK's release status (deployed, failed, pending-install, ...) or, with
// Flux, what helm-controller's conditions amount to.
type HelmStatus string

const (
	// HelmDeployed: the release is deployed (it may still be rolling out).
	HelmDeployed HelmStatus = "deployed"
	// HelmFailed: the last install or upgrade failed.
	HelmFailed HelmStatus = "failed"
	// HelmPending: no outcome yet for the desired release (Flux).
	HelmPending HelmStatus = "pending"
)

// ReleaseStatus describes the chart release that runs the store.
type ReleaseStatus struct {
	// Mode is the delivery strategy that owns the release.
	Mode DeliveryMode `json:"mode"`
	// Name of the Helm release.
	Name string `json:"name"`
	// Namespace holding the release (and its Helm storage).
	Namespace string `json:"namespace"`
	// Revision is the Helm release revision.
	// +optional
	Revision int `json:"revision,omitempty"`
	// ChartVersion is the installed chart's version.
	// +optional
	ChartVersion string `json:"chartVersion,omitempty"`
	// Digest identifies the desired chart and values; an upgrade happens only when it changes.
	// +optional
	Digest string `json:"digest,omitempty"`
}

// InventoryEntry identifies one managed object.
type InventoryEntry struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// DriftStatus records the drift checks of a store's managed objects.
type DriftStatus struct {
	// LastChecked is when the managed objects were last compared with the
	// release, as of the status's last change: a check that finds nothing
	// new is not written (storefleet_drift_checks_total counts every check).
	// +optional
	LastChecked *metav1.Time `json:"lastChecked,omitempty"`
	// LastCorrected is when drift was last healed.
	// +optional
	LastCorrected *metav1.Time `json:"lastCorrected,omitempty"`
	// LastCorrection says what was healed.
	// +optional
	LastCorrection string `json:"lastCorrection,omitempty"`
	// Corrections counts healed drifts.
	// +optional
	Corrections int64 `json:"corrections,omitempty"`
}

// SourceStatus records where a store's intent came from.
type SourceStatus struct {
	Channel Channel `json:"channel"`
	// +optional
	User string `json:"user,omitempty"`
	// +optional
	RequestID string `json:"requestID,omitempty"`
	// Commit is the stores-repo commit that declared the store (Git channel).
	// +optional
	Commit string `json:"commit,omitempty"`
	// PullRequest is the URL of the pull request that declared the store.
	// +optional
	PullRequest string `json:"pullRequest,omitempty"`
	// GitAuthor is the author of the commit that declared the store, as Git
	// recorded it: not an authenticated identity (Git channel).
	// +optional
	GitAuthor string `json:"gitAuthor,omitempty"`
}

// Diagnosis is the root cause found on the store's pods or events.
type Diagnosis struct {
	// Reason is a CamelCase cause, e.g. CrashLoopBackOff, Unschedulable, QuotaExceeded.
	Reason string `json:"reason"`
	// Message is the cause in the words of the object that reported it.
	Message string `json:"message"`
	// Object is the kind/name the cause was found on.
	// +optional
	Object string `json:"object,omitempty"`
}

// +kubebuilder:object:root=true

// StoreList is a list of Stores.
type StoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Store `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Store{}, &StoreList{})
}

// GetConditions returns the status conditions (conditions.Getter).
func (s *Store) GetConditions() []metav1.Condition { return s.Status.Conditions }

// SetConditions replaces the status conditions (conditions.Setter).
func (s *Store) SetConditions(c []metav1.Condition) { s.Status.Conditions = c }
