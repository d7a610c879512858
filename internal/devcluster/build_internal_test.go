package devcluster

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWrapperReplaces checks how a component's own replace directives become
// the wrapper module's: staging modules at the matching v0 version, in-repo
// submodules at the component's version, pins copied, siblings dropped.
func TestWrapperReplaces(t *testing.T) {
	gomod := `module example.com/upstream

go 1.25

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	example.com/upstream/api => ./api
	example.com/sibling/v3 => ../sibling
	example.com/forbidden => ./FORBIDDEN_DEPENDENCY
	github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20231025023718-d50d2fec9c98
)
`
	path := filepath.Join(t.TempDir(), "go.mod")
	if err := os.WriteFile(path, []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := wrapperReplaces(component{Module: "example.com/upstream", Version: "v1.35.4", Replace: []string{"gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1"}}, path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"k8s.io/api => k8s.io/api v0.35.4",
		"example.com/upstream/api => example.com/upstream/api v1.35.4",
		"github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20231025023718-d50d2fec9c98",
		"gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("replaces\n%q\nwant\n%q", got, want)
	}
}

// TestToolsDirChangesWithVersions: a different pinned set never reuses binaries.
func TestToolsDirChangesWithVersions(t *testing.T) {
	before := DefaultTools().Dir
	saved := components[0].Version
	components[0].Version = "v0.0.0-other"
	defer func() { components[0].Version = saved }()
	if DefaultTools().Dir == before {
		t.Fatal("tools directory did not change with a component version")
	}
}

// TestToolBuildCacheGoesWithTheLastBuilder: tool sets building at once
// share one build cache, and only the last to finish removes it; a failed
// build leaves it for the retry.
func TestToolBuildCacheGoesWithTheLastBuilder(t *testing.T) {
	t.Setenv("STOREFLEET_CACHE", t.TempDir())
	dir, releaseA, err := toolBuildCache()
	if err != nil {
		t.Fatal(err)
	}
	_, releaseB, err := toolBuildCache()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "00"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := releaseA(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("removed while another set still builds: %v", err)
	}
	if err := releaseB(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("removed after a failed build: %v", err)
	}
	_, releaseC, err := toolBuildCache()
	if err != nil {
		t.Fatal(err)
	}
	if err := releaseC(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the last successful builder left the cache: %v", err)
	}
}

// TestNodeImageContextHoldsOnlyItsFiles: laying out an image's context again
// and again (every cluster start does) leaves exactly the Containerfile and
// the binary, so the image's cache key stays the same. Before, each start
// left a link named coredns.<pid> behind (a rename of a link over a link to
// the same file does nothing), and the CoreDNS image was rebuilt every time.
func TestNodeImageContextHoldsOnlyItsFiles(t *testing.T) {
	dir := t.TempDir()
	binary := filepath.Join(t.TempDir(), "coredns")
	if err := os.WriteFile(binary, []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A leftover of a process that is gone.
	if err := os.WriteFile(filepath.Join(dir, "coredns.999999999"), []byte("v0"), 0o755); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := writeNodeImageContext(dir, "coredns", binary); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"Containerfile", "coredns"}) {
		t.Fatalf("context holds %v, want [Containerfile coredns]", names)
	}
	// A new binary replaces the old one.
	next := filepath.Join(t.TempDir(), "coredns")
	if err := os.WriteFile(next, []byte("v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeNodeImageContext(dir, "coredns", next); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "coredns")); string(data) != "v2" {
		t.Fatalf("context binary %q after a new build, want v2", data)
	}
}
