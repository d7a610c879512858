package manifests_test

import (
	"testing"

	"github.com/storefleet/storefleet/internal/manifests"
)

func TestDecode(t *testing.T) {
	cases := []struct {
		name     string
		manifest string
		want     []string // kind/name of each object
		err      bool
	}{
		{name: "empty", manifest: "", want: nil},
		{name: "documents, empty ones and comments skipped",
			manifest: "---\n# Source: a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n",
			want:     []string{"ConfigMap/a", "Secret/b"}},
		{name: "JSON", manifest: `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}`, want: []string{"Namespace/n"}},
		{name: "broken YAML", manifest: "kind: [\n", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := manifests.Decode([]byte(tc.manifest))
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetKind()+"/"+o.GetName())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
