package imagebuild

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

const (
	baseSuite   = "bookworm"
	baseVariant = "minbase"
	// debianKeyring verifies the Release files debootstrap downloads; passed
	// explicitly because without it debootstrap would carry on unverified.
	debianKeyring   = "/usr/share/keyrings/debian-archive-keyring.gpg"
	defaultMirror   = "http://deb.debian.org/debian"
	defaultSecurity = "http://deb.debian.org/debian-security"
)

// baseRecipe is every input of the base image besides the code of this
// package (covered by Version).
type baseRecipe struct {
	Suite, Variant, Arch string
	Mirror, Security     string
	// ExtraCAs are the host's own CA certificates (name → content) from
	// /usr/local/share/ca-certificates: where egress passes a
	// TLS-intercepting proxy, a build's https downloads (the npm registry)
	// need its CA, and images that install ca-certificates then trust it.
	ExtraCAs map[string]string `json:",omitempty"`
}

// hostCADir holds the CA certificates an administrator added to the host.
const hostCADir = "/usr/local/share/ca-certificates"

func hostExtraCAs() map[string]string {
	files, _ := filepath.Glob(filepath.Join(hostCADir, "*.crt"))
	cas := map[string]string{}
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil {
			cas[filepath.Base(f)] = string(data)
		}
	}
	if len(cas) == 0 {
		return nil
	}
	return cas
}

func (b *Builder) baseRecipe() baseRecipe {
	mirror, security := hostMirrors()
	if b.Mirror != "" {
		mirror = b.Mirror
	}
	return baseRecipe{Suite: baseSuite, Variant: baseVariant, Arch: debArch(), Mirror: mirror, Security: security, ExtraCAs: hostExtraCAs()}
}

func (r baseRecipe) key() string {
	data, _ := json.Marshal(r)
	k := newKey("base")
	k.add("recipe", string(data))
	return k.sum()
}

// Base returns the Debian base image localhost/storefleet/debian:bookworm,
// building it on a cache miss: debootstrap --variant=minbase from the mirror
// (about 70 s), apt lists and caches dropped, apt sources pointing at the
// same mirror so Containerfiles can apt-get install.
func (b *Builder) Base(ctx context.Context) (Image, error) {
	unlock, err := b.lock(ctx)
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	return b.base(ctx, true)
}

// base returns the base image; logHit says whether a cache hit is worth a
// line (not when Build asks: its own line says enough).
func (b *Builder) base(ctx context.Context, logHit bool) (Image, error) {
	r := b.baseRecipe()
	key := r.key()
	ref := BaseName + ":" + BaseTag
	if img, ok := b.lookup(BaseName, BaseTag, key); ok {
		if logHit {
			b.logf("Image %s cached (key %s)", ref, shortKey(key))
		}
		return img, nil
	}
	if err := checkTools(toolsBase...); err != nil {
		return Image{}, err
	}
	b.logf("Building image %s (%s; key %s): debootstrap --variant=%s %s from %s, about 70 s",
		ref, b.missReason(BaseName, BaseTag), shortKey(key), r.Variant, r.Suite, r.Mirror)
	start := time.Now()
	log, err := b.buildLog(BaseName, BaseTag)
	if err != nil {
		return Image{}, err
	}
	defer log.Close()
	img, err := b.buildBase(ctx, r, key, log)
	if err != nil {
		return Image{}, fmt.Errorf("build %s (log %s): %w", ref, log.Name(), err)
	}
	b.logf("Built image %s in %s", ref, time.Since(start).Round(100*time.Millisecond))
	return img, nil
}

func (b *Builder) buildBase(ctx context.Context, r baseRecipe, key string, log io.Writer) (img Image, err error) {
	work, err := os.MkdirTemp(b.tmpDir(), "base-")
	if err != nil {
		return Image{}, err
	}
	defer func() {
		// debootstrap mounts /proc and /sys in the target and may die before
		// unmounting them: detach before removing anything.
		if uerr := unmountUnder(work); uerr != nil {
			err = errors.Join(err, uerr)
			return
		}
		if rerr := os.RemoveAll(work); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	rootfs := filepath.Join(work, "rootfs")
	debCache := filepath.Join(b.Dir, "debootstrap-cache")
	if err := os.MkdirAll(debCache, 0o755); err != nil {
		return Image{}, err
	}
	// --cache-dir keeps the downloaded .debs, so a rebuild after a Version
	// bump does not download them again.
	if err := b.run(ctx, cmdSpec{program: "debootstrap", log: log, args: []string{
		"--variant=" + r.Variant, "--arch=" + r.Arch, "--keyring=" + debianKeyring,
		"--cache-dir=" + debCache, r.Suite, rootfs, r.Mirror,
	}}); err != nil {
		return Image{}, err
	}
	if err := unmountUnder(rootfs); err != nil {
		return Image{}, err
	}
	if err := trimRootfs(rootfs, r); err != nil {
		return Image{}, fmt.Errorf("trim rootfs: %w", err)
	}
	if len(r.ExtraCAs) > 0 {
		dir := filepath.Join(rootfs, strings.TrimPrefix(hostCADir, "/"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Image{}, err
		}
		for name, pem := range r.ExtraCAs {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(pem), 0o644); err != nil {
				return Image{}, err
			}
		}
	}
	l, err := b.tarLayer(ctx, rootfs, filepath.Join(work, "layer.tar.gz"), log)
	if err != nil {
		return Image{}, err
	}
	cfg := newConfig(containerConfig{
		Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd:    []string{"bash"},
		Labels: map[string]string{KeyLabel: key},
	}, fmt.Sprintf("debootstrap --variant=%s %s %s (storefleet imagebuild %s)", r.Variant, r.Suite, r.Mirror, Version), []layer{l})
	img = Image{Name: BaseName, Tag: BaseTag, Key: key, Archive: b.archivePath(BaseName, BaseTag, key)}
	if img.Digest, err = writeArchive(img.Archive, img.Ref(), cfg, []layer{l}); err != nil {
		return Image{}, err
	}
	return img, b.store(img)
}

// tarLayer packs a rootfs tree into a layer blob with GNU tar, which keeps
// hard links, device nodes and file capabilities as they are; numeric owners
// because the image's passwd, not the host's, gives the names.
func (b *Builder) tarLayer(ctx context.Context, rootfs, dst string, log io.Writer) (layer, error) {
	entries, err := os.ReadDir(rootfs)
	if err != nil {
		return layer{}, err
	}
	args := []string{
		"--create", "--file=-", "--directory=" + rootfs,
		"--numeric-owner", "--sort=name", "--format=posix",
		// Access and change times vary per build and mean nothing in a layer.
		"--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
		"--xattrs", "--xattrs-include=security.capability",
		"--",
	}
	// Top-level names rather than ".", so member names carry no "./" prefix,
	// like the layers registries serve.
	for _, e := range entries {
		args = append(args, e.Name())
	}
	return writeLayer(dst, func(w io.Writer) error {
		return b.run(ctx, cmdSpec{program: "tar", args: args, log: log, stdout: w})
	})
}

// trimRootfs turns a debootstrap tree into a container base: what the
// runtime provides or apt can fetch again goes, apt gets its sources.
func trimRootfs(root string, r baseRecipe) error {
	// The runtime bind-mounts these; debootstrap copied the host's.
	for _, p := range []string{"etc/resolv.conf", "etc/hostname", "etc/apt/sources.list"} {
		if err := os.Remove(filepath.Join(root, p)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	// Contents only: the directories themselves belong to the image.
	for _, dir := range []string{
		"dev",                    // the runtime mounts its own /dev
		"var/lib/apt/lists",      // refetched by apt-get update, 49 MB
		"var/cache/apt/archives", // downloaded .debs, 31 MB
		"tmp", "proc", "sys",
	} {
		if err := removeContents(filepath.Join(root, dir)); err != nil {
			return err
		}
	}
	// The logs of this build mean nothing in an image; the files stay (empty)
	// with their owners and modes, as login and apt expect them.
	if err := filepath.WalkDir(filepath.Join(root, "var/log"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		return os.Truncate(path, 0)
	}); err != nil {
		return err
	}
	for _, dir := range []string{"var/lib/apt/lists/partial", "var/cache/apt/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			return err
		}
	}
	for _, glob := range []string{"var/cache/apt/*.bin", "var/lib/dpkg/*-old", "var/cache/debconf/*-old"} {
		matches, _ := filepath.Glob(filepath.Join(root, glob))
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				return err
			}
		}
	}
	files := map[string]string{
		"etc/apt/sources.list.d/debian.sources": debianSources(r),
		// The same apt configuration as the official Debian images: a
		// Containerfile's apt-get install leaves no .debs or caches in its
		// layer.
		"etc/apt/apt.conf.d/docker-clean": `DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
`,
	}
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func removeContents(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// debianSources is the deb822 sources file of the official bookworm images,
// with the mirrors this host uses.
func debianSources(r baseRecipe) string {
	return fmt.Sprintf(`Types: deb
URIs: %s
Suites: %s %s-updates
Components: main
Signed-By: %s

Types: deb
URIs: %s
Suites: %s-security
Components: main
Signed-By: %s
`, r.Mirror, r.Suite, r.Suite, debianKeyring, r.Security, r.Suite, debianKeyring)
}

// hostMirrors returns the Debian archive and security mirrors of the host's
// apt sources, because that is the mirror known to be reachable here; the
// defaults are Debian's own CDN.
func hostMirrors() (mirror, security string) {
	var files []string
	files = append(files, "/etc/apt/sources.list")
	for _, pattern := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pattern)
		sort.Strings(m)
		files = append(files, m...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var entries []aptEntry
		if strings.HasSuffix(f, ".sources") {
			entries = parseDeb822(string(data))
		} else {
			entries = parseOneLine(string(data))
		}
		for _, e := range entries {
			if !e.deb || !httpURI(e.uri) {
				continue
			}
			if e.security {
				if security == "" {
					security = e.uri
				}
			} else if mirror == "" {
				mirror = e.uri
			}
		}
	}
	if mirror == "" {
		mirror = defaultMirror
	}
	if security == "" {
		security = defaultSecurity
	}
	return mirror, security
}

type aptEntry struct {
	deb, security bool
	uri           string
}

func httpURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func isSecuritySuite(suite string) bool { return strings.HasSuffix(suite, "-security") }

// parseOneLine reads `deb [options] uri suite components...` lines.
func parseOneLine(s string) []aptEntry {
	var out []aptEntry
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		typ, rest := f[0], f[1:]
		if strings.HasPrefix(rest[0], "[") {
			for len(rest) > 0 && !strings.HasSuffix(rest[0], "]") {
				rest = rest[1:]
			}
			if len(rest) > 0 {
				rest = rest[1:]
			}
		}
		if len(rest) < 2 {
			continue
		}
		out = append(out, aptEntry{deb: typ == "deb", uri: strings.TrimRight(rest[0], "/"), security: isSecuritySuite(rest[1])})
	}
	return out
}

// parseDeb822 reads the stanzas of a .sources file.
func parseDeb822(s string) []aptEntry {
	var out []aptEntry
	for _, stanza := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue // comments and continuation lines (Signed-By keys)
			}
			k, v, ok := strings.Cut(line, ":")
			if ok {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		deb := false
		for _, t := range strings.Fields(fields["types"]) {
			deb = deb || t == "deb"
		}
		security := false
		for _, suite := range strings.Fields(fields["suites"]) {
			security = security || isSecuritySuite(suite)
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, aptEntry{deb: deb, security: security, uri: strings.TrimRight(uri, "/")})
		}
	}
	return out
}

// debArch is the Debian architecture name of this host, for debootstrap.
func debArch() string {
	switch runtime.GOARCH {
	case "arm":
		return "armhf"
	case "386":
		return "i386"
	case "ppc64le":
		return "ppc64el"
	default: // amd64, arm64, riscv64, s390x are spelled alike
		return runtime.GOARCH
	}
}
