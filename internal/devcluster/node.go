package devcluster

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/storefleet/storefleet/internal/imagebuild"
	"github.com/storefleet/storefleet/internal/realnode"
)

// nodeImageFiles are the Containerfiles of the real node's own pods (CoreDNS,
// the ingress controller): a locally built binary on the Debian base. They
// are local test components and never part of what storefleet ships.
//
//go:embed images
var nodeImageFiles embed.FS

// NodeImages are the images the real node needs before any pod can run.
type NodeImages struct {
	Pause, CoreDNS, Ingress imagebuild.Image
}

// All lists them for import.
func (i NodeImages) All() []imagebuild.Image {
	return []imagebuild.Image{i.Pause, i.CoreDNS, i.Ingress}
}

// ImageBuilder is the local image builder over the shared image cache.
func ImageBuilder(log io.Writer) *imagebuild.Builder {
	return &imagebuild.Builder{Dir: imagebuild.DefaultDir(), Log: log}
}

// BuildNodeImages builds (or finds cached) the real node's images: CoreDNS
// from NodeTools, the ingress controller from this repository's
// cmd/localingress (so it must run inside the repository, as make images,
// make run and the tests do). `make images` runs it, and Start does when an
// input changed since.
func BuildNodeImages(ctx context.Context, b *imagebuild.Builder) (NodeImages, error) {
	var imgs NodeImages
	var err error
	if imgs.Pause, err = b.Pause(ctx); err != nil {
		return imgs, err
	}
	ingress, err := buildLocalIngress(ctx, filepath.Join(b.Dir, "contexts", "local-ingress.bin"))
	if err != nil {
		return imgs, err
	}
	for _, c := range []struct {
		name, binary, tag string
		out               *imagebuild.Image
	}{
		{"coredns", NodeTools().Bin("coredns"), CoreDNSVersion, &imgs.CoreDNS},
		// Tagged by content: a changed controller is a new image, and the
		// node's Deployment rolls to it.
		{"local-ingress", ingress, "", &imgs.Ingress},
	} {
		dir := filepath.Join(b.Dir, "contexts", c.name)
		if err := writeNodeImageContext(dir, c.name, c.binary); err != nil {
			return imgs, err
		}
		if c.tag == "" {
			if c.tag, err = fileDigest(c.binary); err != nil {
				return imgs, err
			}
		}
		if *c.out, err = b.Build(ctx, imagebuild.Spec{
			Name: "localhost/storefleet/" + c.name, Tag: c.tag, Context: dir,
			Containerfile: filepath.Join(dir, "Containerfile"),
		}); err != nil {
			return imgs, fmt.Errorf("build the %s image: %w", c.name, err)
		}
	}
	return imgs, nil
}

// buildLocalIngress builds cmd/localingress of the repository the current
// directory is in, into out: static, and with the flags the tests build
// storefleet with (CGO_ENABLED=0, -trimpath), so the two share their
// compiled packages and the binary is the same in every clone.
func buildLocalIngress(ctx context.Context, out string) (string, error) {
	mod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("the local ingress controller is built with Go: %w", err)
	}
	gomod := strings.TrimSpace(string(mod))
	data, err := os.ReadFile(gomod)
	if err != nil || modfile.ModulePath(data) != "github.com/storefleet/storefleet" {
		return "", fmt.Errorf("the local ingress controller is built from this repository's cmd/localingress: run from the repository (make images, make run), not from %s", gomod)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	// Built beside out and renamed over it: another cluster starting at the
	// same time may be reading out.
	tmp := fmt.Sprintf("%s.%d", out, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", tmp, "./cmd/localingress")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build cmd/localingress: %w\n%s", err, msg)
	}
	return out, os.Rename(tmp, out)
}

// fileDigest is the first 12 hex digits of a file's SHA-256.
func fileDigest(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:12], nil
}

// writeNodeImageContext lays out an image's build context: its Containerfile
// and the binary (a hard link into the tool cache when possible).
func writeNodeImageContext(dir, name, binary string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cf, err := nodeImageFiles.ReadFile("images/" + name + "/Containerfile")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), cf, 0o644); err != nil {
		return err
	}
	// Two clusters may start at once: the binary is put in place under a
	// name of this process's and renamed over the old one, so neither ever
	// sees (or truncates, through a hard link) a half-written file.
	dst := filepath.Join(dir, name)
	removeStaleCopies(dir, name)
	if same(binary, dst) {
		return nil
	}
	tmp := fmt.Sprintf("%s.%d", dst, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Link(binary, tmp); err != nil {
		data, err := os.ReadFile(binary)
		if err != nil {
			return fmt.Errorf("%s binary: %w (run `make tools`)", name, err)
		}
		if err := os.WriteFile(tmp, data, 0o755); err != nil {
			return err
		}
	}
	err = os.Rename(tmp, dst)
	// Renaming a link over another link of the same file does nothing and
	// leaves the new name behind — in the build context, where each one
	// changed the image's cache key (the CoreDNS image was rebuilt on every
	// start, its context holding a link per process that ever started).
	_ = os.Remove(tmp)
	return err
}

// same reports whether two paths are the same file.
func same(a, b string) bool {
	ai, err := os.Stat(a)
	if err != nil {
		return false
	}
	bi, err := os.Stat(b)
	return err == nil && os.SameFile(ai, bi)
}

// removeStaleCopies removes the temporary names (name.<pid>) that
// processes no longer running left in dir.
func removeStaleCopies(dir, name string) {
	matches, _ := filepath.Glob(filepath.Join(dir, name+".*"))
	for _, m := range matches {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(m), name+"."))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			_ = os.Remove(m)
		}
	}
}

// nodeConfig is the real node's configuration from the built tools and
// images; the caller fills in the cluster's paths.
func nodeConfig(ctx context.Context, log io.Writer, extra []imagebuild.Image) (realnode.Config, error) {
	cp, nt := DefaultTools(), NodeTools()
	var missing []string
	for _, t := range []Tools{cp, nt} {
		missing = append(missing, t.Missing()...)
	}
	if len(missing) > 0 {
		return realnode.Config{}, fmt.Errorf("real node binaries missing in %s and %s (%v): run `make tools` first", cp.Dir, nt.Dir, missing)
	}
	b := ImageBuilder(log)
	imgs, err := BuildNodeImages(ctx, b)
	if err != nil {
		return realnode.Config{}, fmt.Errorf("the real node's images: %w (run `make images`)", err)
	}
	return realnode.Config{
		Bin: realnode.Binaries{
			Kubelet: cp.Bin("kubelet"), KubeProxy: cp.Bin("kube-proxy"),
			Containerd: nt.Bin("containerd"), Ctr: nt.Bin("ctr"), Crictl: nt.Bin("crictl"), KubeRouter: nt.Bin("kube-router"),
		},
		Addons: realnode.Addons{CoreDNSImage: imgs.CoreDNS.Ref(), IngressImage: imgs.Ingress.Ref()},
		Import: func(ctx context.Context, ctr, address string) error {
			for _, img := range append(imgs.All(), extra...) {
				if err := b.Import(ctx, ctr, address, img); err != nil {
					return err
				}
			}
			return nil
		},
	}, nil
}

// StoreImagesDir is where the store chart's image sources live in the
// repository (`make images` runs from its root).
const StoreImagesDir = "charts/medusa-store/images"

// StoreImage is one image of the store chart: its directory under
// StoreImagesDir and the repository name the chart's values use.
type StoreImage struct{ Dir, Repository string }

// StoreImages are the images the store chart runs.
var StoreImages = []StoreImage{
	{"medusa", "medusa"}, {"storefront", "medusa-storefront"}, {"postgres", "postgres"}, {"redis", "redis"},
}

// BuildStoreImages builds (or finds cached) the store chart's images from
// their sources in dir, tagged as the chart's values name them: the Medusa
// version of medusa/package.json (the one place it is pinned) for the Node
// images, the major version for PostgreSQL and Redis.
func BuildStoreImages(ctx context.Context, b *imagebuild.Builder, dir string) ([]imagebuild.Image, error) {
	tags, err := StoreImageTags(dir)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var imgs []imagebuild.Image
	for _, s := range StoreImages {
		img, err := b.Build(ctx, imagebuild.Spec{
			Name: "localhost/storefleet/" + s.Repository, Tag: tags[s.Dir],
			Context: filepath.Join(abs, s.Dir), Containerfile: "Containerfile",
		})
		if err != nil {
			return nil, fmt.Errorf("build the store image %s: %w", s.Repository, err)
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// StoreImageTags maps each store image directory to its tag.
func StoreImageTags(dir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "medusa", "package.json"))
	if err != nil {
		return nil, fmt.Errorf("the store images' sources: %w", err)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		return nil, fmt.Errorf("medusa/package.json: %w", err)
	}
	medusa := pkg.Dependencies["@medusajs/medusa"]
	if medusa == "" {
		return nil, fmt.Errorf("medusa/package.json does not pin @medusajs/medusa")
	}
	return map[string]string{"medusa": medusa, "storefront": medusa, "postgres": "15", "redis": "7"}, nil
}
