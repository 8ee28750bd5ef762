package deploy_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/metrics"
)

// The dashboards and alert rule files the stack provisions.
var (
	wantDashboards = []string{"vigil-http", "vigil-incidents", "vigil-watches", "vigil-nodes", "vigil-temporal-worker"}
	wantAlerts     = []string{
		"VigilWorkerDown", "VigilAPIDown", "VigilOutboxBacklog", "VigilOutboxStale", "VigilWatchPollLag",
		"VigilEscalationLate", "VigilNodeMailFailures",
	}
)

// dashboard is the part of a Grafana dashboard JSON the tests read.
type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Tags   []string
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		GridPos struct {
			H, W, X, Y int
		} `json:"gridPos"`
		Targets []struct {
			Expr       string `json:"expr"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

// dashboards reads every dashboard under deploy/grafana/dashboards by file
// name.
func dashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "grafana", "dashboards", "*.json"))
	require.NoError(t, err)
	out := map[string]dashboard{}
	for _, f := range files {
		var d dashboard
		require.NoError(t, json.Unmarshal(readFile(t, "deploy/grafana/dashboards/"+filepath.Base(f)), &d), f)
		out[filepath.Base(f)] = d
	}
	return out
}

// ruleFiles reads every rule file under deploy/prometheus/rules.
func ruleFiles(t *testing.T) map[string]ruleFile {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "prometheus", "rules", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no rule files")
	out := map[string]ruleFile{}
	for _, f := range files {
		var rf ruleFile
		readYAML(t, "deploy/prometheus/rules/"+filepath.Base(f), &rf)
		out[filepath.Base(f)] = rf
	}
	return out
}

// observabilityQueries is every expression of the dashboards and the rules.
func observabilityQueries(t *testing.T) []query {
	t.Helper()
	var out []query
	for file, d := range dashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				out = append(out, query{file + ": " + p.Title, tg.Expr})
			}
		}
	}
	for file, rf := range ruleFiles(t) {
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				out = append(out, query{file + ": " + r.Alert, r.Expr})
			}
		}
	}
	return out
}

func TestGrafanaDashboards(t *testing.T) {
	all := dashboards(t)
	uids := map[string]string{}
	for file, d := range all {
		t.Run(file, func(t *testing.T) {
			require.NotEmpty(t, d.UID)
			require.Equal(t, strings.TrimSuffix(file, ".json"), d.UID, "the file is named after the uid")
			require.NotContains(t, uids, d.UID, "uid used twice")
			uids[d.UID] = file
			require.NotEmpty(t, d.Title)
			require.Contains(t, d.Tags, "vigil")
			require.NotEmpty(t, d.Panels)
			ids := map[int]bool{}
			for _, p := range d.Panels {
				require.NotEmpty(t, p.Title)
				require.False(t, ids[p.ID], "panel id %d used twice", p.ID)
				ids[p.ID] = true
				require.Equal(t, "prometheus", p.Datasource.UID, "panel %q", p.Title)
				require.Positive(t, p.GridPos.W, "panel %q", p.Title)
				require.Positive(t, p.GridPos.H, "panel %q", p.Title)
				require.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "panel %q", p.Title)
				require.NotEmpty(t, p.Targets, "panel %q", p.Title)
				for _, tg := range p.Targets {
					require.NotEmpty(t, strings.TrimSpace(tg.Expr), "panel %q", p.Title)
					require.Equal(t, "prometheus", tg.Datasource.UID, "panel %q", p.Title)
					require.NoError(t, balanced(tg.Expr), "panel %q: %s", p.Title, tg.Expr)
				}
			}
		})
	}
	t.Run("every dashboard is there", func(t *testing.T) {
		require.ElementsMatch(t, wantDashboards, slices.Collect(maps.Keys(uids)))
	})
}

func TestPrometheusRules(t *testing.T) {
	var names []string
	for file, rf := range ruleFiles(t) {
		require.NotEmpty(t, rf.Groups, file)
		for _, g := range rf.Groups {
			require.NotEmpty(t, g.Name, file)
			for _, r := range g.Rules {
				t.Run(r.Alert, func(t *testing.T) {
					require.NotEmpty(t, r.Alert, "%s: only alerting rules", file)
					require.NotContains(t, names, r.Alert, "alert name used twice")
					names = append(names, r.Alert)
					require.NotEmpty(t, strings.TrimSpace(r.Expr))
					require.NoError(t, balanced(r.Expr), r.Expr)
					d, err := time.ParseDuration(r.For)
					require.NoError(t, err, "for: %q", r.For)
					require.GreaterOrEqual(t, d, time.Minute, "for: at least a minute, so one bad scrape does not fire")
					require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"])
					require.NotEmpty(t, r.Annotations["summary"])
				})
			}
		}
	}
	t.Run("every alert is there", func(t *testing.T) {
		for _, a := range wantAlerts {
			require.Contains(t, names, a)
		}
	})
	t.Run("loaded and mounted", func(t *testing.T) {
		var cfg struct {
			RuleFiles []string `yaml:"rule_files"`
		}
		readYAML(t, "deploy/prometheus/prometheus.yml", &cfg)
		require.Equal(t, []string{"/etc/prometheus/rules/*.yml"}, cfg.RuleFiles)
		root, err := filepath.Abs(repoRoot)
		require.NoError(t, err)
		var mounted bool
		for _, v := range service(t, loadProject(t), "prometheus").Volumes {
			if v.Type == types.VolumeTypeBind && v.Target == "/etc/prometheus/rules" {
				mounted = true
				require.Equal(t, filepath.Join(root, "deploy/prometheus/rules"), v.Source)
			}
		}
		require.True(t, mounted, "the rules directory is mounted where rule_files points")
	})
}

// TestObservabilityJobsAreScraped checks every job an expression names is a
// job prometheus.yml scrapes.
func TestObservabilityJobsAreScraped(t *testing.T) {
	var cfg struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &cfg)
	var jobs []string
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	job := regexp.MustCompile(`job(=~|=)"([^"]*)"`)
	for _, q := range observabilityQueries(t) {
		for _, m := range job.FindAllStringSubmatch(q.expr, -1) {
			for _, j := range strings.Split(m[2], "|") {
				require.Contains(t, jobs, j, "%s: %s", q.where, q.expr)
			}
		}
	}
}

// TestObservabilityVigilMetricsExist checks every vigil_* metric (and every
// label value an equality matcher asks for) of the dashboards and rules is
// one Vigil's registry exposes, before anything happened. The temporal_*
// metrics appear only once the SDK records them: the integration test
// checks those against a real worker and API.
func TestObservabilityVigilMetricsExist(t *testing.T) {
	reg := metrics.New()
	reg.Incidents()
	reg.Watches()
	reg.Nodes()
	reg.Access()
	require.NoError(t, reg.RegisterState(metrics.StateSources{
		Outbox: func(context.Context) ([]metrics.OutboxBacklog, error) { return nil, nil },
		NodeStatuses: func(context.Context) (map[string]int, error) {
			return map[string]int{"OFFLINE": 0, "NO IMPORTS": 0, "GAP IN MONITORING": 0, "ONLINE": 0}, nil
		},
	}))
	reg.HTTPDuration.WithLabelValues("GET", "/v1/incidents", "500")
	w := httptest.NewRecorder()
	reg.Handler().ServeHTTP(w, httptest.NewRequestWithContext(context.Background(), "GET", "/metrics", nil))
	exposed := parseExposition(t, w.Body.String())
	checkQueriesExposed(t, observabilityQueries(t), exposed, "vigil_")
}

// metricRef is one metric an expression selects, with its equality
// matchers.
type metricRef struct {
	name   string
	equals map[string]string
}

var (
	selectorRE = regexp.MustCompile(`\b((?:vigil|temporal)_[a-zA-Z0-9_]+)(\{[^}]*\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	sampleRE   = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s`)
	labelRE    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// metricRefs returns the vigil_* and temporal_* metrics expr selects.
func metricRefs(expr string) []metricRef {
	var out []metricRef
	for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
		ref := metricRef{name: m[1], equals: map[string]string{}}
		for _, mm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			if mm[2] == "=" {
				ref.equals[mm[1]] = mm[3]
			}
		}
		out = append(out, ref)
	}
	return out
}

// parseExposition returns each sample name of a text exposition with the
// label sets of its samples.
func parseExposition(t *testing.T, body string) map[string][]map[string]string {
	t.Helper()
	out := map[string][]map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		require.NotNil(t, m, "unparsable exposition line %q", line)
		labels := map[string]string{}
		for _, l := range labelRE.FindAllStringSubmatch(m[3], -1) {
			labels[l[1]] = l[2]
		}
		out[m[1]] = append(out[m[1]], labels)
	}
	return out
}

// checkQueriesExposed requires every metric with prefix that the queries
// select to be exposed, with a series matching its equality matchers (job
// and instance, which Prometheus adds at scrape time, left out).
func checkQueriesExposed(t *testing.T, queries []query, exposed map[string][]map[string]string, prefix string) {
	t.Helper()
	var checked int
	for _, q := range queries {
		for _, ref := range metricRefs(q.expr) {
			if !strings.HasPrefix(ref.name, prefix) {
				continue
			}
			checked++
			series, ok := exposed[ref.name]
			if !ok {
				t.Errorf("%s: %s is not exposed (%s)", q.where, ref.name, q.expr)
				continue
			}
			if !slices.ContainsFunc(series, func(labels map[string]string) bool {
				for k, v := range ref.equals {
					if k != "job" && k != "instance" && labels[k] != v {
						return false
					}
				}
				return true
			}) {
				t.Errorf("%s: no series of %s has %v (%s)", q.where, ref.name, ref.equals, q.expr)
			}
		}
	}
	require.Positive(t, checked, "no %s metric checked", prefix)
}

// balanced reports unbalanced brackets or quotes in a PromQL expression.
func balanced(expr string) error {
	var stack []rune
	in := false
	for i, r := range expr {
		switch {
		case in:
			if r == '"' && (i == 0 || expr[i-1] != '\\') {
				in = false
			}
		case r == '"':
			in = true
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case r == ')' || r == ']' || r == '}':
			open := map[rune]rune{')': '(', ']': '[', '}': '{'}[r]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return &exprError{expr}
			}
			stack = stack[:len(stack)-1]
		}
	}
	if in || len(stack) > 0 {
		return &exprError{expr}
	}
	return nil
}

type exprError struct{ expr string }

func (e *exprError) Error() string { return "unbalanced brackets or quotes in " + e.expr }
