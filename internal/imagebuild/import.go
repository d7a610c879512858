package imagebuild

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CRINamespace is the containerd namespace the CRI plugin serves images from.
const CRINamespace = "k8s.io"

// CRIManagedLabel is the label containerd's CRI plugin puts on the images it
// manages; an image without it is invisible to the kubelet.
const CRIManagedLabel = "io.cri-containerd.image=managed"

// criLabelWait bounds the wait for the CRI plugin to adopt an imported image.
const criLabelWait = 30 * time.Second

// Import loads img into the k8s.io namespace of the containerd listening on
// address, using the ctr binary given (empty means ctr on PATH), and waits
// until the CRI plugin has adopted it. An image already present at the same
// manifest digest is not imported again.
//
// ctr 1.6 names the image after the archive's ref.name annotation, which
// holds the full reference, and unpacks it into the default snapshotter
// (overlayfs). It has no --label flag: the CRI plugin labels images of its
// namespace itself when it sees them appear, which is what Import waits for.
func (b *Builder) Import(ctx context.Context, ctrBinary, address string, img Image) error {
	if ctrBinary == "" {
		ctrBinary = "ctr"
	}
	ref := img.Ref()
	if _, err := lookPath(ctrBinary); err != nil {
		return fmt.Errorf("import %s: %w (Debian package containerd)", ref, err)
	}
	if img.Archive == "" || img.Digest == "" {
		return fmt.Errorf("import %s: image has no archive or digest", ref)
	}
	present, err := b.ctrImage(ctx, ctrBinary, address, ref)
	if err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	if present.digest == img.Digest && present.managed {
		b.logf("Image %s already in containerd %s at %s", ref, address, shortKey(strings.TrimPrefix(img.Digest, "sha256:")))
		return nil
	}
	if present.digest != img.Digest {
		why := "not present"
		if present.digest != "" {
			why = "present at another digest " + present.digest
		}
		b.logf("Importing image %s into containerd %s (%s)", ref, address, why)
		start := time.Now()
		if err := b.run(ctx, cmdSpec{program: ctrBinary, args: []string{
			"--address", address, "--namespace", CRINamespace, "images", "import", img.Archive,
		}}); err != nil {
			return fmt.Errorf("import %s: %w", ref, err)
		}
		b.logf("Imported image %s in %s", ref, time.Since(start).Round(100*time.Millisecond))
	}
	deadline := time.Now().Add(criLabelWait)
	for {
		present, err = b.ctrImage(ctx, ctrBinary, address, ref)
		if err != nil {
			return fmt.Errorf("import %s: %w", ref, err)
		}
		if present.digest != img.Digest {
			return fmt.Errorf("import %s: containerd has digest %q after import, want %s", ref, present.digest, img.Digest)
		}
		if present.managed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("import %s: containerd %s did not label it %s within %s: is its CRI plugin enabled?",
				ref, address, CRIManagedLabel, criLabelWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ctrImageState is what containerd holds under one reference.
type ctrImageState struct {
	digest  string // empty when absent
	managed bool
}

// ctrImage reads one image of the k8s.io namespace from `ctr images ls`,
// whose columns are REF TYPE DIGEST SIZE(value unit) PLATFORMS LABELS.
func (b *Builder) ctrImage(ctx context.Context, ctrBinary, address, ref string) (ctrImageState, error) {
	out, err := b.output(ctx, cmdSpec{program: ctrBinary, args: []string{
		"--address", address, "--namespace", CRINamespace, "images", "ls", "name==" + ref,
	}})
	if err != nil {
		return ctrImageState{}, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != ref {
			continue
		}
		st := ctrImageState{digest: f[2]}
		for _, l := range strings.Split(f[len(f)-1], ",") {
			st.managed = st.managed || l == CRIManagedLabel
		}
		return st, nil
	}
	return ctrImageState{}, nil
}
