package gitsync

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const valid = "apiVersion: storefleet.dev/v1alpha1\nkind: Store\nmetadata:\n  name: acme\nspec:\n  engine: medusa\n  owner: alice\n"

func TestValidateFile(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, data string
		want             []string // exact problems, in order; none means valid
	}{
		{name: "valid", file: "stores/acme.yaml", data: valid},
		{name: "valid with values", file: "stores/acme.yml", data: valid + "  plan: large\n  domain: shops.example.com\n  values:\n    backendReplicas: 2\n"},
		{name: "coming soon engine", file: "stores/acme.yaml", data: strings.Replace(valid, "medusa", "woocommerce", 1)},
		{name: "file named otherwise", file: "stores/other.yaml", data: valid,
			want: []string{`stores/other.yaml:4: the file must be named after the store: other.yaml declares store "acme"`}},
		{name: "reserved name", file: "stores/admin.yaml", data: strings.Replace(valid, "acme", "admin", 1),
			want: []string{"stores/admin.yaml:4: metadata.name: name is reserved"}},
		{name: "bad name", file: "stores/Acme_1.yaml", data: strings.Replace(valid, "acme", "Acme_1", 1),
			want: []string{"stores/Acme_1.yaml:4: metadata.name: name must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit"}},
		{name: "long name", file: "stores/x.yaml", data: strings.Replace(valid, "acme", strings.Repeat("a", 41), 1),
			want: []string{"stores/x.yaml:4: metadata.name: name must be at most 40 characters (the namespace store-<name>, the Helm release and the chart's object names are derived from it)"}},
		{name: "engine and plan", file: "stores/acme.yaml", data: strings.Replace(valid, "medusa", "shopify", 1) + "  plan: xl\n",
			want: []string{
				`stores/acme.yaml:6: spec.engine: Unsupported value: "shopify": supported values: "medusa", "woocommerce"`,
				`stores/acme.yaml:8: spec.plan: Unsupported value: "xl": supported values: "small", "medium", "large"`,
			}},
		{name: "unknown field", file: "stores/acme.yaml", data: valid + "  replicas: 3\n",
			want: []string{`stores/acme.yaml:8: unknown field "spec.replicas"`}},
		{name: "missing owner", file: "stores/acme.yaml", data: strings.Replace(valid, "  owner: alice\n", "", 1),
			want: []string{"stores/acme.yaml:5: spec.owner: Required value"}},
		{name: "namespace and status", file: "stores/acme.yaml", data: strings.Replace(valid, "  name: acme\n", "  name: acme\n  namespace: shop\n", 1) + "status:\n  phase: Ready\n",
			want: []string{
				"stores/acme.yaml:5: metadata.namespace must not be set: Store is cluster-scoped",
				"stores/acme.yaml:9: status is written by the operator; remove it",
			}},
		{name: "wrong kind", file: "stores/acme.yaml", data: strings.Replace(valid, "kind: Store", "kind: Shop", 1),
			want: []string{`stores/acme.yaml:2: kind must be Store, not "Shop"`}},
		{name: "two documents", file: "stores/acme.yaml", data: valid + "---\n" + valid,
			want: []string{"stores/acme.yaml:9: a store manifest holds exactly one Store; found a second YAML document"}},
		{name: "broken YAML", file: "stores/acme.yaml", data: "apiVersion: v1\nkind: [\n",
			want: []string{"stores/acme.yaml:2: invalid YAML: did not find expected node content"}},
		{name: "empty", file: "stores/acme.yaml", data: "",
			want: []string{"stores/acme.yaml: the file is empty; a store manifest holds one Store"}},
		{name: "not YAML by name", file: "stores/acme.json", data: valid,
			want: []string{"stores/acme.json: a store manifest must be a .yaml file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, problems := v.File(tt.file, []byte(tt.data))
			var got []string
			for _, p := range problems {
				got = append(got, p.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if (m != nil) != (len(tt.want) == 0) {
				t.Fatalf("manifest returned: %v, problems: %d", m != nil, len(problems))
			}
		})
	}
}

func TestValidatePathsFindsDuplicates(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"acme.yaml": valid, "acme.yml": valid, ".keep": ""})
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	ms, problems := v.ValidatePaths([]string{dir})
	if len(ms) != 2 || len(problems) != 1 || !strings.Contains(problems[0].String(), `store "acme" is already declared in`) {
		t.Fatalf("manifests %d, problems %v", len(ms), problems)
	}
}

// TestValidatePathsRejectsWhatIsNotAStore: the stores directory holds
// <name>.yaml files and .keep only. Anything else, at any depth, is a
// problem: Flux's Kustomization over the path would apply any YAML below it
// (a ClusterRoleBinding in a subdirectory) with the sync's identity.
func TestValidatePathsRejectsWhatIsNotAStore(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"acme.yaml":                        valid,
		".keep":                            "",
		"notes.txt":                        "not a manifest",
		"rbac/admin-binding.yaml":          "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n",
		"nested/deeper/kustomization.yaml": "resources: []\n",
	}
	writeFiles(t, dir, files)
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	ms, problems := v.ValidatePaths([]string{dir})
	var out []string
	for _, p := range problems {
		if p.Message != NotAStorePlace {
			t.Errorf("unexpected problem %s", p)
		}
		out = append(out, strings.TrimPrefix(p.File, filepath.ToSlash(dir)+"/"))
	}
	slices.Sort(out)
	if want := []string{"nested/deeper/kustomization.yaml", "notes.txt", "rbac/admin-binding.yaml"}; !slices.Equal(out, want) || len(ms) != 1 {
		t.Fatalf("manifests %d, out of place %v; want 1 and %v", len(ms), out, want)
	}
}

// File paths come only from names that cannot leave the stores directory.
func TestManifestPathRefusesEscapes(t *testing.T) {
	for _, name := range []string{"../etc", "a/b", "..", ".", "a.yaml", "", "A", "x\x00", "-a", "a-", "admin", strings.Repeat("a", 41)} {
		if p, err := ManifestPath("stores", name); err == nil {
			t.Errorf("name %q accepted as %q", name, p)
		}
	}
	for dir, want := range map[string]string{"stores": "stores/acme.yaml", "/clusters/prod/stores/": "clusters/prod/stores/acme.yaml", "": "acme.yaml", "../up": "up/acme.yaml"} {
		if p, err := ManifestPath(dir, "acme"); err != nil || p != want {
			t.Errorf("ManifestPath(%q) = %q, %v; want %q", dir, p, err, want)
		}
	}
}

// A manifest the Writer commits is one the Validator accepts.
func TestManifestOfValidates(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	m, problems := v.File("stores/acme.yaml", []byte(valid))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	m.Store.Annotations = map[string]string{"storefleet.dev/requested-by": "alice"}
	out, err := ManifestOf(m.Store)
	if err != nil {
		t.Fatal(err)
	}
	if _, problems := v.File("stores/acme.yaml", out); len(problems) > 0 {
		t.Fatalf("%s\n%v", out, problems)
	}
	if strings.Contains(string(out), "creationTimestamp") || strings.Contains(string(out), "status") {
		t.Fatalf("manifest carries server fields:\n%s", out)
	}
}

func TestRemoteValidateRefusesCredentialsInURL(t *testing.T) {
	for _, url := range []string{"https://user:secret@example.com/stores.git", "https://token@example.com/stores.git", "ftp://example.com/x"} {
		err := Remote{URL: url, Branch: "main", Path: "stores"}.Validate()
		if err == nil {
			t.Errorf("%s accepted", url)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the credential: %v", err)
		}
	}
	if err := (Remote{URL: "https://example.com/stores.git", Branch: "main", Path: "../x"}).Validate(); err == nil {
		t.Errorf("path leaving the repository accepted")
	}
}

// writeFiles writes name → content under dir, making directories as needed.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
