package v1alpha1_test

import (
	"strings"
	"testing"

	"github.com/storefleet/storefleet/api/v1alpha1"
)

func TestCheckHost(t *testing.T) {
	allowed := []string{"localtest.me", "shops.example.com"}
	for _, tc := range []struct {
		name, store, domain, wantErr string
	}{
		{name: "default domain", store: "acme", domain: ""},
		{name: "allowed", store: "acme", domain: "shops.example.com"},
		{name: "allowed with a trailing dot", store: "acme", domain: "localtest.me."},
		{name: "foreign domain", store: "grafana", domain: "example.com", wantErr: `domain "example.com" is not one of the platform's domains (localtest.me, shops.example.com)`},
		{name: "subdomain of an allowed one", store: "acme", domain: "evil.localtest.me", wantErr: "is not one of the platform's domains"},
		{name: "parent of an allowed one", store: "acme", domain: "example.com", wantErr: "is not one of the platform's domains"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v1alpha1.CheckHost(tc.store, tc.domain, allowed)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("CheckHost(%q, %q) = %v, want %q", tc.store, tc.domain, err, tc.wantErr)
			}
		})
	}
}

func TestCheckHostLength(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name, store, domain, wantErr string
	}{
		{name: "short", store: "acme", domain: "localtest.me"},
		{name: "63 characters", store: strings.Repeat("a", 63), domain: "localtest.me"},
		{name: "domain label over 63", store: "acme", domain: long + ".example.com", wantErr: "is 64 characters long; DNS allows 63"},
		{name: "host over 253", store: "acme", domain: strings.Repeat(strings.Repeat("b", 60)+".", 5) + "com", wantErr: "DNS allows 253"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v1alpha1.CheckHostLength(tc.store, tc.domain)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("CheckHostLength(%q, %q) = %v, want %q", tc.store, tc.domain, err, tc.wantErr)
			}
		})
	}
}

func TestParseDomains(t *testing.T) {
	got := v1alpha1.ParseDomains(" Shops.Example.com., localtest.me,,localtest.me ")
	if strings.Join(got, ",") != "shops.example.com,localtest.me" {
		t.Errorf("ParseDomains = %v", got)
	}
}
