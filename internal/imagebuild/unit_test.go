package imagebuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseAptSources(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                []aptEntry
	}{{
		name: "deb822 with security and a disabled stanza",
		file: "debian.sources",
		content: `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security/
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no
`,
		want: []aptEntry{
			{deb: true, uri: "http://deb.debian.org/debian"},
			{deb: true, security: true, uri: "http://deb.debian.org/debian-security"},
		},
	}, {
		name: "one-line with options and deb-src",
		file: "sources.list",
		content: `deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main
deb-src http://mirror.example/debian bookworm main
# deb http://commented.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
`,
		want: []aptEntry{
			{deb: true, uri: "http://mirror.example/debian"},
			{deb: false, uri: "http://mirror.example/debian"},
			{deb: true, security: true, uri: "http://security.example/debian-security"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []aptEntry
			if strings.HasSuffix(tt.file, ".sources") {
				got = parseDeb822(tt.content)
			} else {
				got = parseOneLine(tt.content)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("entry %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestNumericUser(t *testing.T) {
	tests := []struct {
		user string
		ok   bool
	}{
		{user: "", ok: true},
		{user: "1000", ok: true},
		{user: "999:999", ok: true},
		{user: "postgres", ok: false},
		{user: "1000:staff", ok: false},
	}
	for _, tt := range tests {
		if err := numericUser(tt.user); (err == nil) != tt.ok {
			t.Errorf("numericUser(%q) = %v, want ok %v", tt.user, err, tt.ok)
		}
	}
}

func TestTreeKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key := func() string {
		t.Helper()
		k := newKey("test")
		if err := k.addTree("context", dir); err != nil {
			t.Fatal(err)
		}
		return k.sum()
	}
	write("a", "1")
	first := key()
	if err := os.Chtimes(filepath.Join(dir, "a"), time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if key() != first {
		t.Error("an mtime change changed the key")
	}
	write("a", "2")
	if key() == first {
		t.Error("a content change kept the key")
	}
	write("a", "1")
	if err := os.Chmod(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if key() == first {
		t.Error("a mode change kept the key")
	}
	if err := os.Chmod(filepath.Join(dir, "a"), 0o644); err != nil {
		t.Fatal(err)
	}
	write("b", "")
	if key() == first {
		t.Error("a new file kept the key")
	}
}

func TestStorePrunesSupersededVersions(t *testing.T) {
	b := &Builder{Dir: t.TempDir()}
	mk := func(tag, key string) Image {
		t.Helper()
		img := Image{Name: "localhost/x", Tag: tag, Key: key, Digest: "sha256:0", Archive: b.archivePath("localhost/x", tag, key)}
		if err := os.MkdirAll(filepath.Dir(img.Archive), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(img.Archive, []byte(key), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := b.store(img); err != nil {
			t.Fatal(err)
		}
		return img
	}
	old := mk("1", strings.Repeat("a", 64))
	other := mk("1-alpine", strings.Repeat("b", 64))
	current := mk("1", strings.Repeat("c", 64))
	if _, ok := b.lookup(old.Name, old.Tag, old.Key); ok {
		t.Error("superseded version of tag 1 still cached")
	}
	for _, img := range []Image{other, current} {
		got, ok := b.lookup(img.Name, img.Tag, img.Key)
		if !ok || !got.Cached || got.Archive != img.Archive {
			t.Errorf("lookup %s: %+v %v", img.Ref(), got, ok)
		}
	}
	// A truncated archive is not a hit.
	if err := os.WriteFile(current.Archive, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.lookup(current.Name, current.Tag, current.Key); ok {
		t.Error("an archive of the wrong size was a cache hit")
	}
}

func TestCheckToolsNamesPackages(t *testing.T) {
	err := checkTools(tool{program: "storefleet-no-such-tool", pkg: "storefleet-fake-package"}, tool{file: "/nonexistent/keyring.gpg", pkg: "fake-keyring"})
	if err == nil {
		t.Fatal("no error for a missing tool")
	}
	for _, want := range []string{"storefleet-no-such-tool not found", "apt-get install storefleet-fake-package fake-keyring"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// The cache key leaves out what .containerignore keeps out of the build.
func TestContextKeySkipsIgnoredPaths(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".containerignore", "node_modules\n.env.*\n# a comment\n")
	write("Containerfile", "FROM x\n")
	key := func() string {
		k := newKey("test")
		if err := k.addTree("context", dir); err != nil {
			t.Fatal(err)
		}
		return k.sum()
	}
	before := key()
	if err := os.MkdirAll(filepath.Join(dir, "src", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("node_modules/pkg/index.js", "x")
	write(".env.local", "SECRET=1")
	if key() != before {
		t.Error("an ignored file or an empty directory changed the key")
	}
	write("src/index.js", "y")
	if key() == before {
		t.Error("a file of the build did not change the key")
	}
}

// realBuild marks a test that runs the real image builder (root,
// debootstrap, buildah, the Debian mirror): part of make test, not of make
// unit (STOREFLEET_UNIT=1), which runs no network and no build tool.
func realBuild(t *testing.T) {
	t.Helper()
	if os.Getenv("STOREFLEET_UNIT") != "" {
		t.Skip("image build test: not part of make unit")
	}
}
