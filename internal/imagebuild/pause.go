package imagebuild

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// PauseSourceModule is the Kubernetes release whose build/pause/linux/pause.c
// is compiled: the one the kubelet of the real node is built from.
const PauseSourceModule = "k8s.io/kubernetes@v1.35.4"

// pauseCFLAGS are those of Kubernetes' build/pause/Makefile.
var pauseCFLAGS = []string{"-Os", "-Wall", "-Werror", "-static", "-DVERSION=v" + PauseTag + "-storefleet"}

// PauseUID is the numeric user of the pause image, as upstream's: a
// sandbox under runAsNonRoot needs a numeric uid.
const PauseUID = "65535"

// Pause returns the pod sandbox image localhost/pause:3.10, building it on a
// cache miss: pause.c from the module cache compiled with gcc -static and
// stripped, /pause as entrypoint, user 65535. It needs no base image.
func (b *Builder) Pause(ctx context.Context) (Image, error) {
	unlock, err := b.lock(ctx)
	if err != nil {
		return Image{}, err
	}
	defer unlock()

	ref := PauseName + ":" + PauseTag
	if err := checkTools(toolsPause...); err != nil {
		return Image{}, err
	}
	src, err := b.pauseSource(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("find pause.c of %s: %w", PauseSourceModule, err)
	}
	code, err := os.ReadFile(src)
	if err != nil {
		return Image{}, err
	}
	gccVersion, err := b.output(ctx, cmdSpec{program: "gcc", args: []string{"--version"}})
	if err != nil {
		return Image{}, err
	}
	k := newKey("pause")
	k.add("pause.c", string(code))
	k.add("gcc", strings.SplitN(string(gccVersion), "\n", 2)[0])
	k.add("cflags", strings.Join(pauseCFLAGS, " "))
	k.add("user", PauseUID)
	key := k.sum()
	if img, ok := b.lookup(PauseName, PauseTag, key); ok {
		b.logf("Image %s cached (key %s)", ref, shortKey(key))
		return img, nil
	}

	b.logf("Building image %s (%s; key %s): gcc -static %s", ref, b.missReason(PauseName, PauseTag), shortKey(key), src)
	start := time.Now()
	log, err := b.buildLog(PauseName, PauseTag)
	if err != nil {
		return Image{}, err
	}
	defer log.Close()
	img, err := b.buildPause(ctx, src, key, log)
	if err != nil {
		return Image{}, fmt.Errorf("build %s (log %s): %w", ref, log.Name(), err)
	}
	b.logf("Built image %s in %s", ref, time.Since(start).Round(100*time.Millisecond))
	return img, nil
}

func (b *Builder) buildPause(ctx context.Context, src, key string, log io.Writer) (Image, error) {
	work, err := os.MkdirTemp(b.tmpDir(), "pause-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "pause")
	args := append(append([]string{}, pauseCFLAGS...), "-o", bin, src)
	if err := b.run(ctx, cmdSpec{program: "gcc", args: args, log: log}); err != nil {
		return Image{}, err
	}
	if err := b.run(ctx, cmdSpec{program: "strip", args: []string{bin}, log: log}); err != nil {
		return Image{}, err
	}
	l, err := writeLayer(filepath.Join(work, "layer.tar.gz"), func(w io.Writer) error {
		return tarSingleFile(w, "pause", bin, 0o755)
	})
	if err != nil {
		return Image{}, err
	}
	cfg := newConfig(containerConfig{
		User:       PauseUID + ":" + PauseUID,
		Entrypoint: []string{"/pause"},
		Labels:     map[string]string{KeyLabel: key},
	}, "gcc -static build/pause/linux/pause.c of "+PauseSourceModule+" (storefleet imagebuild "+Version+")", []layer{l})
	img := Image{Name: PauseName, Tag: PauseTag, Key: key, Archive: b.archivePath(PauseName, PauseTag, key)}
	if img.Digest, err = writeArchive(img.Archive, img.Ref(), cfg, []layer{l}); err != nil {
		return Image{}, err
	}
	return img, b.store(img)
}

// pauseSource finds pause.c in the Go module cache, downloading the
// Kubernetes module through the module proxy when it is not there yet. The
// download runs outside any module so no go.mod or go.sum is touched.
func (b *Builder) pauseSource(ctx context.Context) (string, error) {
	out, err := b.output(ctx, cmdSpec{
		program: "go", dir: b.tmpDir(),
		args: []string{"mod", "download", "-json", PauseSourceModule},
		env:  []string{"GO111MODULE=on", "GOFLAGS=", "GOWORK=off"},
	})
	if err != nil {
		return "", err
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("go mod download: %w", err)
	}
	if mod.Error != "" {
		return "", errors.New(mod.Error)
	}
	src := filepath.Join(mod.Dir, "build", "pause", "linux", "pause.c")
	if _, err := os.Stat(src); err != nil {
		return "", err
	}
	return src, nil
}

// tarSingleFile writes a tar stream holding one root-owned file.
func tarSingleFile(w io.Writer, name, path string, mode int64) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)),
		ModTime: time.Now().UTC().Truncate(time.Second), Format: tar.FormatPAX,
	}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	return tw.Close()
}
