package v1alpha1

import (
	"fmt"
	"slices"
	"strings"
)

// DNS limits of a store's host <name>.<domain> (RFC 1035).
const (
	MaxLabelLength = 63
	MaxHostLength  = 253
)

// CheckHost reports why a store named name may not have its hosts under
// domain: the domain is not on the platform's allow-list (so a user cannot
// claim another service's host on the shared ingress controller, or a
// certificate for it), or a label of <name>.<domain> breaks a DNS limit.
// An empty domain means the platform's default and is not checked here.
// The Intent API and the operator both call it, so a Store applied with
// kubectl or from Git meets the same rule as one created through the API.
func CheckHost(name, domain string, allowed []string) error {
	if domain == "" {
		return nil
	}
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if !slices.Contains(allowed, d) {
		return fmt.Errorf("domain %q is not one of the platform's domains (%s)", domain, strings.Join(allowed, ", "))
	}
	return CheckHostLength(name, d)
}

// CheckHostLength reports a host <name>.<domain> whose labels or length
// exceed what DNS allows.
func CheckHostLength(name, domain string) error {
	host := name + "." + domain
	if len(host) > MaxHostLength {
		return fmt.Errorf("host %q is %d characters long; DNS allows %d", host, len(host), MaxHostLength)
	}
	for _, l := range strings.Split(host, ".") {
		if len(l) > MaxLabelLength {
			return fmt.Errorf("label %q of host %q is %d characters long; DNS allows %d", l, host, len(l), MaxLabelLength)
		}
	}
	return nil
}

// ParseDomains splits a comma-separated allow-list into lower-case domains
// without trailing dots; blanks are dropped.
func ParseDomains(list string) []string {
	var out []string
	for _, d := range strings.Split(list, ",") {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}
