// Command localcluster builds the pinned local control-plane binaries into the
// versioned cache (`make tools`) and tells where they are.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sync/errgroup"

	"github.com/storefleet/storefleet/internal/devcluster"
)

const usage = `usage: localcluster <command>

commands:
  build   build every missing control-plane and real-node binary into the versioned cache
  images  build the real node's images (pause, CoreDNS, the ingress controller; needs build) and the store
          chart's into the image cache
  store-images
          build the Debian base and the store chart's images (Medusa, storefront, PostgreSQL,
          Redis, from charts/medusa-store/images): no control plane needed, so it can run beside build
  forge   build the local forge (Gitea) into its versioned cache
  gitops  build Flux's kustomize-controller into its versioned cache
  path    print the versioned cache directory of the binaries
`

func main() {
	if len(os.Args) != 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "build":
		// The two sets build side by side: on a cold machine the control
		// plane's chain (Kubernetes alone is most of it) is what make
		// prepare waits for, and the node's programs fill the cores its
		// module downloads and links leave idle.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		g, ctx := errgroup.WithContext(ctx)
		for _, set := range []struct {
			what  string
			tools devcluster.Tools
		}{{"the local control plane", devcluster.DefaultTools()}, {"the real node's programs", devcluster.NodeTools()}} {
			g.Go(func() error {
				fmt.Printf("Building %s into %s\n", set.what, set.tools.Dir)
				_, err := set.tools.Build(ctx, os.Stdout)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
			os.Exit(1)
		}
	case "forge":
		build("the local forge", devcluster.ForgeTools())
	case "gitops":
		build("kustomize-controller", devcluster.GitOpsTools())
	case "images", "store-images":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		b := devcluster.ImageBuilder(os.Stdout)
		if os.Args[1] == "images" {
			fmt.Printf("Building the real node's images into %s\n", b.Dir)
			if _, err := devcluster.BuildNodeImages(ctx, b); err != nil {
				fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
				os.Exit(1)
			}
		}
		fmt.Printf("Building the store images into %s\n", b.Dir)
		if _, err := devcluster.BuildStoreImages(ctx, b, devcluster.StoreImagesDir); err != nil {
			fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
			os.Exit(1)
		}
	case "path":
		fmt.Println(devcluster.DefaultTools().Dir)
	default:
		fmt.Fprintf(os.Stderr, "localcluster: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}

// build builds a tool set, stopping on Ctrl-C.
func build(what string, t devcluster.Tools) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("Building %s into %s\n", what, t.Dir)
	if _, err := t.Build(ctx, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
		os.Exit(1)
	}
}
