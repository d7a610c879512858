package charts_test

import (
	"strings"
	"testing"
)

// TestPlatformChartPassesAbuseLimits: the plans each group may pick reach
// the API (none given: every plan for everyone, as before); a plan that does
// not exist is refused at install; the local cluster, one person's, does not
// throttle their scripts, while prod keeps the API's default.
func TestPlatformChartPassesAbuseLimits(t *testing.T) {
	ch := loadPlatformChart(t)
	withPlans := minimalValues()
	withPlans["api"].(map[string]any)["plansByGroup"] = map[string]any{"*": []any{"small"}, "pro": []any{"small", "medium"}}
	files, err := render(t, ch, "storefleet", "storefleet-system", withPlans)
	if err != nil {
		t.Fatal(err)
	}
	if api := files["storefleet/templates/api.yaml"]; !strings.Contains(api, `- "--plans-by-group=*=small;pro=small,medium"`+"\n") {
		t.Errorf("the API lacks the plans by group:\n%s", api)
	}
	files, err = render(t, ch, "storefleet", "storefleet-system", minimalValues())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(files["storefleet/templates/api.yaml"], "--plans-by-group") {
		t.Error("the default values restrict plans")
	}

	bad := minimalValues()
	bad["api"].(map[string]any)["plansByGroup"] = map[string]any{"pro": []any{"huge"}}
	if _, err := render(t, ch, "storefleet", "storefleet-system", bad); err == nil || !strings.Contains(err.Error(), "/api/plansByGroup/pro/0") {
		t.Errorf("a plan that does not exist: error %v, want the schema naming /api/plansByGroup/pro/0", err)
	}

	for env, want := range map[string]string{"local": "--rate-limit=600", "prod": "--rate-limit=10"} {
		files, _ := renderEnv(t, env, "storefleet-system")
		if !strings.Contains(files["storefleet/templates/api.yaml"], want+"\n") {
			t.Errorf("%s: the API lacks %s", env, want)
		}
	}
}
