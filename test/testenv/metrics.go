package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/storefleet/storefleet/internal/devcluster"
)

// Sample is one line of the Prometheus text format: a metric, its labels
// and value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Samples is a scrape of a /metrics endpoint.
type Samples []Sample

// ParseMetrics reads the Prometheus text exposition format (comments and
// blank lines skipped; label values holding '}' or '", ' are not expected
// in the metrics the benchmarks read).
func ParseMetrics(text string) Samples {
	var out Samples
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		s := Sample{Labels: map[string]string{}}
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			s.Name, rest = line[:i], line[j+1:]
			for _, pair := range strings.Split(line[i+1:j], "\",") {
				k, v, ok := strings.Cut(pair, "=\"")
				if ok {
					s.Labels[strings.TrimPrefix(k, ",")] = strings.TrimSuffix(v, "\"")
				}
			}
		} else {
			s.Name, rest, _ = strings.Cut(line, " ")
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			continue
		}
		s.Value = v
		out = append(out, s)
	}
	return out
}

// Sum adds up the samples of name whose labels match every key=value of
// match.
func (ss Samples) Sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range ss {
		if s.Name == name && matches(s.Labels, match) {
			total += s.Value
		}
	}
	return total
}

// By adds up the samples of name by the values of the given labels
// (joined by " "), e.g. By("apiserver_request_total", "verb", "resource").
func (ss Samples) By(name string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		if s.Name != name {
			continue
		}
		key := make([]string, len(labels))
		for i, l := range labels {
			key[i] = s.Labels[l]
		}
		out[strings.Join(key, " ")] += s.Value
	}
	return out
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Delta is after minus before, key by key, keeping only what grew.
func Delta(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// Top formats the n largest entries of m as "key=value, ...".
func Top(m map[string]float64, n int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	if len(keys) > n {
		keys = keys[:n]
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.0f", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// ScrapeURL reads a /metrics endpoint over HTTP (the operator's).
func ScrapeURL(url string) (Samples, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return ParseMetrics(string(data)), nil
}

// ScrapeAPIServer reads the API server's own /metrics with the admin
// client.
func ScrapeAPIServer(c *devcluster.Cluster) (Samples, error) {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	data, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		return nil, err
	}
	return ParseMetrics(string(data)), nil
}
