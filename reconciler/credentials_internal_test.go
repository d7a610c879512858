package reconciler

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

const credsStore = "vault-shop"

func credsData(v string) map[string][]byte {
	return map[string][]byte{"postgres-password": []byte(v + "-pg"), "jwt-secret": []byte(v + "-jwt"), "cookie-secret": []byte(v + "-cookie")}
}

func storeSecret(data map[string][]byte) *corev1.Secret {
	s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: credsStore}}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.NamespaceFor(credsStore), Name: CredentialsSecret, Labels: storeLabels(s)}, Data: data}
}

func copySecret(data map[string][]byte) *corev1.Secret {
	s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: credsStore}}
	labels := storeLabels(s)
	labels[credentialsCopyLabel] = "true"
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "platform-ns", Name: CredentialsCopyPrefix + credsStore, Labels: labels}, Data: data}
}

func databaseClaim() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: v1alpha1.NamespaceFor(credsStore), Name: DatabaseVolumeClaim}}
}

func TestReconcileCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		objs []client.Object
		// wantSecret is the store Secret's data afterwards; "" means none,
		// "new" freshly minted values.
		wantSecret string
		wantCopy   string
		wantStall  bool
		wantEvent  string
	}{
		{name: "new store: minted, with a copy", wantSecret: "new", wantCopy: "new"},
		{name: "new store whose claim is not there yet", objs: []client.Object{}, wantSecret: "new", wantCopy: "new"},
		{name: "existing secret, copy kept for an older store", objs: []client.Object{storeSecret(credsData("a")), databaseClaim()}, wantSecret: "a", wantCopy: "a"},
		{name: "existing secret is the truth for a stale copy", objs: []client.Object{storeSecret(credsData("a")), copySecret(credsData("old"))}, wantSecret: "a", wantCopy: "a"},
		{name: "secret deleted: restored from the copy", objs: []client.Object{copySecret(credsData("a")), databaseClaim()}, wantSecret: "a", wantCopy: "a", wantEvent: v1alpha1.EventCredentialsRestored},
		{name: "secret deleted, no copy, database volume exists: stall", objs: []client.Object{databaseClaim()}, wantStall: true},
		{name: "secret deleted, incomplete copy, database volume exists: stall", objs: []client.Object{copySecret(map[string][]byte{"jwt-secret": []byte("x")}), databaseClaim()}, wantStall: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(tc.objs...).Build()
			r := &StoreReconciler{Client: c, APIReader: c, Options: Options{CredentialsNamespace: "platform-ns"}}
			s := &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: credsStore}}
			sc := &scope{store: s, namespace: v1alpha1.NamespaceFor(credsStore)}
			if _, err := r.reconcileCredentials(ctx, sc); err != nil {
				t.Fatal(err)
			}
			got := func(key client.ObjectKey) map[string][]byte {
				var sec corev1.Secret
				if err := c.Get(ctx, key, &sec); apierrors.IsNotFound(err) {
					return nil
				} else if err != nil {
					t.Fatal(err)
				}
				return sec.Data
			}
			secret := got(client.ObjectKey{Namespace: sc.namespace, Name: CredentialsSecret})
			cp := got(client.ObjectKey{Namespace: "platform-ns", Name: CredentialsCopyPrefix + credsStore})
			check := func(what string, data map[string][]byte, want string) {
				switch want {
				case "":
					if data != nil {
						t.Errorf("%s exists: new passwords were minted", what)
					}
				case "new":
					if len(missingKeys(data)) > 0 {
						t.Errorf("%s = %v, want every key", what, keysOf(data))
					}
				default:
					if !sameCredentials(data, credsData(want)) {
						t.Errorf("%s holds other values than %q", what, want)
					}
				}
			}
			check("store Secret", secret, tc.wantSecret)
			if tc.wantCopy != "" {
				check("copy", cp, tc.wantCopy)
				if tc.wantCopy == "new" && !sameCredentials(secret, cp) {
					t.Error("the copy differs from the store's Secret")
				}
			}
			if sc.stalled != tc.wantStall {
				t.Errorf("stalled = %v, want %v", sc.stalled, tc.wantStall)
			}
			if tc.wantStall {
				nr := conditions.Get(s, v1alpha1.NamespaceReadyCondition)
				if sc.stall == nil || sc.stall.reason != v1alpha1.ReasonCredentialsLost || nr == nil || nr.Reason != v1alpha1.ReasonCredentialsLost {
					t.Fatalf("stall %+v, NamespaceReady %+v; want reason %s", sc.stall, nr, v1alpha1.ReasonCredentialsLost)
				}
				for _, want := range []string{"store-vault-shop/store-credentials is missing", "platform-ns/store-credentials-vault-shop", "data-postgres-0 exists", "Restore the Secret"} {
					if !strings.Contains(sc.stall.message, want) {
						t.Errorf("stall message lacks %q: %s", want, sc.stall.message)
					}
				}
				if !sc.done {
					t.Error("the steps after credentials would run")
				}
			} else if !conditions.IsTrue(s, v1alpha1.NamespaceReadyCondition) {
				t.Errorf("NamespaceReady = %+v", conditions.Get(s, v1alpha1.NamespaceReadyCondition))
			}
			var events []string
			for _, e := range s.Status.ActivityLog {
				events = append(events, e.Event)
				for _, v := range credsData("a") {
					if bytes.Contains([]byte(e.Message), v) {
						t.Errorf("activity %q carries a secret value", e.Message)
					}
				}
			}
			if tc.wantEvent != "" && (len(events) != 1 || events[0] != tc.wantEvent) {
				t.Errorf("activity %v, want %s", events, tc.wantEvent)
			}
			if tc.wantEvent == "" && len(events) > 0 {
				t.Errorf("activity %v, want none", events)
			}
		})
	}
}

func TestDeleteCredentialsCopy(t *testing.T) {
	ctx := context.Background()
	foreign := copySecret(credsData("x"))
	foreign.Name, foreign.Labels = CredentialsCopyPrefix+"other", map[string]string{"team": "x"}
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(copySecret(credsData("a")), foreign).Build()
	r := &StoreReconciler{Client: c, APIReader: c, Options: Options{CredentialsNamespace: "platform-ns"}}
	for _, name := range []string{credsStore, "other", "never-existed"} {
		if err := r.deleteCredentialsCopy(ctx, &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	var sec corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: "platform-ns", Name: CredentialsCopyPrefix + credsStore}, &sec); !apierrors.IsNotFound(err) {
		t.Errorf("the deleted store's copy remains: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(foreign), &sec); err != nil {
		t.Errorf("a Secret that is not the operator's copy was deleted: %v", err)
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
