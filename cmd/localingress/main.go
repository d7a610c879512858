// Command localingress is the local cluster's ingress controller
// (internal/localingress), run as a pod on the real node: it serves the
// Ingresses of one class on --listen and answers /ping on --health-listen
// once its routes reflect the cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/storefleet/storefleet/internal/localingress"
)

func main() {
	class := flag.String("class", "", "the IngressClass whose Ingresses are served")
	listen := flag.String("listen", ":8000", "address of the proxy")
	health := flag.String("health-listen", ":8080", "address of /ping (200 once the routes reflect the cluster)")
	statusIP := flag.String("status-ip", "", "address published in the served Ingresses' status")
	flag.Parse()
	if err := run(*class, *listen, *health, *statusIP); err != nil {
		fmt.Fprintf(os.Stderr, "localingress: %v\n", err)
		os.Exit(1)
	}
}

func run(class, listen, health, statusIP string) error {
	cfg, err := config.GetConfig()
	if err != nil {
		return err
	}
	c, err := localingress.New(cfg, localingress.Options{Class: class, StatusIP: statusIP, Log: os.Stdout})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ping := http.NewServeMux()
	ping.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) {
		if !c.Ready() {
			http.Error(w, "routes not built yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "OK")
	})
	servers := []*http.Server{
		{Addr: listen, Handler: c, ReadHeaderTimeout: 30 * time.Second},
		{Addr: health, Handler: ping, ReadHeaderTimeout: 5 * time.Second},
	}
	errs := make(chan error, len(servers)+1)
	for _, s := range servers {
		go func() {
			if err := s.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	go func() { errs <- c.Run(ctx) }()
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdown)
	}
	return err
}
