package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/storefleet/storefleet/internal/devcluster"
	"github.com/storefleet/storefleet/test/testenv"
)

// api calls the Intent API as user.
func api(t testing.TB, method, path, user string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = strings.NewReader(string(data))
	}
	req, _ := http.NewRequest(method, dev.URL+path, r)
	req.Header.Set("X-User-Id", user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// shopper is a browser on the store's host: the ingress on loopback with
// the store's Host header, and a cookie jar for the cart.
type shopper struct {
	host string
	c    *http.Client
}

func newShopper(t testing.TB, host string) *shopper {
	jar, _ := cookiejar.New(nil)
	ingress, _ := url.Parse(dev.IngressURL)
	c := &http.Client{Timeout: 20 * time.Second, Jar: jar, Transport: &http.Transport{
		// http://<store>.localhost:<port>/ is loopback, as browsers treat it.
		Proxy:       nil,
		DialContext: (&hostDialer{addr: "127.0.0.1:" + ingress.Port()}).dial,
	}}
	return &shopper{host: host + ":" + ingress.Port(), c: c}
}

func (s *shopper) url(path string) string { return "http://" + s.host + path }

func (s *shopper) get(path string) (int, string, error) {
	resp, err := s.c.Get(s.url(path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

func kubectl(args ...string) (string, error) {
	out, err := exec.Command(devcluster.DefaultTools().Bin("kubectl"), append([]string{"--kubeconfig", dev.Kubeconfig}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// A store asked for through the Intent API runs for real: every container
// Running on the real node with its probes passing, the storefront lists the
// seeded product with its price, and a shopper's cart is created through the
// store API and kept in the store's database.
func TestRealStoreServesShoppers(t *testing.T) {
	if code, body := api(t, http.MethodPost, "/api/v1/stores", "alice", map[string]any{"name": "shop", "engine": "medusa"}); code != http.StatusCreated && code != http.StatusAccepted {
		t.Fatalf("create store: %d %v", code, body)
	}
	t.Cleanup(func() { api(t, http.MethodDelete, "/api/v1/stores/shop", "alice", nil) })
	start := time.Now()
	var last map[string]any
	testenv.Eventually(t, 15*time.Minute, "store shop Ready", func() (bool, error) {
		_, last = api(t, http.MethodGet, "/api/v1/stores/shop", "alice", nil)
		return last["ready"] == true, nil
	}, func() string {
		pods, _ := kubectl("get", "pods", "-n", "store-shop", "-o", "wide")
		return fmt.Sprintf("store: %v\npods:\n%s", last, pods)
	})
	t.Logf("store Ready %s after the API call", time.Since(start).Round(time.Second))
	if last["runtime"] != "Real" {
		t.Errorf("the API calls a store on the real node %v, want runtime Real", last["runtime"])
	}

	t.Run("every container runs on the real node", func(t *testing.T) {
		pods := storePods(t, "store-shop")
		running := 0
		for _, p := range pods {
			if p.Spec.NodeName != "real-0" {
				t.Errorf("pod %s is on %q, not the real node", p.Name, p.Spec.NodeName)
			}
			if p.Status.Phase == corev1.PodSucceeded { // the release's migration Job
				continue
			}
			for _, c := range p.Status.ContainerStatuses {
				if c.State.Running == nil || !c.Ready {
					t.Errorf("pod %s container %s: ready %v, state %+v", p.Name, c.Name, c.Ready, c.State)
				}
			}
			running++
		}
		// What each container uses at rest, from its own cgroup, against the
		// plan's requests (reconciler/plan.go).
		for _, p := range pods {
			for _, c := range p.Status.ContainerStatuses {
				if c.State.Running == nil {
					continue
				}
				if rss, err := containerRSS("store-shop", p.Name, c.Name); err == nil {
					t.Logf("memory of %s/%s: %d MiB resident", p.Name, c.Name, rss>>20)
				} else {
					t.Errorf("memory of %s/%s: %v", p.Name, c.Name, err)
				}
			}
		}
		// postgres, redis, backend, worker, storefront
		if running < 5 {
			t.Errorf("%d running pods, want the database, Redis, server, worker and storefront", running)
		}
	})

	s := newShopper(t, "shop.localhost")
	var home, cartID string
	t.Run("the storefront lists the seeded product with its price", func(t *testing.T) {
		testenv.Eventually(t, 2*time.Minute, "the storefront's home page", func() (bool, error) {
			code, body, err := s.get("/")
			home = body
			return code == http.StatusOK && strings.Contains(body, "Sample T-Shirt"), err
		}, func() string { return "page: " + trim(home) })
		if !regexp.MustCompile(`€\s?25[.,]00|25[.,]00\s?€`).MatchString(home) {
			t.Fatalf("no price of €25.00 on the home page:\n%s", trim(home))
		}
	})

	t.Run("a shopper adds the product to a cart the backend keeps", func(t *testing.T) {
		link := regexp.MustCompile(`href="(/products/[^"]+)"`).FindStringSubmatch(home)
		if link == nil {
			t.Fatalf("no product link on the home page:\n%s", trim(home))
		}
		code, product, err := s.get(link[1])
		if err != nil || code != http.StatusOK {
			t.Fatalf("product page %s: %d %v", link[1], code, err)
		}
		// The form's variant choice: <select name="variant_id"><option value="variant_…">.
		variant := regexp.MustCompile(`(?s)name="variant_id".*?value="(variant_[0-9A-Za-z]+)"`).FindStringSubmatch(product)
		if variant == nil {
			t.Fatalf("no variant to add on the product page:\n%s", trim(product))
		}
		id := variant[1]
		form := url.Values{"variant_id": {id}, "quantity": {"1"}, "handle": {strings.TrimPrefix(link[1], "/products/")}}
		resp, err := s.c.PostForm(s.url("/cart/items"), form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		code, cart, err := s.get("/cart")
		if err != nil || code != http.StatusOK || !strings.Contains(cart, "Sample T-Shirt") {
			t.Fatalf("cart page: %d %v\n%s", code, err, trim(cart))
		}
		u, _ := url.Parse(s.url("/"))
		cartID = ""
		for _, c := range s.c.Jar.Cookies(u) {
			if c.Name == "sf_cart" {
				cartID = c.Value
			}
		}
		if !strings.HasPrefix(cartID, "cart_") {
			t.Fatalf("no cart cookie after adding to the cart (cookies %v)", s.c.Jar.Cookies(u))
		}
		// The backend's own record of it, in the store's PostgreSQL.
		out, err := kubectl("exec", "-n", "store-shop", "postgres-0", "--", "psql", "-U", "medusa", "-d", "medusa", "-tAc",
			fmt.Sprintf("select count(*) from cart_line_item where cart_id = '%s' and deleted_at is null", cartID))
		if err != nil || out != "1" {
			t.Fatalf("line items of %s in the store's database: %q (%v)", cartID, out, err)
		}
	})

	var adminToken string
	t.Run("the owner's one-time admin link opens the admin", func(t *testing.T) {
		code, inv := api(t, http.MethodPost, "/api/v1/stores/shop/admin-invite", "alice", map[string]any{"email": "alice@example.com"})
		if code != http.StatusOK {
			t.Fatalf("admin invite: %d %v", code, inv)
		}
		link, _ := url.Parse(fmt.Sprint(inv["url"]))
		if link == nil || link.Host != s.host || link.Path != "/app/invite" || link.Query().Get("token") == "" {
			t.Fatalf("invite link %v, want http://%s/app/invite?token=…", inv["url"], s.host)
		}
		if code, other := api(t, http.MethodPost, "/api/v1/stores/shop/admin-invite", "bob", map[string]any{"email": "bob@example.com"}); code != http.StatusNotFound {
			t.Fatalf("bob asking for alice's admin: %d %v, want 404", code, other)
		}
		// The admin UI's own flow: register the e-mail and password, accept
		// the invite with that identity, log in, use the admin API.
		const password = "correct horse battery staple"
		var reg struct{ Token string }
		if code := s.postJSON("/auth/user/emailpass/register", "", map[string]any{"email": "alice@example.com", "password": password}, &reg); code != http.StatusOK || reg.Token == "" {
			t.Fatalf("register the admin identity: %d", code)
		}
		var accepted struct{ User struct{ Email string } }
		if code := s.postJSON("/admin/invites/accept?token="+url.QueryEscape(link.Query().Get("token")), reg.Token,
			map[string]any{"first_name": "Alice", "last_name": "Owner"}, &accepted); code != http.StatusOK || accepted.User.Email != "alice@example.com" {
			t.Fatalf("accept the invite: %d %+v", code, accepted)
		}
		var login struct{ Token string }
		if code := s.postJSON("/auth/user/emailpass", "", map[string]any{"email": "alice@example.com", "password": password}, &login); code != http.StatusOK || login.Token == "" {
			t.Fatalf("log in to the admin: %d", code)
		}
		adminToken = login.Token
		var products struct{ Products []struct{ Title string } }
		if code := s.getJSON("/admin/products?fields=title", login.Token, &products); code != http.StatusOK || len(products.Products) == 0 || products.Products[0].Title != "Sample T-Shirt" {
			t.Fatalf("admin products: %d %+v, want the seeded product", code, products)
		}
		// The link is spent: it opens nothing a second time.
		var again struct{ Message string }
		if code := s.postJSON("/admin/invites/accept?token="+url.QueryEscape(link.Query().Get("token")), reg.Token,
			map[string]any{"first_name": "Mallory"}, &again); code == http.StatusOK {
			t.Errorf("the invite was accepted a second time")
		}
		// Asking again for an existing admin gives a password-reset link.
		if code, inv := api(t, http.MethodPost, "/api/v1/stores/shop/admin-invite", "alice", map[string]any{"email": "alice@example.com"}); code != http.StatusOK || inv["kind"] != "reset" {
			t.Errorf("second admin link for an existing admin: %d %v, want kind reset", code, inv)
		}
		// Nothing of it in the store's record or the operator's and API's output.
		if strings.Contains(dev.Output(), link.Query().Get("token")) {
			t.Errorf("the invite token appeared in storefleet dev's output")
		}
		if out, _ := kubectl("get", "store", "shop", "-o", "yaml"); strings.Contains(out, link.Query().Get("token")) {
			t.Errorf("the invite token appeared in the Store")
		}
	})

	t.Run("an event the server raises is handled by the worker", func(t *testing.T) {
		if adminToken == "" {
			t.Fatal("no admin session: the admin test above failed")
		}
		var created struct{ Product struct{ ID string } }
		code := s.postJSON("/admin/products", adminToken, map[string]any{
			"title": "Worker Mug", "status": "published",
			"options":  []map[string]any{{"title": "Size", "values": []string{"One"}}},
			"variants": []map[string]any{{"title": "One", "options": map[string]string{"Size": "One"}, "prices": []map[string]any{{"currency_code": "eur", "amount": 9}}}},
		}, &created)
		if code != http.StatusOK || created.Product.ID == "" {
			t.Fatalf("create a product through the admin API: %d %+v", code, created)
		}
		// The subscriber logs the process that handled product.created: with
		// Redis it is the worker, never the server that emitted it.
		want := "product.created " + created.Product.ID + " handled by"
		var worker string
		testenv.Eventually(t, time.Minute, "the worker handling product.created", func() (bool, error) {
			worker, _ = kubectl("logs", "-n", "store-shop", "deploy/medusa-worker", "--tail=200")
			return strings.Contains(worker, want) && strings.Contains(worker, "worker mode worker"), nil
		}, func() string { return "worker log:\n" + trim(worker) })
		if server, _ := kubectl("logs", "-n", "store-shop", "deploy/medusa-backend", "--tail=500"); strings.Contains(server, want) {
			t.Errorf("the server handled its own event (Redis event bus not shared?):\n%s", trim(server))
		}
	})

	t.Run("another user does not see the store", func(t *testing.T) {
		if code, _ := api(t, http.MethodGet, "/api/v1/stores/shop", "bob", nil); code != http.StatusNotFound {
			t.Fatalf("bob reading alice's store: %d, want 404", code)
		}
	})

	// cartLines is the shopper's cart in the store's PostgreSQL.
	cartLines := func() (string, error) {
		return kubectl("exec", "-n", "store-shop", "postgres-0", "--", "psql", "-U", "medusa", "-d", "medusa", "-tAc",
			fmt.Sprintf("select count(*) from cart_line_item where cart_id = '%s' and deleted_at is null", cartID))
	}
	waitServing := func(t *testing.T, what string) {
		t.Helper()
		var body string
		testenv.Eventually(t, 5*time.Minute, what, func() (bool, error) {
			_, st := api(t, http.MethodGet, "/api/v1/stores/shop", "alice", nil)
			code, b, err := s.get("/")
			body = b
			return st["ready"] == true && code == http.StatusOK && strings.Contains(b, "Sample T-Shirt"), err
		}, func() string { return "page: " + trim(body) })
	}

	t.Run("data survives deleting the database pod", func(t *testing.T) {
		if out, err := kubectl("delete", "pod", "-n", "store-shop", "postgres-0", "--wait=true"); err != nil {
			t.Fatalf("delete postgres-0: %v %s", err, out)
		}
		waitServing(t, "the store serving again after its database pod was replaced")
		var lines string
		testenv.Eventually(t, time.Minute, "the cart in the new database pod", func() (bool, error) {
			var err error
			lines, err = cartLines()
			return err == nil && lines == "1", nil
		}, func() string { return "line items: " + lines })
	})

	t.Run("data survives restarting the operator", func(t *testing.T) {
		// What a restarted operator must leave alone: the database password,
		// the running database, the Helm release (no reinstall, no upgrade).
		state := func() string {
			pw, _ := kubectl("get", "secret", "-n", "store-shop", "store-credentials", "-o", "jsonpath={.data.postgres-password}")
			uid, _ := kubectl("get", "pod", "-n", "store-shop", "postgres-0", "-o", "jsonpath={.metadata.uid}")
			rel, _ := kubectl("get", "secret", "-n", "store-shop", "-l", "owner=helm", "-o", "jsonpath={range .items[*]}{.metadata.name} {end}")
			return fmt.Sprintf("password %s, database pod %s, Helm releases [%s]", pw, uid, strings.TrimSpace(rel))
		}
		before := state()
		pid, err := dev.CrashOperator()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("operator killed; dev started it again as pid %d", pid)
		// The new process's counters start at zero: any reconcile of the
		// store is its own, after it took the leader lease.
		var reconciles map[string]float64
		testenv.Eventually(t, 2*time.Minute, "the restarted operator reconciling the store", func() (bool, error) {
			m, err := testenv.ScrapeURL(dev.OperatorMetricsURL)
			if err != nil {
				return false, err
			}
			reconciles = m.By("controller_runtime_reconcile_total", "controller", "result")
			return m.Sum("controller_runtime_reconcile_total", map[string]string{"controller": "store"}) >= 1, nil
		}, func() string { return fmt.Sprintf("reconciles: %v", reconciles) })
		if n := reconciles["store error"]; n > 0 {
			t.Errorf("the restarted operator failed %v reconciles of the store", n)
		}
		waitServing(t, "the store serving after the operator restarted")
		if after := state(); after != before {
			t.Errorf("the restarted operator changed the store:\nbefore: %s\nafter:  %s", before, after)
		}
		if lines, err := cartLines(); err != nil || lines != "1" {
			t.Fatalf("the cart after the operator restarted: %q (%v)", lines, err)
		}
	})

	t.Run("a deleted credentials Secret does not lock the store out of its database", func(t *testing.T) {
		before, err := kubectl("get", "secret", "-n", "store-shop", "store-credentials", "-o", "jsonpath={.data.postgres-password}")
		if err != nil || before == "" {
			t.Fatalf("the store's credentials: %v %s", err, before)
		}
		if out, err := kubectl("delete", "secret", "-n", "store-shop", "store-credentials"); err != nil {
			t.Fatalf("delete the credentials: %v %s", err, out)
		}
		var after string
		testenv.Eventually(t, time.Minute, "the credentials restored", func() (bool, error) {
			after, _ = kubectl("get", "secret", "-n", "store-shop", "store-credentials", "-o", "jsonpath={.data.postgres-password}")
			return after != "", nil
		})
		if after != before {
			t.Fatalf("the database password was regenerated: the store's PostgreSQL knows only the old one")
		}
		// A new server process logs in with the restored password.
		if out, err := kubectl("delete", "pod", "-n", "store-shop", "-l", "app.kubernetes.io/component=backend", "--wait=true"); err != nil {
			t.Fatalf("restart the server: %v %s", err, out)
		}
		waitServing(t, "the store serving with its restored credentials")
		if lines, err := cartLines(); err != nil || lines != "1" {
			t.Fatalf("the cart after the restore: %q (%v)", lines, err)
		}
	})

	t.Run("a deleted workload is healed by the operator", func(t *testing.T) {
		if out, err := kubectl("delete", "deployment", "-n", "store-shop", "storefront", "--wait=true"); err != nil {
			t.Fatalf("delete the storefront Deployment: %v %s", err, out)
		}
		var drift any
		testenv.Eventually(t, time.Minute, "the Deployment back and the correction recorded", func() (bool, error) {
			_, st := api(t, http.MethodGet, "/api/v1/stores/shop", "alice", nil)
			drift = st["drift"]
			d, _ := drift.(map[string]any)
			n, _ := d["corrections"].(float64)
			_, err := kubectl("get", "deployment", "-n", "store-shop", "storefront")
			return n >= 1 && err == nil, nil
		}, func() string { return fmt.Sprintf("drift: %v", drift) })
		waitServing(t, "the storefront serving after its Deployment was re-created")
	})

	t.Run("deleting the store leaves nothing behind", func(t *testing.T) {
		out, err := kubectl("get", "pv", "-o", `jsonpath={range .items[?(@.spec.claimRef.namespace=="store-shop")]}{.metadata.name}={.spec.local.path}{"\n"}{end}`)
		if err != nil {
			t.Fatal(err, out)
		}
		volumes := map[string]string{}
		for _, line := range strings.Fields(out) {
			name, dir, _ := strings.Cut(line, "=")
			volumes[name] = dir
		}
		if len(volumes) < 2 {
			t.Fatalf("volumes of the store: %v, want the database's and the uploads'", volumes)
		}
		if code, body := api(t, http.MethodDelete, "/api/v1/stores/shop", "alice", nil); code != http.StatusAccepted {
			t.Fatalf("delete: %d %v", code, body)
		}
		testenv.Eventually(t, 3*time.Minute, "the store, its namespace, volumes and data directories gone", func() (bool, error) {
			if code, _ := api(t, http.MethodGet, "/api/v1/stores/shop", "alice", nil); code != http.StatusNotFound {
				return false, nil
			}
			if _, err := kubectl("get", "namespace", "store-shop"); err == nil {
				return false, nil
			}
			for name, dir := range volumes {
				if _, err := kubectl("get", "pv", name); err == nil {
					return false, nil
				}
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					return false, nil
				}
			}
			return true, nil
		}, func() string {
			left, _ := kubectl("get", "pv,namespace")
			return fmt.Sprintf("volumes %v\n%s", volumes, left)
		})
	})
}

// postJSON posts body as JSON (with a bearer token when given) and decodes
// the answer into out.
func (s *shopper) postJSON(path, bearer string, body, out any) int {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.url(path), strings.NewReader(string(data)))
	req.Header.Set("Content-Type", "application/json")
	return s.do(req, bearer, out)
}

func (s *shopper) getJSON(path, bearer string, out any) int {
	req, _ := http.NewRequest(http.MethodGet, s.url(path), nil)
	return s.do(req, bearer, out)
}

func (s *shopper) do(req *http.Request, bearer string, out any) int {
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(out)
	return resp.StatusCode
}

// storePods lists a store namespace's pods as kubectl sees them.
func storePods(t testing.TB, ns string) []corev1.Pod {
	t.Helper()
	out, err := kubectl("get", "pods", "-n", ns, "-o", "json")
	if err != nil {
		t.Fatal(err, out)
	}
	var pods corev1.PodList
	if err := json.Unmarshal([]byte(out), &pods); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// containerRSS is a container's resident memory from its own cgroup:
// memory.stat's anon (cgroup v2) or total_rss (v1, as on this machine).
func containerRSS(ns, pod, container string) (int64, error) {
	out, err := kubectl("exec", "-n", ns, pod, "-c", container, "--", "sh", "-c",
		`if [ -f /sys/fs/cgroup/memory.stat ]; then grep '^anon ' /sys/fs/cgroup/memory.stat; else grep '^total_rss ' /sys/fs/cgroup/memory/memory.stat; fi`)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	var key string
	var v int64
	if _, err := fmt.Sscan(out, &key, &v); err != nil {
		return 0, fmt.Errorf("memory.stat line %q: %v", out, err)
	}
	return v, nil
}

func trim(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}

// hostDialer sends every connection to the ingress on loopback, whatever
// the name: *.localhost is loopback for browsers and curl, not for Go.
type hostDialer struct{ addr string }

func (d *hostDialer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var nd net.Dialer
	return nd.DialContext(ctx, network, d.addr)
}
