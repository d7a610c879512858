package v1alpha1_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/test/testenv"
)

// shared is the cluster of the tests that need an API server, started by
// the first of them; the CRD's own checks run without one.
var shared testenv.SharedCluster

func TestMain(m *testing.M) { testenv.RunShared(m, &shared) }

func store(name, engine, owner string) *v1alpha1.Store {
	return &v1alpha1.Store{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.StoreSpec{Engine: v1alpha1.Engine(engine), Owner: owner},
	}
}

// withStorage asks for a database volume of size on plan.
func withStorage(s *v1alpha1.Store, plan v1alpha1.Plan, size string) *v1alpha1.Store {
	q := resource.MustParse(size)
	s.Spec.Plan, s.Spec.Values = plan, &v1alpha1.StoreValues{DatabaseStorage: &q}
	return s
}

func TestValidStoreIsAcceptedWithDefaults(t *testing.T) {
	cluster := shared.Get(t)
	ctx := context.Background()
	s := store("shop-1", "medusa", "alice")
	if err := cluster.Client.Create(ctx, s); err != nil {
		t.Fatalf("valid store rejected: %v", err)
	}
	if s.Spec.Plan != v1alpha1.PlanSmall {
		t.Fatalf("plan defaulted to %q, want small", s.Spec.Plan)
	}
	if err := cluster.Client.Create(ctx, withStorage(store("shop-big", "medusa", "alice"), v1alpha1.PlanLarge, "199Gi")); err != nil {
		t.Fatalf("the largest database of plan large rejected: %v", err)
	}
	wc := store("shop-woo", "woocommerce", "bob@example.com")
	if err := cluster.Client.Create(ctx, wc); err != nil {
		t.Fatalf("woocommerce store rejected: %v", err)
	}
}

func TestStoreRejectedByTheAPIServer(t *testing.T) {
	cluster := shared.Get(t)
	ctx := context.Background()
	tooLong := "s" + strings.Repeat("x", v1alpha1.MaxNameLength)
	cases := []struct {
		name    string
		store   *v1alpha1.Store
		wantMsg string
	}{
		{name: "uppercase", store: store("Shop", "medusa", "alice"), wantMsg: "a lowercase RFC 1123 subdomain"},
		{name: "leading dash", store: store("-shop", "medusa", "alice"), wantMsg: "a lowercase RFC 1123 subdomain"},
		{name: "dots", store: store("my.shop", "medusa", "alice"), wantMsg: "name must consist of lowercase letters, digits and '-'"},
		{name: "leading digit", store: store("1shop", "medusa", "alice"), wantMsg: "start with a letter"},
		{name: "too long", store: store(tooLong, "medusa", "alice"), wantMsg: "name must be at most 40 characters"},
		{name: "reserved", store: store("admin", "medusa", "alice"), wantMsg: "name is reserved"},
		{name: "unknown engine", store: store("shop-2", "magento", "alice"), wantMsg: `spec.engine: Unsupported value: "magento"`},
		{name: "no owner", store: store("shop-3", "medusa", ""), wantMsg: "spec.owner"},
		{name: "bad owner", store: store("shop-4", "medusa", "alice smith"), wantMsg: "spec.owner"},
		{name: "unknown plan", store: func() *v1alpha1.Store {
			s := store("shop-5", "medusa", "alice")
			s.Spec.Plan = "huge"
			return s
		}(), wantMsg: `spec.plan: Unsupported value: "huge"`},
		{name: "database larger than the plan", store: withStorage(store("shop-6", "medusa", "alice"), v1alpha1.PlanMedium, "60Gi"),
			wantMsg: "spec.values.databaseStorage: Invalid value: must be at most 59Gi on plan medium: its storage quota less the uploads volume"},
		{name: "database larger than the default plan", store: withStorage(store("shop-7", "medusa", "alice"), "", "1Ti"),
			wantMsg: "must be at most 19Gi on plan small"},
		{name: "database too small", store: withStorage(store("shop-8", "medusa", "alice"), "", "10Mi"),
			wantMsg: `spec.values.databaseStorage: Invalid value: "10Mi": must be at least 1Gi`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := cluster.Client.Create(ctx, tc.store)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got %v, want Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q does not contain %q", err, tc.wantMsg)
			}
		})
	}
}

func TestEveryReservedNameIsRefused(t *testing.T) {
	cluster := shared.Get(t)
	ctx := context.Background()
	for _, name := range v1alpha1.ReservedNames {
		err := cluster.Client.Create(ctx, store(name, "medusa", "alice"))
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "name is reserved") {
			t.Errorf("reserved name %q: got %v, want 'name is reserved'", name, err)
		}
	}
}

// TestReservedNamesMatchTheCRD keeps the Go list (used by the Intent API) and
// the CRD's CEL rule equal.
func TestReservedNamesMatchTheCRD(t *testing.T) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(v1alpha1.CRDManifest, &crd); err != nil {
		t.Fatal(err)
	}
	var rule string
	for _, v := range crd.Spec.Versions[0].Schema.OpenAPIV3Schema.XValidations {
		if v.Message == "name is reserved" {
			rule = v.Rule
		}
	}
	var inRule []string
	for _, part := range strings.Split(rule[strings.Index(rule, "[")+1:strings.Index(rule, "]")], ",") {
		inRule = append(inRule, strings.Trim(strings.TrimSpace(part), "'"))
	}
	want := slices.Sorted(slices.Values(v1alpha1.ReservedNames))
	if got := slices.Sorted(slices.Values(inRule)); !slices.Equal(got, want) {
		t.Fatalf("CRD reserved names %v != v1alpha1.ReservedNames %v", got, want)
	}
}

// TestPhasesMatchTheCRD keeps v1alpha1.Phases (listed by the Intent API's
// document) and the CRD's enum of status.phase equal, in order.
func TestPhasesMatchTheCRD(t *testing.T) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(v1alpha1.CRDManifest, &crd); err != nil {
		t.Fatal(err)
	}
	var inCRD []v1alpha1.Phase
	for _, v := range crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"].Properties["phase"].Enum {
		var p v1alpha1.Phase
		if err := json.Unmarshal(v.Raw, &p); err != nil {
			t.Fatal(err)
		}
		inCRD = append(inCRD, p)
	}
	if !slices.Equal(inCRD, v1alpha1.Phases) {
		t.Fatalf("CRD phases %v != v1alpha1.Phases %v", inCRD, v1alpha1.Phases)
	}
}

// TestPlansMatchTheCRD keeps v1alpha1.Plans (what the Intent API lets users
// pick from) and the CRD's enum of spec.plan equal, in order.
func TestPlansMatchTheCRD(t *testing.T) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(v1alpha1.CRDManifest, &crd); err != nil {
		t.Fatal(err)
	}
	var inCRD []v1alpha1.Plan
	for _, v := range crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["plan"].Enum {
		var p v1alpha1.Plan
		if err := json.Unmarshal(v.Raw, &p); err != nil {
			t.Fatal(err)
		}
		inCRD = append(inCRD, p)
	}
	if !slices.Equal(inCRD, v1alpha1.Plans) {
		t.Fatalf("CRD plans %v != v1alpha1.Plans %v", inCRD, v1alpha1.Plans)
	}
}

func TestOwnerIsImmutable(t *testing.T) {
	cluster := shared.Get(t)
	ctx := context.Background()
	s := store("shop-owned", "medusa", "alice")
	if err := cluster.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.Spec.Owner = "mallory"
	err := cluster.Client.Update(ctx, s)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "owner is immutable") {
		t.Fatalf("owner change: got %v, want 'owner is immutable'", err)
	}
	// Other fields stay editable.
	if err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
		t.Fatal(err)
	}
	s.Spec.Plan = v1alpha1.PlanMedium
	if err := cluster.Client.Update(ctx, s); err != nil {
		t.Fatalf("plan change rejected: %v", err)
	}
}

func TestStatusIsOnlyWritableThroughTheSubresource(t *testing.T) {
	cluster := shared.Get(t)
	ctx := context.Background()
	s := store("shop-status", "medusa", "alice")
	if err := cluster.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.Status.Phase = v1alpha1.PhaseReady
	if err := cluster.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	if s.Status.Phase != "" {
		t.Fatalf("status written through the main resource: phase %q", s.Status.Phase)
	}
	s.Status.Phase = v1alpha1.PhaseProvisioning
	if err := cluster.Client.Status().Update(ctx, s); err != nil {
		t.Fatalf("status subresource update: %v", err)
	}
	got := &v1alpha1.Store{}
	if err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(s), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1alpha1.PhaseProvisioning {
		t.Fatalf("phase after status update = %q", got.Status.Phase)
	}
}

// TestPrinterColumns asks the API server for a Table, as kubectl get does.
func TestPrinterColumns(t *testing.T) {
	cluster := shared.Get(t)
	ctx := context.Background()
	s := store("shop-columns", "medusa", "carol")
	if err := cluster.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.Status.Phase = v1alpha1.PhaseReady
	s.Status.URLs = &v1alpha1.StoreURLs{Storefront: "https://shop-columns.example.com"}
	s.Status.Runtime = v1alpha1.RuntimeSimulated
	s.Status.Conditions = []metav1.Condition{{
		Type: v1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSucceeded,
		Message: "store is ready", LastTransitionTime: metav1.Now(),
	}}
	if err := cluster.Client.Status().Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	httpClient, err := rest.HTTPClientFor(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cluster.Config.Host+"/apis/storefleet.dev/v1alpha1/stores/shop-columns", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET table: %d %v %s", resp.StatusCode, err, raw)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	if want := []string{"Name", "Engine", "Owner", "Phase", "Ready", "Runtime", "URL", "Age"}; !slices.Equal(names, want) {
		t.Fatalf("columns %v, want %v", names, want)
	}
	row := table.Rows[0].Cells
	want := []any{"shop-columns", "medusa", "carol", "Ready", "True", "Simulated", "https://shop-columns.example.com"}
	for i, w := range want {
		if row[i] != w {
			t.Errorf("column %s = %v, want %v", names[i], row[i], w)
		}
	}
}
