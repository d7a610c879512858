// Package events_test runs the event flow end to end: the operator (real
// binary) publishing to a real redis-server, and the Intent API streaming
// Server-Sent Events with and without Redis.
package events_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/internal/eventstream"
	"github.com/storefleet/storefleet/openapi"
	"github.com/storefleet/storefleet/test/testenv"
)

var (
	cluster      *devcluster.Cluster
	workdir      string
	redis        *devcluster.Redis
	operatorLog  string
	metricsURL   string
	withRedis    *httptest.Server // API reading Redis
	withoutRedis *httptest.Server // API following the cluster watch
	stores       *openapi.StoreCache
)

func TestMain(m *testing.M) { testenv.ExitMain(run(m)) }

func run(m *testing.M) (int, error) {
	var err error
	var binary string
	if workdir, binary, err = testenv.TestBinary("../..", "storefleet-events-test-"); err != nil {
		return 0, err
	}
	if redis, err = devcluster.StartRedis(0); err != nil {
		return 0, err
	}
	defer func() { redis.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	defer scancel()
	if cluster, err = devcluster.Start(sctx, devcluster.Options{}); err != nil {
		return 0, err
	}
	defer cluster.Stop()
	if err := cluster.Client.Create(sctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "storefleet-system"}}); err != nil {
		return 0, err
	}
	port, err := devcluster.FreePort()
	if err != nil {
		return 0, err
	}
	metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	op, err := testenv.StartOperator(binary, cluster, workdir, "--redis-url", redis.URL(),
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port), "--workers", "8")
	if err != nil {
		return 0, err
	}
	defer op.Stop()
	operatorLog = op.Log

	if stores, err = openapi.NewStoreCache(cluster.Config, devcluster.Scheme()); err != nil {
		return 0, err
	}
	if err := stores.Start(ctx); err != nil {
		return 0, err
	}
	watch, err := openapi.NewWatchFeed(ctx, stores)
	if err != nil {
		return 0, err
	}
	live, err := eventstream.NewFeed(redis.URL(), silentLog())
	if err != nil {
		return 0, err
	}
	go live.Start(ctx)
	withRedis = httptest.NewServer(newAPI(live, watch).Handler())
	defer withRedis.Close()
	withoutRedis = httptest.NewServer(newAPI(nil, watch).Handler())
	defer withoutRedis.Close()

	code := m.Run()
	if code != 0 {
		fmt.Printf("logs kept in %s\n", workdir)
	} else {
		os.RemoveAll(workdir)
	}
	return code, nil
}

func newAPI(live, watch openapi.Feed) *openapi.Server {
	trusted, _ := openapi.ParseTrustedProxies("127.0.0.1/32")
	return openapi.New(openapi.Config{
		Auth: openapi.HeaderAuth{Trusted: trusted}, Trusted: trusted, MaxStoresPerUser: 100,
		MaxStreamsPerUser: 500, MaxStreams: 1000, Log: silentLog(),
	}, openapi.Deps{
		Stores: stores, Intents: openapi.ClusterIntents{Client: cluster.Client},
		Lock:   &openapi.LeaseLock{Client: cluster.Client, Namespace: "storefleet-system", Holder: "events-test"},
		Client: cluster.Client, Ready: func(context.Context) error { return nil },
		Live: live, Watch: watch,
	})
}

// message is one Server-Sent Event.
type message struct {
	id, event, data string
}

// stream is an open SSE connection.
type stream struct {
	resp     *http.Response
	messages chan message
}

func openStream(t testing.TB, base, path, user, lastEventID string) (*stream, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set(openapi.UserHeader, user)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, resp.StatusCode
	}
	s := &stream{resp: resp, messages: make(chan message, 1000)}
	go func() {
		defer close(s.messages)
		sc := bufio.NewScanner(resp.Body)
		var m message
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" {
					s.messages <- m
				}
				m = message{}
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				m.data = line[6:]
			}
		}
	}()
	return s, http.StatusOK
}

func (s *stream) close() { s.resp.Body.Close() }

// next returns the next message within timeout.
func (s *stream) next(t testing.TB, timeout time.Duration) (message, bool) {
	t.Helper()
	select {
	case m, ok := <-s.messages:
		return m, ok
	case <-time.After(timeout):
		return message{}, false
	}
}
