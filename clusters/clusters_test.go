package clusters

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestValuesAreTheStoreValuesSection(t *testing.T) {
	for env, domain := range map[string]string{"local": "localtest.me", "prod": "stores.example.com"} {
		data, err := Values(env)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Store struct {
				Domain string `json:"domain"`
			} `json:"store"`
			Environment string `json:"environment"`
		}
		if err := yaml.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		if v.Store.Domain != domain || v.Environment != "" {
			t.Errorf("%s: store values %s", env, data)
		}
	}
	if _, err := Values("staging"); err == nil || !strings.Contains(err.Error(), `unknown environment "staging"`) {
		t.Errorf("unknown environment: %v", err)
	}
}
