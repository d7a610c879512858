package v1alpha1_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

func TestSourceOfTrustsNoRequesterFromGit(t *testing.T) {
	store := func(ann map[string]string) *v1alpha1.Store {
		return &v1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: "shop", Annotations: ann}}
	}
	git := v1alpha1.SourceOf(store(map[string]string{
		v1alpha1.ChannelAnnotation: "git", v1alpha1.CommitAnnotation: "0123456789012345678901234567890123456789",
		v1alpha1.GitAuthorAnnotation: "Carol <carol@example.com>",
		// What a manifest's author could have written.
		v1alpha1.RequestedByAnnotation: "admin@platform", v1alpha1.RequestIDAnnotation: "forged",
	}))
	if git.Channel != v1alpha1.ChannelGit || git.User != "" || git.RequestID != "" || git.GitAuthor != "Carol <carol@example.com>" {
		t.Errorf("Git store source = %+v; want no user or request id, the recorded author", git)
	}
	api := v1alpha1.SourceOf(store(map[string]string{v1alpha1.ChannelAnnotation: "api", v1alpha1.RequestedByAnnotation: "alice", v1alpha1.RequestIDAnnotation: "r1"}))
	if api.User != "alice" || api.RequestID != "r1" || api.GitAuthor != "" {
		t.Errorf("API store source = %+v", api)
	}
	if kubectl := v1alpha1.SourceOf(store(nil)); kubectl.Channel != v1alpha1.ChannelKubectl {
		t.Errorf("kubectl store source = %+v", kubectl)
	}
}
