package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireHost fails, not skips, the test when a tool is missing: a skipped
// image test would hide that `make images` cannot work on this machine.
func requireHost(t *testing.T, tools ...tool) {
	t.Helper()
	if err := checkTools(tools...); err != nil {
		t.Fatal(err)
	}
}

// testWriter sends Builder.Log to the test log and keeps it for assertions.
type testWriter struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return w.b.Write(p)
}

func (w *testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// newTestBuilder uses the shared cache, so the base image is built once per
// machine and the tests stay fast on a warm cache.
func newTestBuilder(t *testing.T) (*Builder, *testWriter) {
	w := &testWriter{t: t}
	return &Builder{Dir: DefaultDir(), Log: w}, w
}

func (b *Builder) runCount(program string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs[program]
}

// layerFiles lists the members of an image layer, with their content for
// members no bigger than 64 KiB.
func layerFiles(t *testing.T, archive, digest string) map[string]string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s: no blob %s", archive, digest)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "./") != blobPath(digest) {
			continue
		}
		gz, err := gzip.NewReader(tr)
		if err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		lt := tar.NewReader(gz)
		for {
			lh, err := lt.Next()
			if errors.Is(err, io.EOF) {
				return files
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(strings.TrimPrefix(lh.Name, "./"), "/")
			content := ""
			if lh.Typeflag == tar.TypeReg && lh.Size <= 64<<10 {
				data, err := io.ReadAll(lt)
				if err != nil {
					t.Fatal(err)
				}
				content = string(data)
			}
			if lh.Typeflag == tar.TypeChar || lh.Typeflag == tar.TypeBlock {
				content = "device"
			}
			files[name] = content
		}
	}
}

// assertNoMounts fails when anything is still mounted under dir: buildah's
// overlay layers and debootstrap's /proc must all be gone after a build.
func assertNoMounts(t *testing.T, dir string) {
	t.Helper()
	mps, err := mountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(mps) > 0 {
		t.Errorf("mounts left under %s: %v", dir, mps)
	}
}

func assertTmpEmpty(t *testing.T, b *Builder) {
	t.Helper()
	entries, err := os.ReadDir(b.tmpDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in %s: %s", b.tmpDir(), e.Name())
	}
}

func TestBase(t *testing.T) {
	realBuild(t)
	requireHost(t, toolsBase...)
	b, _ := newTestBuilder(t)
	ctx := context.Background()

	start := time.Now()
	base, err := b.Base(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Base: %s in %s (cached %v)", base.Archive, time.Since(start).Round(time.Millisecond), base.Cached)

	info, err := readArchive(base.Archive)
	if err != nil {
		t.Fatal(err)
	}
	if info.Ref != "localhost/storefleet/debian:bookworm" || info.Digest != base.Digest {
		t.Errorf("archive names %s at %s, want localhost/storefleet/debian:bookworm at %s", info.Ref, info.Digest, base.Digest)
	}
	if got := info.Config.Config.Labels[KeyLabel]; got != base.Key {
		t.Errorf("key label %q, want %q", got, base.Key)
	}
	if len(info.Manifest.Layers) != 1 {
		t.Fatalf("%d layers, want 1", len(info.Manifest.Layers))
	}
	files := layerFiles(t, base.Archive, info.Manifest.Layers[0].Digest)
	mirror, _ := hostMirrors()
	if src := files["etc/apt/sources.list.d/debian.sources"]; !strings.Contains(src, "URIs: "+mirror) || !strings.Contains(src, "bookworm-security") {
		t.Errorf("apt sources do not use mirror %s with security updates:\n%s", mirror, src)
	}
	for _, want := range []string{"usr/bin/apt-get", "usr/bin/bash", debianKeyring[1:], "etc/apt/apt.conf.d/docker-clean", "dev", "tmp"} {
		if _, ok := files[want]; !ok {
			t.Errorf("base image lacks %s", want)
		}
	}
	for name, content := range files {
		switch {
		case strings.HasPrefix(name, "var/lib/apt/lists/") && name != "var/lib/apt/lists/partial",
			strings.HasSuffix(name, ".deb"),
			strings.HasPrefix(name, "dev/"),
			name == "etc/resolv.conf", name == "etc/hostname", name == "etc/apt/sources.list":
			t.Errorf("base image keeps %s", name)
		case strings.HasPrefix(name, "var/log/") && content != "":
			t.Errorf("base image keeps log content in %s", name)
		}
	}
	assertNoMounts(t, b.Dir)
}

func TestBuild(t *testing.T) {
	realBuild(t)
	requireHost(t, append(toolsBase, toolsBuild...)...)
	b, _ := newTestBuilder(t)
	ctx := context.Background()
	base, err := b.Base(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A context of our own with a nonce, so the first build is always a
	// cache miss even on a warm cache.
	buildCtx := t.TempDir()
	for _, name := range []string{"Containerfile", "hello.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", "tiny", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(buildCtx, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nonce := time.Now().Format(time.RFC3339Nano)
	if err := os.WriteFile(filepath.Join(buildCtx, "nonce"), []byte(nonce), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := Spec{
		Name: "localhost/storefleet/imagebuild-test", Tag: "v1", Context: buildCtx,
		BuildArgs: map[string]string{"GREETING": "hi"},
	}

	start := time.Now()
	img, err := b.Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)
	t.Logf("Build cold: %s", cold.Round(time.Millisecond))
	if img.Cached {
		t.Error("first build of a new context was a cache hit")
	}
	info, err := readArchive(img.Archive)
	if err != nil {
		t.Fatal(err)
	}
	if info.Ref != "localhost/storefleet/imagebuild-test:v1" || info.Digest != img.Digest {
		t.Errorf("archive names %s at %s, want localhost/storefleet/imagebuild-test:v1 at %s", info.Ref, info.Digest, img.Digest)
	}
	if info.Config.Config.User != "1000:1000" {
		t.Errorf("config user %q, want 1000:1000", info.Config.Config.User)
	}
	if got := info.Config.Config.Labels[KeyLabel]; got != img.Key {
		t.Errorf("key label %q, want %q", got, img.Key)
	}
	top := layerFiles(t, img.Archive, info.Manifest.Layers[len(info.Manifest.Layers)-1].Digest)
	if got := top["opt/tiny/nonce"]; got != nonce {
		t.Errorf("opt/tiny/nonce = %q, want %q", got, nonce)
	}
	if got := top["opt/tiny/greeting"]; !strings.HasPrefix(got, "hi from Debian 12") {
		t.Errorf("opt/tiny/greeting = %q: the RUN step or the build arg did not apply", got)
	}
	if len(info.Manifest.Layers) < 2 {
		t.Errorf("%d layers: the base layer is missing", len(info.Manifest.Layers))
	}

	// Unchanged inputs: the cache answers without running buildah.
	buildahRuns := b.runCount("buildah")
	start = time.Now()
	again, err := b.Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	cached := time.Since(start)
	t.Logf("Build cached: %s", cached.Round(time.Millisecond))
	if !again.Cached || again.Archive != img.Archive || again.Digest != img.Digest {
		t.Errorf("second build: %+v, want the cached %+v", again, img)
	}
	if n := b.runCount("buildah") - buildahRuns; n != 0 {
		t.Errorf("cache hit ran buildah %d times", n)
	}
	if cached > 2*time.Second {
		t.Errorf("cache hit took %s", cached)
	}
	// An mtime is not an input.
	if err := os.Chtimes(filepath.Join(buildCtx, "hello.txt"), time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if touched, err := b.Build(ctx, spec); err != nil || !touched.Cached {
		t.Errorf("build after touching a file: cached %v, err %v; want a cache hit", touched.Cached, err)
	}

	// A changed context file is a new image; the old archive goes.
	if err := os.WriteFile(filepath.Join(buildCtx, "hello.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	changed, err := b.Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Build after change: %s", time.Since(start).Round(time.Millisecond))
	if changed.Cached || changed.Key == img.Key {
		t.Errorf("build after a context change: cached %v, key %s (was %s); want a rebuild", changed.Cached, changed.Key, img.Key)
	}
	if _, err := os.Stat(img.Archive); !os.IsNotExist(err) {
		t.Errorf("superseded archive %s still there (%v)", img.Archive, err)
	}
	if top := layerFiles(t, changed.Archive, mustReadArchive(t, changed.Archive).Manifest.Layers[1].Digest); top["opt/tiny/hello.txt"] != "changed\n" {
		t.Errorf("rebuilt image has hello.txt %q", top["opt/tiny/hello.txt"])
	}

	// A different base or build argument is a different image too.
	other := base
	other.Key = "another-base"
	if mustKey(t, spec, other) == changed.Key {
		t.Error("the base image's key is not part of the build key")
	}
	otherArgs := spec
	otherArgs.BuildArgs = map[string]string{"GREETING": "ho"}
	if mustKey(t, otherArgs, base) == changed.Key {
		t.Error("build arguments are not part of the build key")
	}
	if mustKey(t, spec, base) != changed.Key {
		t.Error("buildKey is not what Build used")
	}

	assertNoMounts(t, b.Dir)
	assertTmpEmpty(t, b)
	stored, err := b.output(ctx, mustStore(t, b).cmd(nil, "images", "--noheading", "--format", "{{.Name}}:{{.Tag}}"))
	if err != nil {
		t.Fatal(err)
	}
	// Other builds sharing the cache may have left their own bases there.
	if got := strings.Fields(string(stored)); !slices.Contains(got, base.Ref()) || slices.Contains(got, changed.Ref()) {
		t.Errorf("buildah storage holds %v, want the base %s and not the built %s", got, base.Ref(), changed.Ref())
	}
	containers, err := b.output(ctx, mustStore(t, b).cmd(nil, "containers", "--quiet"))
	if err != nil || strings.TrimSpace(string(containers)) != "" {
		t.Errorf("buildah working containers left: %q (%v)", containers, err)
	}
}

func TestBuildRejectsNamedUser(t *testing.T) {
	realBuild(t)
	requireHost(t, append(toolsBase, toolsBuild...)...)
	b, _ := newTestBuilder(t)
	_, err := b.Build(context.Background(), Spec{Name: "localhost/storefleet/imagebuild-nameduser", Tag: "v1", Context: filepath.Join("testdata", "nameduser")})
	if err == nil || !strings.Contains(err.Error(), "not numeric") {
		t.Fatalf("Build of an image with USER nobody: %v, want a non-numeric user error", err)
	}
	assertNoMounts(t, b.Dir)
}

func TestPause(t *testing.T) {
	realBuild(t)
	requireHost(t, toolsPause...)
	b, _ := newTestBuilder(t)
	start := time.Now()
	img, err := b.Pause(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Pause: %s in %s (cached %v)", img.Archive, time.Since(start).Round(time.Millisecond), img.Cached)
	info := mustReadArchive(t, img.Archive)
	if info.Ref != "localhost/pause:3.10" {
		t.Errorf("archive names %s", info.Ref)
	}
	if c := info.Config.Config; c.User != "65535:65535" || len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/pause" {
		t.Errorf("config user %q entrypoint %q, want 65535:65535 and /pause", c.User, c.Entrypoint)
	}
	files := layerFiles(t, img.Archive, info.Manifest.Layers[0].Digest)
	if _, ok := files["pause"]; !ok || len(files) != 1 {
		t.Errorf("layer holds %v, want just pause", files)
	}
}

func mustReadArchive(t *testing.T, path string) archiveInfo {
	t.Helper()
	info, err := readArchive(path)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func mustStore(t *testing.T, b *Builder) buildahStore {
	t.Helper()
	st, err := b.buildahStore()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustKey(t *testing.T, s Spec, base Image) string {
	t.Helper()
	cf, err := s.validate()
	if err != nil {
		t.Fatal(err)
	}
	key, err := buildKey(s, cf, base)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
