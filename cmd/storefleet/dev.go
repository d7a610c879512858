package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/storefleet/storefleet/test/localcluster"
)

func runDev(args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	flux := fs.Bool("flux", false, "also run the Flux helm-controller and source-controller")
	workdir := fs.String("workdir", "", "directory for the cluster's state (default: a new temporary directory, removed on exit)")
	var op operatorFlags
	op.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	platform, err := op.platform()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tools := localcluster.DefaultTools()
	if missing := tools.Missing(); len(missing) > 0 {
		fmt.Printf("First run: building the local control plane into %s\n(about 30 minutes on 2 cores with empty Go caches; later runs start in seconds)\n", tools.Dir)
		if _, err := localcluster.Build(ctx, os.Stdout); err != nil {
			return err
		}
	}
	cluster, err := localcluster.Start(ctx, localcluster.Options{Workdir: *workdir, Flux: *flux, Log: os.Stdout})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("Stopping the local cluster ...")
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "storefleet dev: stop: %v\n", err)
		}
	}()

	metricsPort, err := localcluster.FreePort()
	if err != nil {
		return err
	}
	op.metricsAddr = fmt.Sprintf("127.0.0.1:%d", metricsPort)
	op.healthAddr = "0"
	operatorDone := make(chan error, 1)
	go func() { operatorDone <- startOperator(ctx, cluster.Config, op, platform, devLogger(cluster.Workdir)) }()

	kubectl := tools.Bin("kubectl")
	fmt.Printf(`
storefleet dev is running. Use the cluster with:

export KUBECONFIG=%s
alias kubectl=%s
kubectl get nodes
kubectl apply -f - <<'YAML'
apiVersion: storefleet.dev/v1alpha1
kind: Store
metadata: {name: demo}
spec: {engine: medusa, owner: alice}
YAML
kubectl get stores -w

Operator metrics: http://%s/metrics
Operator log:     %s
Press Ctrl-C to stop everything.
`, cluster.Kubeconfig, kubectl, op.metricsAddr, filepath.Join(cluster.Workdir, "operator.log"))
	if *workdir != "" {
		fmt.Printf("Cluster state is kept in %s\n", *workdir)
	}
	select {
	case <-ctx.Done():
		return <-operatorDone
	case err := <-operatorDone:
		return fmt.Errorf("operator stopped: %w", err)
	}
}

// devLogger writes the operator's JSON log to operator.log in the cluster's
// workdir, keeping the terminal for the instructions.
func devLogger(clusterWorkdir string) *slog.Logger {
	f, err := os.Create(filepath.Join(clusterWorkdir, "operator.log"))
	if err != nil {
		return newLogger()
	}
	return slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
