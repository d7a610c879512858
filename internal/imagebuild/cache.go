package imagebuild

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// keyHasher accumulates the inputs of a cache key. Every input is written
// with its name and length, so no two different input sets hash alike by
// concatenation.
type keyHasher struct{ h hash.Hash }

func newKey(kind string) *keyHasher {
	k := &keyHasher{h: sha256.New()}
	k.add("imagebuild", Version)
	k.add("kind", kind)
	return k
}

func (k *keyHasher) add(name, value string) {
	fmt.Fprintf(k.h, "%s %d\n%s\n", name, len(value), value)
}

func (k *keyHasher) addMap(name string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		k.add(name+"."+key, m[key])
	}
}

// addTree hashes every entry of dir: path, type, permission bits, and the
// content of files or the target of symlinks. Modification times are left
// out, so a fresh checkout of the same files hits the cache. Entries the
// context's .containerignore (or .dockerignore) names are left out too, as
// buildah leaves them out of the build: a developer's node_modules beside
// the Containerfile neither slows the hash nor invalidates the image.
func (k *keyHasher) addTree(name, dir string) error {
	ignored := ignorePatterns(dir)
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel != "." && isIgnored(ignored, filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Directories count through what they hold, as in Git: an empty
			// one a checkout does not have must not change the key.
			return nil
		}
		entry := fmt.Sprintf("%s %s", filepath.ToSlash(rel), fi.Mode().String())
		switch {
		case fi.Mode().IsRegular():
			sum, err := fileSum(path)
			if err != nil {
				return err
			}
			entry += " " + sum
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			entry += " -> " + target
		}
		k.add(name, entry)
		return nil
	})
}

func (k *keyHasher) sum() string { return hex.EncodeToString(k.h.Sum(nil)) }

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// shortKey is the part of a key shown in logs and file names; 64 bits tell
// the versions of one image apart.
func shortKey(key string) string {
	if len(key) > 16 {
		return key[:16]
	}
	return key
}

const (
	archiveExt = ".oci.tar"
	metaExt    = ".json"
)

// refDir is the directory holding every cached version of one image name:
// archives/<name with / and : as _>.
func (b *Builder) refDir(name string) string {
	return filepath.Join(b.Dir, "archives", strings.NewReplacer("/", "_", ":", "_").Replace(name))
}

// archivePath is where the image name:tag with the given key is cached.
func (b *Builder) archivePath(name, tag, key string) string {
	return filepath.Join(b.refDir(name), tag+"-"+shortKey(key)+archiveExt)
}

// metadata is stored beside an archive and written after it: its presence
// marks the archive complete.
type metadata struct {
	Image
	Size int64
}

func metaPath(archive string) string { return strings.TrimSuffix(archive, archiveExt) + metaExt }

// lookup returns the cached image name:tag with the given key, if complete.
func (b *Builder) lookup(name, tag, key string) (Image, bool) {
	archive := b.archivePath(name, tag, key)
	data, err := os.ReadFile(metaPath(archive))
	if err != nil {
		return Image{}, false
	}
	var m metadata
	if err := json.Unmarshal(data, &m); err != nil || m.Key != key || m.Name != name || m.Tag != tag {
		return Image{}, false
	}
	fi, err := os.Stat(archive)
	if err != nil || fi.Size() != m.Size {
		return Image{}, false
	}
	m.Image.Archive = archive
	m.Image.Cached = true
	return m.Image, true
}

// missReason says why name:tag must be built: for the progress line, which
// tells a first build from a rebuild after an input changed.
func (b *Builder) missReason(name, tag string) string {
	matches, _ := filepath.Glob(filepath.Join(b.refDir(name), tag+"-*"+metaExt))
	for _, m := range matches {
		base := strings.TrimSuffix(filepath.Base(m), metaExt)
		if old := base[len(tag)+1:]; len(old) == 16 {
			return "cache miss: inputs changed since key " + old
		}
	}
	return "cache miss: not built yet"
}

// store records a finished archive and removes the older versions of the same
// name:tag: they can never be hit again without a rebuild of their inputs
// (which rebuilds them anyway), and images are large.
func (b *Builder) store(img Image) error {
	fi, err := os.Stat(img.Archive)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(metadata{Image: img, Size: fi.Size()}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(metaPath(img.Archive), func(f *os.File) error {
		_, err := f.Write(append(data, '\n'))
		return err
	}); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Dir(img.Archive))
	if err != nil {
		return err
	}
	keep := filepath.Base(strings.TrimSuffix(img.Archive, archiveExt))
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), archiveExt)
		if !ok {
			base, ok = strings.CutSuffix(e.Name(), metaExt)
		}
		if !ok || base == keep {
			continue
		}
		// base is <tag>-<16 hex>; only the same tag is superseded.
		if i := strings.LastIndexByte(base, '-'); i >= 0 && base[:i] == img.Tag && len(base)-i-1 == 16 {
			if err := os.Remove(filepath.Join(filepath.Dir(img.Archive), e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// buildLog opens the log file of one image build, truncated: the tools'
// output goes there, and a failure names it.
func (b *Builder) buildLog(name, tag string) (*os.File, error) {
	dir := filepath.Join(b.Dir, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return os.Create(filepath.Join(dir, filepath.Base(b.refDir(name))+"_"+tag+".log"))
}

// ignorePatterns reads the context's .containerignore, else .dockerignore:
// one pattern a line, # comments; negations (!) are not supported and are
// ignored, which can only make the key cover more files than the build.
func ignorePatterns(dir string) []string {
	for _, f := range []string{".containerignore", ".dockerignore"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		var patterns []string
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
				continue
			}
			patterns = append(patterns, strings.Trim(filepath.ToSlash(filepath.Clean(line)), "/"))
		}
		return patterns
	}
	return nil
}

// isIgnored matches rel (slash-separated) against the patterns the way the
// ignore files mean them: from the context root (node_modules is the
// top-level one; a directory's match covers all below it).
func isIgnored(patterns []string, rel string) bool {
	for _, p := range patterns {
		if ok, _ := filepath.Match(p, rel); ok {
			return true
		}
	}
	return false
}
