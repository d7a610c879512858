package reconciler

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

// The memo keeps a release without its manifest: a check that finds the
// store unchanged reads nothing, and one that needs the manifest reads the
// revision from Helm's storage, once, and only when it is the one memorised.
func TestMemoReadsTheManifestFromStorageOnlyWhenAskedFor(t *testing.T) {
	const ns, name = "store-shop", "shop"
	manifest := "apiVersion: v1\nkind: Service\nmetadata:\n  name: storefront\n"
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	helmSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sh.helm.release.v1.shop.v1", ResourceVersion: "7",
		Labels: map[string]string{"owner": "helm", "name": name, "version": "1"}}}
	stored, reads := manifest, 0
	memo := &releaseMemo{
		secrets: fake.NewClientBuilder().WithScheme(scheme).WithObjects(helmSecret).Build(),
		entries: map[string]memoEntry{},
		stored: func(_ context.Context, namespace, release string, revision int) (string, error) {
			reads++
			if namespace != ns || release != name || revision != 1 {
				return "", errors.New("read another release")
			}
			return stored, nil
		},
	}
	ctx := context.Background()
	memo.wrote(ns, name, ReleaseState{Revision: 1, Status: v1alpha1.HelmDeployed, Manifest: manifest, Action: "install"})
	state, _, _, ok, err := memo.get(ctx, ns, name)
	if err != nil || !ok {
		t.Fatalf("the release this operator wrote is not vouched for: ok %v, %v", ok, err)
	}
	if state.Manifest != "" || state.Action != "" {
		t.Errorf("the memorised state holds its manifest or the install's action: %+v", state)
	}
	if state.manifestDigest() != sha256.Sum256([]byte(manifest)) {
		t.Error("the memorised digest is not the manifest's: every check would rebuild its view of the release")
	}
	if reads != 0 {
		t.Errorf("%d reads of Helm's storage before the manifest was asked for", reads)
	}
	for range 2 {
		got, err := state.manifest(ctx)
		if err != nil || got != manifest {
			t.Fatalf("manifest %q, %v; want the stored one", got, err)
		}
	}
	if reads != 1 {
		t.Errorf("%d reads of Helm's storage for two asks, want 1", reads)
	}

	// A revision rewritten in place (its digest differs) is not used, and
	// the memo lets go of it.
	stored = strings.Replace(manifest, "storefront", "elsewhere", 1)
	state, _, _, ok, err = memo.get(ctx, ns, name)
	if err != nil || !ok {
		t.Fatalf("get: ok %v, %v", ok, err)
	}
	if _, err := state.manifest(ctx); err == nil {
		t.Error("a manifest other than the memorised one was used")
	}
	if _, _, _, ok, _ := memo.get(ctx, ns, name); ok {
		t.Error("the memo still vouches for a revision rewritten in its storage")
	}
}
