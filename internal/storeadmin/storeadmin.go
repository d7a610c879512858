// Package storeadmin asks a store's running Medusa backend for its owner's
// one-time admin link, for the Intent API (openapi.AdminInviter): it reads
// the store's platform token (v1alpha1.AdminInviteSecret) and calls the
// backend's POST /storefleet/admin-invite at its Service's cluster address.
// The ingress does not route /storefleet; the store namespace's network
// policy admits the platform's API pods (and, on the local real node, the
// host) to the backend.
package storeadmin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/api/v1alpha1"
	"github.com/storefleet/storefleet/openapi"
)

// +kubebuilder:rbac:groups="",resources=secrets,resourceNames=store-admin-invite,verbs=get
// +kubebuilder:rbac:groups="",resources=services,resourceNames=medusa-backend,verbs=get

// backendService is the chart's Service of the Medusa server.
const (
	backendService = "medusa-backend"
	backendPort    = 9000
)

// Inviter reads the token and the Service live (the API caches no Secret)
// and calls the backend. A zero HTTP uses a client without proxy: the
// backend is a cluster address.
type Inviter struct {
	Client client.Client
	HTTP   *http.Client
}

var _ openapi.AdminInviter = Inviter{}

// Invite returns the owner's link; openapi.ErrStoreUnreachable (wrapped)
// when the backend cannot answer now.
func (i Inviter) Invite(ctx context.Context, st *v1alpha1.Store, email, baseURL string) (*openapi.AdminInvite, error) {
	ns := v1alpha1.NamespaceFor(st.Name)
	var secret corev1.Secret
	if err := i.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.AdminInviteSecret}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: secret %s/%s is not there yet (the operator creates it)", openapi.ErrStoreUnreachable, ns, v1alpha1.AdminInviteSecret)
		}
		return nil, err
	}
	token := secret.Data[v1alpha1.AdminInviteTokenKey]
	var svc corev1.Service
	if err := i.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: backendService}, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: service %s/%s not found", openapi.ErrStoreUnreachable, ns, backendService)
		}
		return nil, err
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil, fmt.Errorf("%w: service %s/%s has no cluster IP", openapi.ErrStoreUnreachable, ns, backendService)
	}
	body, _ := json.Marshal(map[string]string{"email": email, "base_url": baseURL})
	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(backendPort)) + "/storefleet/admin-invite"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+string(token))
	resp, err := i.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", openapi.ErrStoreUnreachable, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var msg struct{ Message string }
		_ = json.Unmarshal(data, &msg)
		err := fmt.Errorf("store %s's backend answered %d: %s", st.Name, resp.StatusCode, msg.Message)
		if resp.StatusCode >= 500 {
			err = fmt.Errorf("%w: %w", openapi.ErrStoreUnreachable, err)
		}
		return nil, err
	}
	var out struct {
		Kind      string    `json:"kind"`
		Email     string    `json:"email"`
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.URL == "" {
		return nil, fmt.Errorf("store %s's backend sent no invite link (%d bytes)", st.Name, len(data))
	}
	return &openapi.AdminInvite{Kind: out.Kind, Email: out.Email, URL: out.URL, ExpiresAt: out.ExpiresAt}, nil
}

func (i Inviter) httpClient() *http.Client {
	if i.HTTP != nil {
		return i.HTTP
	}
	// No proxy: the environment's HTTP proxy cannot reach cluster addresses.
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil}}
}
