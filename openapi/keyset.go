package openapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// issuerKeys is the issuer's key set (JWKS) for go-oidc's verifier, fetched
// again at most once per minRefetch. go-oidc's own RemoteKeySet fetches the
// key set for every token no cached key verifies, so anyone could make the
// API fetch the issuer's keys once per request with made-up tokens (a
// made-up key id, or a known one with a bad signature). Parsing and the
// signature check are go-jose's; this type only decides when to fetch.
type issuerKeys struct {
	url        string
	client     *http.Client
	algs       []jose.SignatureAlgorithm
	minRefetch time.Duration

	mu sync.Mutex
	// keys are those of the last fetch that succeeded.
	keys []jose.JSONWebKey
	// fetched is when the last fetch ended, and fetchErr how it failed.
	fetched  time.Time
	fetchErr error
	// fetching is closed when the fetch under way ends (nil: none is).
	fetching chan struct{}
}

func newIssuerKeys(url string, client *http.Client, algs []string, minRefetch time.Duration) *issuerKeys {
	k := &issuerKeys{url: url, client: client, minRefetch: minRefetch}
	for _, a := range algs {
		k.algs = append(k.algs, jose.SignatureAlgorithm(a))
	}
	return k
}

// VerifySignature implements oidc.KeySet: the token's payload when a key of
// the issuer verifies its signature.
func (k *issuerKeys) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("a token must carry exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	keys, err = k.refetch(ctx)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errors.New("no key of the issuer verifies the token's signature")
}

// refetch fetches the key set unless a fetch ended less than minRefetch
// ago (then it answers with that fetch's keys or error); callers arriving
// during a fetch wait for it, or for their context.
func (k *issuerKeys) refetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	if k.fetching == nil {
		if !k.fetched.IsZero() && time.Since(k.fetched) < k.minRefetch {
			keys, err := k.keys, k.fetchErr
			k.mu.Unlock()
			if err != nil {
				return nil, fmt.Errorf("the issuer's key set could not be fetched (%w); next try in at most %s", err, k.minRefetch)
			}
			return keys, nil
		}
		done := make(chan struct{})
		k.fetching = done
		// The fetch is shared, so no caller's context ends it; the
		// client's timeout does.
		go func() {
			keys, err := k.fetch(context.WithoutCancel(ctx))
			k.mu.Lock()
			if err == nil {
				k.keys = keys
			}
			k.fetched, k.fetchErr, k.fetching = time.Now(), err, nil
			k.mu.Unlock()
			close(done)
		}()
	}
	done := k.fetching
	k.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fetchErr != nil {
		return nil, fmt.Errorf("the issuer's key set could not be fetched: %w", k.fetchErr)
	}
	return k.keys, nil
}

func (k *issuerKeys) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", k.url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("%s is not a JSON web key set: %w", k.url, err)
	}
	return set.Keys, nil
}

// verifyWith checks the signature with the signing keys that match kid (all
// of them when the token names none).
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for _, key := range keys {
		if (kid != "" && key.KeyID != kid) || (key.Use != "" && key.Use != "sig") {
			continue
		}
		if payload, err := jws.Verify(key); err == nil {
			return payload, true
		}
	}
	return nil, false
}
