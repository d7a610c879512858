package devcluster

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/storefleet/storefleet/internal/imagebuild"
	"github.com/storefleet/storefleet/internal/realnode"
)

// nodeImageFiles are the Containerfiles of the real node's own pods (CoreDNS,
// traefik): a locally built binary on the Debian base. They are local test
// components and never part of what storefleet ships.
//
//go:embed images
var nodeImageFiles embed.FS

// NodeImages are the images the real node needs before any pod can run.
type NodeImages struct {
	Pause, CoreDNS, Traefik imagebuild.Image
}

// All lists them for import.
func (i NodeImages) All() []imagebuild.Image {
	return []imagebuild.Image{i.Pause, i.CoreDNS, i.Traefik}
}

// ImageBuilder is the local image builder over the shared image cache.
func ImageBuilder(log io.Writer) *imagebuild.Builder {
	return &imagebuild.Builder{Dir: imagebuild.DefaultDir(), Log: log}
}

// BuildNodeImages builds (or finds cached) the real node's images from the
// binaries of NodeTools: `make images` runs it, and Start does when an input
// changed since.
func BuildNodeImages(ctx context.Context, b *imagebuild.Builder) (NodeImages, error) {
	var imgs NodeImages
	var err error
	if imgs.Pause, err = b.Pause(ctx); err != nil {
		return imgs, err
	}
	t := NodeTools()
	for _, c := range []struct {
		name, tag string
		out       *imagebuild.Image
	}{
		{"coredns", CoreDNSVersion, &imgs.CoreDNS},
		{"traefik", TraefikVersion, &imgs.Traefik},
	} {
		dir := filepath.Join(b.Dir, "contexts", c.name)
		if err := writeNodeImageContext(dir, c.name, t.Bin(c.name)); err != nil {
			return imgs, err
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
	dst := filepath.Join(dir, name)
	_ = os.Remove(dst)
	if err := os.Link(binary, dst); err == nil {
		return nil
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("%s binary: %w (run `make tools`)", name, err)
	}
	return os.WriteFile(dst, data, 0o755)
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
		Addons: realnode.Addons{CoreDNSImage: imgs.CoreDNS.Ref(), TraefikImage: imgs.Traefik.Ref()},
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
