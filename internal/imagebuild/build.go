package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec describes an image built from a Containerfile.
type Spec struct {
	// Name is the repository without tag, e.g. localhost/storefleet/postgres.
	// A localhost/ prefix keeps it from looking pullable.
	Name string
	// Tag is the image tag, e.g. 15.
	Tag string
	// Context is the build context directory. Every file in it is part of
	// the cache key, so keep it to what the image needs.
	Context string
	// Containerfile is the path of the Containerfile, relative to Context
	// unless absolute. Empty means Containerfile, else Dockerfile, in Context.
	Containerfile string
	// BuildArgs are passed as --build-arg; BASE_IMAGE is set by Build.
	BuildArgs map[string]string
	// Base is the image passed as BASE_IMAGE. Nil means the Debian base
	// (Builder.Base); another image built by Build may be used, so that an
	// app image can start from a locally built runtime image.
	Base *Image
}

// Build returns the image built from s, building it on a cache miss with
// buildah (chroot isolation, host network for apt and npm, never pulling) on
// top of the base image, which it receives as BASE_IMAGE. The cache key
// covers the Containerfile, every file of the context, the build arguments
// and the base image's own key.
func (b *Builder) Build(ctx context.Context, s Spec) (Image, error) {
	unlock, err := b.lock(ctx)
	if err != nil {
		return Image{}, err
	}
	defer unlock()

	// Absolute, since the key and buildah must not depend on the working
	// directory.
	if s.Context, err = filepath.Abs(s.Context); err != nil {
		return Image{}, err
	}
	containerfile, err := s.validate()
	if err != nil {
		return Image{}, err
	}
	var base Image
	if s.Base != nil {
		base = *s.Base
	} else if base, err = b.base(ctx, false); err != nil {
		return Image{}, err
	}
	ref := s.Name + ":" + s.Tag
	key, err := buildKey(s, containerfile, base)
	if err != nil {
		return Image{}, err
	}
	if img, ok := b.lookup(s.Name, s.Tag, key); ok {
		b.logf("Image %s cached (key %s)", ref, shortKey(key))
		return img, nil
	}

	if err := checkTools(toolsBuild...); err != nil {
		return Image{}, err
	}
	b.logf("Building image %s (%s; key %s): buildah bud of %s on %s", ref, b.missReason(s.Name, s.Tag), shortKey(key), containerfile, base.Ref())
	start := time.Now()
	log, err := b.buildLog(s.Name, s.Tag)
	if err != nil {
		return Image{}, err
	}
	defer log.Close()
	img, err := b.buildah(ctx, s, containerfile, base, key, log)
	if err != nil {
		return Image{}, fmt.Errorf("build %s (log %s): %w", ref, log.Name(), err)
	}
	b.logf("Built image %s in %s", ref, time.Since(start).Round(100*time.Millisecond))
	return img, nil
}

// buildKey hashes the inputs of a Build.
func buildKey(s Spec, containerfile string, base Image) (string, error) {
	k := newKey("build")
	k.add("name", s.Name)
	k.add("tag", s.Tag)
	cf, err := os.ReadFile(containerfile)
	if err != nil {
		return "", err
	}
	k.add("containerfile", string(cf))
	if err := k.addTree("context", s.Context); err != nil {
		return "", fmt.Errorf("hash build context of %s:%s: %w", s.Name, s.Tag, err)
	}
	k.addMap("arg", s.BuildArgs)
	k.add("base", base.Ref()+" "+base.Key)
	return k.sum(), nil
}

// nameRE is the repository syntax of a reference without tag or digest.
var nameRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$`)

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// validate checks s and returns the Containerfile's path.
func (s Spec) validate() (string, error) {
	if !nameRE.MatchString(s.Name) {
		return "", fmt.Errorf("imagebuild: image name %q is not a repository like localhost/storefleet/app", s.Name)
	}
	if !tagRE.MatchString(s.Tag) {
		return "", fmt.Errorf("imagebuild: image %s: invalid tag %q", s.Name, s.Tag)
	}
	if _, ok := s.BuildArgs[BaseImageArg]; ok {
		return "", fmt.Errorf("imagebuild: image %s: %s is set from Spec.Base, not BuildArgs", s.Name, BaseImageArg)
	}
	if fi, err := os.Stat(s.Context); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("imagebuild: image %s: context %q is not a directory", s.Name, s.Context)
	}
	candidates := []string{s.Containerfile}
	if s.Containerfile == "" {
		candidates = []string{"Containerfile", "Dockerfile"}
	}
	for _, c := range candidates {
		if !filepath.IsAbs(c) {
			c = filepath.Join(s.Context, c)
		}
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("imagebuild: image %s: no Containerfile %s", s.Name, strings.Join(candidates, " or "))
}

// buildahStore is buildah's storage and configuration under Builder.Dir, so a
// build never reads or writes /var/lib/containers or the host's registries.
type buildahStore struct {
	root, runroot, driver string
	registries, policy    string
	tmp                   string
}

func (b *Builder) buildahStore() (buildahStore, error) {
	driver := storageDriver(b.Dir)
	dir := filepath.Join(b.Dir, "buildah")
	st := buildahStore{
		root:    filepath.Join(dir, driver, "root"),
		runroot: filepath.Join(dir, driver, "runroot"),
		driver:  driver,
		// No search registries: a short name in FROM fails at once instead
		// of trying docker.io through the transparent proxy.
		registries: filepath.Join(dir, "registries.conf"),
		// Local archives and storage only: accept them as they are.
		policy: filepath.Join(dir, "policy.json"),
		tmp:    b.tmpDir(),
	}
	files := map[string]string{
		st.registries: "# Written by storefleet imagebuild: images are local, never pulled.\nunqualified-search-registries = []\nshort-name-mode = \"enforcing\"\n",
		st.policy:     `{"default": [{"type": "insecureAcceptAnything"}]}` + "\n",
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return st, err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return st, err
		}
	}
	return st, nil
}

// storageDriver picks overlay, the fast driver, unless the cache itself is on
// overlayfs (inside a container), where overlay cannot stack and vfs copies
// instead. Each driver has its own storage root since they cannot share one.
func storageDriver(dir string) string {
	const overlayfsMagic = 0x794c7630
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil && st.Type == overlayfsMagic {
		return "vfs"
	}
	return "overlay"
}

func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// cmd is a buildah invocation on this store.
func (st buildahStore) cmd(log io.Writer, args ...string) cmdSpec {
	global := []string{
		"--root", st.root, "--runroot", st.runroot, "--storage-driver", st.driver,
		"--registries-conf", st.registries,
		"--short-name-alias-conf", filepath.Join(filepath.Dir(st.registries), "short-name-aliases.conf"),
	}
	return cmdSpec{
		what:    "buildah " + args[0],
		program: "buildah",
		args:    append(global, args...),
		log:     log,
		// Unless the cache itself is under /var/lib, which the tmpfs would
		// hide; then the blob info cache lands in /var/lib/containers.
		hideVarLib: !under(st.root, "/var/lib"),
		env: []string{
			"TMPDIR=" + st.tmp, // image copies stage blobs there, not in /var/tmp
			"CONTAINERS_REGISTRIES_CONF=" + st.registries,
			"BUILDAH_ISOLATION=chroot",
		},
	}
}

func (b *Builder) buildah(ctx context.Context, s Spec, containerfile string, base Image, key string, log io.Writer) (Image, error) {
	st, err := b.buildahStore()
	if err != nil {
		return Image{}, err
	}
	ref := s.Name + ":" + s.Tag
	// Working containers of a build that was killed; we hold the lock, so
	// none is in use.
	if err := b.run(ctx, st.cmd(log, "rm", "--all")); err != nil {
		return Image{}, err
	}
	if err := b.ensureStored(ctx, st, base, log); err != nil {
		return Image{}, err
	}
	args := []string{
		"bud", "--signature-policy", st.policy,
		"--isolation", "chroot", "--network", "host",
		"--pull=never", "--layers=false", "--force-rm", "--format", "oci",
		"--file", containerfile, "--tag", ref,
		"--label", KeyLabel + "=" + key,
		"--build-arg", BaseImageArg + "=" + base.Ref(),
	}
	names := make([]string, 0, len(s.BuildArgs))
	for n := range s.BuildArgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		args = append(args, "--build-arg", n+"="+s.BuildArgs[n])
	}
	args = append(args, s.Context)
	if err := b.run(ctx, st.cmd(log, args...)); err != nil {
		return Image{}, err
	}
	// Only the archive is kept: the image itself leaves buildah's storage,
	// which holds nothing but base images between builds.
	defer func() {
		if err := b.run(context.WithoutCancel(ctx), st.cmd(log, "rmi", ref)); err != nil {
			fmt.Fprintf(log, "remove %s from buildah storage: %v\n", ref, err)
		}
	}()
	// Before the push, which takes seconds for a large image.
	user, err := b.output(ctx, st.cmd(log, "inspect", "--type", "image", "--format", "{{.OCIv1.Config.User}}", ref))
	if err != nil {
		return Image{}, err
	}
	if err := numericUser(strings.TrimSpace(string(user))); err != nil {
		return Image{}, err
	}

	img := Image{Name: s.Name, Tag: s.Tag, Key: key, Archive: b.archivePath(s.Name, s.Tag, key)}
	if err := os.MkdirAll(filepath.Dir(img.Archive), 0o755); err != nil {
		return Image{}, err
	}
	// Beside the final name, so the rename is atomic.
	tmp := filepath.Join(filepath.Dir(img.Archive), "."+filepath.Base(img.Archive)+".tmp-"+strconv.Itoa(os.Getpid()))
	os.Remove(tmp)
	defer os.Remove(tmp)
	if err := b.run(ctx, st.cmd(log, "push", "--signature-policy", st.policy, "--quiet", "--format", "oci",
		ref, "oci-archive:"+tmp+":"+ref)); err != nil {
		return Image{}, err
	}
	info, err := readArchive(tmp)
	if err != nil {
		return Image{}, err
	}
	if info.Ref != ref {
		return Image{}, fmt.Errorf("archive names %q, want %q", info.Ref, ref)
	}
	img.Digest = info.Digest
	if err := os.Rename(tmp, img.Archive); err != nil {
		return Image{}, err
	}
	return img, b.store(img)
}

// ensureStored makes buildah's storage hold img as the archive has it: the
// key label tells a current copy from a stale one (or none), and a stale one
// is replaced from the archive, which stays the source of truth.
func (b *Builder) ensureStored(ctx context.Context, st buildahStore, img Image, log io.Writer) error {
	format := fmt.Sprintf(`{{index .OCIv1.Config.Labels %q}}`, KeyLabel)
	out, err := b.output(ctx, st.cmd(log, "inspect", "--type", "image", "--format", format, img.Ref()))
	if err == nil && strings.TrimSpace(string(out)) == img.Key {
		return nil
	}
	if err == nil {
		if err := b.run(ctx, st.cmd(log, "rmi", "--force", img.Ref())); err != nil {
			return err
		}
	}
	if img.Archive == "" {
		return fmt.Errorf("base image %s has no archive", img.Ref())
	}
	// buildah names an image pulled from an oci-archive after its
	// ref.name annotation, which is the full reference.
	if err := b.run(ctx, st.cmd(log, "pull", "--signature-policy", st.policy, "--quiet", "oci-archive:"+img.Archive)); err != nil {
		return fmt.Errorf("load base %s into buildah storage: %w", img.Ref(), err)
	}
	return nil
}

// numericUser rejects a user name: the kubelet cannot verify runAsNonRoot
// for "postgres", only for "999".
func numericUser(user string) error {
	if user == "" {
		return nil
	}
	uid, gid, _ := strings.Cut(user, ":")
	for _, part := range []string{uid, gid} {
		if part == "" {
			continue
		}
		if _, err := strconv.ParseUint(part, 10, 32); err != nil {
			return errors.New("image USER " + strconv.Quote(user) + " is not numeric: use the uid (and gid), e.g. USER 999:999, or runAsNonRoot rejects it")
		}
	}
	return nil
}
