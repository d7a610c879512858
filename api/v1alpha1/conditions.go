package v1alpha1

// Names shared by every package that touches a Store.
const (
	// Finalizer holds a Store until its release and namespace are gone.
	Finalizer = "storefleet.dev/finalizer"

	// RetryAnnotation, set to any new value (a timestamp is customary), asks
	// the operator to try a Failed store again.
	RetryAnnotation = "storefleet.dev/retry"

	// StoreLabel names the Store an object belongs to.
	StoreLabel = "storefleet.dev/store"
	// StoreUIDAnnotation records, on a store's namespace, the UID of the
	// Store it was made for: a name and labels can be copied, a UID cannot.
	StoreUIDAnnotation = "storefleet.dev/store-uid"
	// OwnerLabel carries the store owner on the store's namespace.
	OwnerLabel = "storefleet.dev/owner"
	// ManagedByLabel is the well-known label marking objects storefleet manages.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is ManagedByLabel's value on storefleet's objects.
	ManagedByValue = "storefleet"

	// NamespacePrefix precedes a store's name to form its namespace.
	NamespacePrefix = "store-"

	// MaxNameLength bounds store names so that the namespace, the Helm release
	// and the chart's derived object names all stay within Kubernetes limits.
	MaxNameLength = 40
)

// ReservedNames cannot name a store: they would shadow platform hosts
// (<name>.<domain>: the platform chart's ingress host storefleet.<domain>, the
// forge, dashboards, metrics, sign-in) or read as platform namespaces. The CRD's CEL rule on
// Store carries the same list; a test keeps the two equal.
var ReservedNames = []string{
	"admin", "api", "app", "apps", "auth", "dashboard", "default", "docs", "flux", "flux-system",
	"git", "gitea", "grafana", "hooks", "kube", "kube-system", "kube-public", "kube-node-lease",
	"login", "metrics", "platform", "prometheus", "root", "sso", "status", "storefleet", "system", "www",
}

// NamespaceFor returns the namespace that holds a store's workloads.
func NamespaceFor(storeName string) string { return NamespacePrefix + storeName }

// AdminInviteSecret (in the store's namespace) holds, under
// AdminInviteTokenKey, the platform token that authorises the store
// backend's POST /storefleet/admin-invite, by which the Intent API gets an
// owner's one-time admin link. The operator creates it; the chart mounts it
// into the backend; the API may read Secrets of this name only. It is kept
// apart from the credentials so that reading it reveals no password.
const (
	AdminInviteSecret   = "store-admin-invite"
	AdminInviteTokenKey = "token"
)

// Condition types. Ready, Reconciling and Stalled follow kstatus, so generic
// tools (kubectl wait, Flux health checks) understand a Store; the others are
// one per provisioning step, in the order they become True.
const (
	// ReadyCondition is True when every step below is True.
	ReadyCondition = "Ready"
	// ReconcilingCondition is True while the operator is working towards Ready.
	ReconcilingCondition = "Reconciling"
	// StalledCondition is True when the operator cannot progress without a
	// change of spec (or a retry after the attempt limit).
	StalledCondition = "Stalled"

	// NamespaceReadyCondition: the store namespace exists with its isolation
	// (quota, limits, default-deny network policy) and credentials.
	NamespaceReadyCondition = "NamespaceReady"
	// HelmInstalledCondition: the chart release is deployed at the desired digest.
	HelmInstalledCondition = "HelmInstalled"
	// DatabaseReadyCondition: the PostgreSQL StatefulSet is ready.
	DatabaseReadyCondition = "DatabaseReady"
	// BackendReadyCondition: the Medusa server and worker are ready.
	BackendReadyCondition = "BackendReady"
	// StorefrontReadyCondition: the storefront is ready.
	StorefrontReadyCondition = "StorefrontReady"
	// DriftedCondition is True while a managed object differs from the release.
	DriftedCondition = "Drifted"
)

// Condition reasons (CamelCase, as metav1.Condition requires).
const (
	// ReasonSucceeded: the step is done.
	ReasonSucceeded = "Succeeded"
	// ReasonProgressing: the step is under way.
	ReasonProgressing = "Progressing"
	// ReasonInvalidSpec: the spec cannot be acted on; the message says why.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonEngineComingSoon: the engine is accepted but not provisioned yet.
	ReasonEngineComingSoon = "EngineComingSoon"
	// ReasonNamespaceConflict: store-<name> exists and is not storefleet's.
	ReasonNamespaceConflict = "NamespaceConflict"
	// ReasonQuotaPending: the namespace quota has no status yet.
	ReasonQuotaPending = "QuotaPending"
	// ReasonInstallFailed: the chart install failed.
	ReasonInstallFailed = "InstallFailed"
	// ReasonUpgradeFailed: the chart upgrade failed.
	ReasonUpgradeFailed = "UpgradeFailed"
	// ReasonWorkloadNotReady: a workload exists but is not ready yet.
	ReasonWorkloadNotReady = "WorkloadNotReady"
	// ReasonWorkloadFailing: a workload's pods report a failure (see diagnosis).
	ReasonWorkloadFailing = "WorkloadFailing"
	// ReasonRetryLimitReached: the attempt limit was reached; the phase is Failed.
	ReasonRetryLimitReached = "RetryLimitReached"
	// ReasonDriftDetected: a managed object differs from the release.
	ReasonDriftDetected = "DriftDetected"
	// ReasonNoDrift: managed objects match the release.
	ReasonNoDrift = "NoDrift"
	// ReasonDeleting: the store is being deleted.
	ReasonDeleting = "Deleting"
	// ReasonDeliveryUnavailable: the store's delivery (e.g. Flux) cannot be used now.
	ReasonDeliveryUnavailable = "DeliveryUnavailable"
	// ReasonCredentialsLost: the store's credentials Secret is gone, the
	// operator has no copy of it and the database volume exists, so new
	// passwords would lock the store out of its data. The store stays
	// Stalled until the Secret is restored.
	ReasonCredentialsLost = "CredentialsLost"
)

// Activity log events, in the order a healthy store records them.
const (
	EventProvisioningStart = "PROVISIONING_START"
	EventComingSoon        = "COMING_SOON"
	EventNamespaceReady    = "NAMESPACE_READY"
	EventHelmInstalled     = "HELM_INSTALLED"
	EventHelmUpgraded      = "HELM_UPGRADED"
	EventHelmRemediated    = "HELM_REMEDIATED"
	EventHelmFailed        = "HELM_FAILED"
	EventDeliveryHandover  = "DELIVERY_HANDOVER"
	EventDatabaseReady     = "DATABASE_READY"
	EventBackendReady      = "BACKEND_READY"
	EventStorefrontReady   = "STOREFRONT_READY"
	EventReady             = "READY"
	EventDriftDetected     = "DRIFT_DETECTED"
	EventDriftCorrected    = "DRIFT_CORRECTED"
	EventFailed            = "FAILED"
	EventRetry             = "RETRY"
	EventSuspended         = "SUSPENDED"
	EventDeleting          = "DELETING"
	// EventCredentialsRestored: the store's credentials Secret was missing
	// and was restored from the operator's copy.
	EventCredentialsRestored = "CREDENTIALS_RESTORED"
)
