package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"gopkg.in/yaml.v3"

	"github.com/vigil-health/vigil/workflows"
)

// repoRoot is the repository root, relative to this package's directory (the
// working directory of `go test ./deploy/`).
const repoRoot = ".."

// longRunning are the services that stay up and must report health.
var longRunning = []string{
	"postgres",
	"temporal",
	"temporal-ui",
	"vigil-api",
	"vigil-worker",
	"prometheus",
	"grafana",
}

// oneShot are the jobs that run to completion; dependants wait for them with
// service_completed_successfully.
var oneShot = []string{
	"temporal-schema",
	"temporal-namespace",
	"vigil-migrate",
}

// loadProject loads ../docker-compose.yml the way `docker compose` would, with
// an empty environment so every ${VAR:-default} takes its default.
func loadProject(t *testing.T) *types.Project {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	details := types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: types.Mapping{},
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("vigil", true)
		o.SkipResolveEnvironment = true
	})
	require.NoError(t, err, "docker-compose.yml does not load")
	return project
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	svc, err := p.GetService(name)
	require.NoError(t, err, "service %q", name)
	return svc
}

// env returns the value of an environment variable of svc ("" when unset).
func env(svc types.ServiceConfig, name string) string {
	v := svc.Environment[name]
	if v == nil {
		return ""
	}
	return *v
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	require.NoError(t, err)
	return b
}

func readYAML(t *testing.T, rel string, into any) {
	t.Helper()
	require.NoError(t, yaml.Unmarshal(readFile(t, rel), into), "%s is not valid YAML", rel)
}

// TestComposeServices checks the stack has exactly the expected services.
func TestComposeServices(t *testing.T) {
	p := loadProject(t)
	want := append(append([]string{}, longRunning...), oneShot...)
	require.ElementsMatch(t, want, p.ServiceNames())
	require.Empty(t, p.DisabledServices, "no service may hide behind a profile")
}

// TestComposeHealthchecks checks every long-running service reports health
// with a probe of what it serves.
func TestComposeHealthchecks(t *testing.T) {
	p := loadProject(t)
	tests := []struct {
		service string
		probe   string // a fragment the healthcheck command must contain
	}{
		{"postgres", "pg_isready"},
		{"temporal", "7243/api/v1/system-info"},
		{"temporal-ui", "http://127.0.0.1:8080/healthz"},
		{"vigil-api", "http://127.0.0.1:8080/readyz"},
		{"vigil-worker", "http://127.0.0.1:8081/healthz"},
		{"prometheus", "http://127.0.0.1:9090/-/healthy"},
		{"grafana", "http://127.0.0.1:3000/api/health"},
	}
	covered := make([]string, 0, len(tests))
	for _, tt := range tests {
		covered = append(covered, tt.service)
		t.Run(tt.service, func(t *testing.T) {
			hc := service(t, p, tt.service).HealthCheck
			require.NotNil(t, hc, "no healthcheck")
			require.False(t, hc.Disable)
			require.GreaterOrEqual(t, len(hc.Test), 2, "healthcheck has no command")
			require.Contains(t, []string{"CMD", "CMD-SHELL"}, hc.Test[0])
			require.Contains(t, strings.Join(hc.Test[1:], " "), tt.probe)
			require.NotNil(t, hc.Interval, "interval")
			require.NotNil(t, hc.Timeout, "timeout")
			require.NotNil(t, hc.Retries, "retries")
		})
	}
	require.ElementsMatch(t, longRunning, covered, "every long-running service needs a healthcheck case")
}

// TestComposeVigilHealthchecksUseTheBinary checks the vigil services probe
// health with `vigil healthcheck URL`.
func TestComposeVigilHealthchecksUseTheBinary(t *testing.T) {
	// The distroless image has no shell, so CMD-SHELL would fail there.
	p := loadProject(t)
	for _, name := range []string{"vigil-api", "vigil-worker"} {
		t.Run(name, func(t *testing.T) {
			hc := service(t, p, name).HealthCheck
			require.NotNil(t, hc)
			require.Equal(t, []string{"CMD", "/vigil", "healthcheck"}, []string(hc.Test[:3]))
		})
	}
}

// TestComposePublishedPorts checks the ports published on the host.
func TestComposePublishedPorts(t *testing.T) {
	p := loadProject(t)
	tests := []struct {
		service   string
		published string
		target    uint32
		// hostIP is the interface the port binds to ("" = every one).
		hostIP string
	}{
		{"vigil-api", "8080", 8080, ""},
		// The operator ports have no sign-in of their own: localhost only.
		{"temporal", "7233", 7233, "127.0.0.1"},
		{"temporal-ui", "8233", 8080, "127.0.0.1"},
		{"prometheus", "9090", 9090, "127.0.0.1"},
		{"grafana", "3000", 3000, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			ports := service(t, p, tt.service).Ports
			require.Len(t, ports, 1, "%s publishes one port", tt.service)
			port := ports[0]
			require.Equal(t, tt.published, port.Published)
			require.Equal(t, tt.target, port.Target)
			require.Equal(t, tt.hostIP, port.HostIP, "%s must bind its port to %q", tt.service, tt.hostIP)
		})
	}
	t.Run("vigil-worker publishes nothing", func(t *testing.T) {
		require.Empty(t, service(t, p, "vigil-worker").Ports)
	})
	t.Run("postgres publishes nothing", func(t *testing.T) {
		require.Empty(t, service(t, p, "postgres").Ports)
	})
	t.Run("only the api listens on every interface", func(t *testing.T) {
		for name, svc := range p.Services {
			for _, port := range svc.Ports {
				if name != "vigil-api" {
					require.Equal(t, "127.0.0.1", port.HostIP, "%s publishes %s on every interface", name, port.Published)
				}
			}
		}
	})
	t.Run("api metrics are not on the public port", func(t *testing.T) {
		svc := service(t, p, "vigil-api")
		require.Equal(t, ":9464", env(svc, "VIGIL_METRICS_ADDR"))
		for _, port := range svc.Ports {
			require.NotEqual(t, uint32(9464), port.Target, "the metrics port is not published")
		}
	})
}

// TestComposeVigilServices checks the services that run the vigil image: how
// it is built, which subcommand each runs and its environment.
func TestComposeVigilServices(t *testing.T) {
	p := loadProject(t)
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	tests := []struct {
		service  string
		command  []string
		httpAddr string // expected VIGIL_HTTP_ADDR, "" when not set
	}{
		{"vigil-migrate", []string{"migrate"}, ""},
		{"vigil-api", []string{"api"}, ":8080"},
		{"vigil-worker", []string{"worker"}, ":8081"},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			svc := service(t, p, tt.service)
			require.NotNil(t, svc.Build, "must build the vigil image")
			require.Equal(t, "deploy/Dockerfile", filepath.ToSlash(svc.Build.Dockerfile))
			require.Equal(t, root, filepath.Clean(svc.Build.Context), "build context must be the repository root")
			require.Equal(t, tt.command, []string(svc.Command))
			require.Empty(t, svc.Entrypoint, "the image's ENTRYPOINT /vigil must stay")
			require.Equal(t, tt.httpAddr, env(svc, "VIGIL_HTTP_ADDR"))
			require.Equal(t, "postgres://vigil:vigil@postgres:5432/vigil?sslmode=disable", env(svc, "DATABASE_URL"))
			require.Equal(t, "temporal:7233", env(svc, "TEMPORAL_ADDRESS"))
			require.Equal(t, "default", env(svc, "TEMPORAL_NAMESPACE"))
			require.Equal(t, "vigil", env(svc, "VIGIL_TASK_QUEUE"))
			require.Contains(t, []string{"json", "text"}, env(svc, "VIGIL_LOG_FORMAT"))
		})
	}
	t.Run("worker registers search attributes", func(t *testing.T) {
		require.Equal(t, "true", env(service(t, p, "vigil-worker"), "VIGIL_REGISTER_SEARCH_ATTRIBUTES"))
	})
	t.Run("one image for all three", func(t *testing.T) {
		images := map[string]bool{}
		for _, tt := range tests {
			images[service(t, p, tt.service).Image] = true
		}
		require.Len(t, images, 1)
	})
}

// TestComposeDependencies checks the start order expressed by depends_on.
func TestComposeDependencies(t *testing.T) {
	p := loadProject(t)
	const (
		healthy   = types.ServiceConditionHealthy
		completed = types.ServiceConditionCompletedSuccessfully
	)
	tests := []struct {
		service, dependsOn, condition string
	}{
		{"temporal-schema", "postgres", healthy},
		{"temporal", "temporal-schema", completed},
		{"temporal-namespace", "temporal", healthy},
		{"temporal-ui", "temporal", healthy},
		{"vigil-migrate", "postgres", healthy},
		{"vigil-api", "vigil-migrate", completed},
		{"vigil-api", "temporal-namespace", completed},
		{"vigil-worker", "vigil-migrate", completed},
		{"vigil-worker", "temporal-namespace", completed},
		{"grafana", "prometheus", healthy},
	}
	for _, tt := range tests {
		t.Run(tt.service+" on "+tt.dependsOn, func(t *testing.T) {
			dep, ok := service(t, p, tt.service).DependsOn[tt.dependsOn]
			require.True(t, ok, "%s does not depend on %s", tt.service, tt.dependsOn)
			require.Equal(t, tt.condition, dep.Condition)
		})
	}
}

// TestComposeOneShotJobs checks the jobs run once and stay down.
func TestComposeOneShotJobs(t *testing.T) {
	p := loadProject(t)
	for _, name := range oneShot {
		t.Run(name, func(t *testing.T) {
			svc := service(t, p, name)
			require.Equal(t, "no", svc.Restart, "a job must not be restarted after it exits")
			require.Empty(t, svc.Ports, "a job publishes no port")
		})
	}
}

// TestComposeImagesArePinned checks every pulled image names a version tag.
func TestComposeImagesArePinned(t *testing.T) {
	p := loadProject(t)
	tag := regexp.MustCompile(`^[a-z0-9./-]+:v?\d+\.\d+(\.\d+)?$`)
	for name, svc := range p.Services {
		if svc.Build != nil {
			continue // built locally from deploy/Dockerfile
		}
		t.Run(name, func(t *testing.T) {
			require.Regexp(t, tag, svc.Image, "pin an explicit version tag")
		})
	}
	t.Run("temporal images match server 1.32.0", func(t *testing.T) {
		require.Equal(t, "temporalio/server:1.32.0", service(t, p, "temporal").Image)
		require.Equal(t, "temporalio/admin-tools:1.32.0", service(t, p, "temporal-schema").Image)
		require.Equal(t, "temporalio/admin-tools:1.32.0", service(t, p, "temporal-namespace").Image)
		require.Equal(t, "temporalio/ui:2.54.1", service(t, p, "temporal-ui").Image)
	})
}

// TestComposeMounts checks every bind-mounted file exists and every named
// volume is declared.
func TestComposeMounts(t *testing.T) {
	p := loadProject(t)
	for name, svc := range p.Services {
		for _, v := range svc.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				t.Run(name+" bind "+v.Target, func(t *testing.T) {
					_, err := os.Stat(v.Source)
					require.NoError(t, err, "bind mount source of %s must exist", name)
					require.True(t, v.ReadOnly, "configuration is mounted read-only")
				})
			case types.VolumeTypeVolume:
				t.Run(name+" volume "+v.Source, func(t *testing.T) {
					_, ok := p.Volumes[v.Source]
					require.True(t, ok, "named volume %q is not declared", v.Source)
				})
			}
		}
	}
	t.Run("data volumes", func(t *testing.T) {
		tests := []struct{ service, volume, target string }{
			{"postgres", "postgres-data", "/var/lib/postgresql/data"},
			{"grafana", "grafana-data", "/var/lib/grafana"},
			{"prometheus", "prometheus-data", "/prometheus"},
		}
		for _, tt := range tests {
			var found bool
			for _, v := range service(t, p, tt.service).Volumes {
				if v.Type == types.VolumeTypeVolume && v.Source == tt.volume && v.Target == tt.target {
					found = true
				}
			}
			require.True(t, found, "%s must keep %s on volume %s", tt.service, tt.target, tt.volume)
		}
	})
}

// TestComposeTemporalServer checks the variables the Temporal server image
// renders its embedded configuration from.
func TestComposeTemporalServer(t *testing.T) {
	svc := service(t, loadProject(t), "temporal")
	tests := []struct{ name, want string }{
		{"DB", "postgres12"},
		{"DB_PORT", "5432"},
		{"POSTGRES_SEEDS", "postgres"},
		{"POSTGRES_USER", "temporal"},
		{"POSTGRES_PWD", "temporal"},
		{"BIND_ON_IP", "0.0.0.0"},
		{"PROMETHEUS_ENDPOINT", "0.0.0.0:9090"},
		{"DYNAMIC_CONFIG_FILE_PATH", "/etc/temporal/config/dynamicconfig/docker.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, env(svc, tt.name))
		})
	}
	t.Run("dynamic config file is mounted", func(t *testing.T) {
		// The server refuses to start when DYNAMIC_CONFIG_FILE_PATH is missing.
		var cfg map[string]any
		readYAML(t, "deploy/temporal/dynamicconfig/docker.yaml", &cfg)
		require.NotEmpty(t, cfg)
		var mounted bool
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind && v.Target == "/etc/temporal/config/dynamicconfig" {
				mounted = true
				_, err := os.Stat(filepath.Join(v.Source, "docker.yaml"))
				require.NoError(t, err)
			}
		}
		require.True(t, mounted)
	})
}

// TestTemporalSetupScripts checks the schema and namespace jobs' scripts.
func TestTemporalSetupScripts(t *testing.T) {
	t.Run("schema", func(t *testing.T) {
		script := string(readFile(t, "deploy/temporal/setup-schema.sh"))
		for _, want := range []string{
			"--plugin postgres12",
			"setup-schema -v 0.0",
			"/temporal/versioned",
			"/visibility/versioned",
			"/etc/temporal/schema/postgresql/v12",
		} {
			require.Contains(t, script, want)
		}
	})
	t.Run("namespace", func(t *testing.T) {
		script := string(readFile(t, "deploy/temporal/setup-namespace.sh"))
		require.Contains(t, script, "temporal operator namespace describe")
		require.Contains(t, script, "temporal operator namespace create")
		require.Contains(t, script, "temporal operator search-attribute create")
		names := func(variable string) []string {
			line := regexp.MustCompile(`(?m)^` + variable + `="([^"]*)"$`).FindStringSubmatch(script)
			require.Len(t, line, 2, variable+" line not found")
			return strings.Fields(line[1])
		}
		keyword, text := names("SEARCH_ATTRIBUTES"), names("TEXT_SEARCH_ATTRIBUTES")
		// Every attribute the workflows use, with its type.
		var wantKeyword, wantText []string
		for _, k := range workflows.SearchAttributes {
			switch k.GetValueType() {
			case enums.INDEXED_VALUE_TYPE_KEYWORD:
				wantKeyword = append(wantKeyword, k.GetName())
			case enums.INDEXED_VALUE_TYPE_TEXT:
				wantText = append(wantText, k.GetName())
			default:
				t.Fatalf("search attribute %s has a type the setup script does not register", k.GetName())
			}
		}
		require.ElementsMatch(t, wantKeyword, keyword)
		require.ElementsMatch(t, wantText, text)
		require.Contains(t, text, "NodeName")
		require.LessOrEqual(t, len(keyword), 10, "Postgres visibility has 10 custom Keyword slots")
		require.LessOrEqual(t, len(text), 3, "Postgres visibility has 3 custom Text slots")
	})
}

// TestPostgresInit checks init.sql creates Vigil's and Temporal's databases.
func TestPostgresInit(t *testing.T) {
	sql := string(readFile(t, "deploy/postgres/init.sql"))
	for _, db := range []string{"vigil", "temporal", "temporal_visibility"} {
		t.Run(db, func(t *testing.T) {
			require.Regexp(t, `(?m)^CREATE DATABASE `+db+` OWNER \w+;$`, sql)
		})
	}
}

// TestPrometheusConfig checks the Prometheus configuration parses and scrapes
// Vigil and Temporal.
func TestPrometheusConfig(t *testing.T) {
	var cfg struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"global"`
		ScrapeConfigs []struct {
			JobName        string `yaml:"job_name"`
			MetricsPath    string `yaml:"metrics_path"`
			ScrapeInterval string `yaml:"scrape_interval"`
			StaticConfigs  []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &cfg)
	require.Equal(t, "15s", cfg.Global.ScrapeInterval)

	type scrape struct{ path, interval string }
	targets := map[string]scrape{}
	for _, sc := range cfg.ScrapeConfigs {
		path, interval := sc.MetricsPath, sc.ScrapeInterval
		if path == "" {
			path = "/metrics"
		}
		if interval == "" {
			interval = cfg.Global.ScrapeInterval
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				targets[target] = scrape{path, interval}
			}
		}
	}
	for _, target := range []string{"vigil-api:9464", "vigil-worker:8081", "temporal:9090"} {
		t.Run(target, func(t *testing.T) {
			got, ok := targets[target]
			require.True(t, ok, "prometheus does not scrape %s", target)
			require.Equal(t, scrape{"/metrics", "15s"}, got)
		})
	}

	t.Run("mounted where prometheus reads it", func(t *testing.T) {
		svc := service(t, loadProject(t), "prometheus")
		require.Contains(t, []string(svc.Command), "--config.file=/etc/prometheus/prometheus.yml")
		var mounted bool
		for _, v := range svc.Volumes {
			if v.Target == "/etc/prometheus/prometheus.yml" {
				mounted = true
				require.Equal(t, "prometheus.yml", filepath.Base(v.Source))
			}
		}
		require.True(t, mounted)
	})
}

// TestGrafanaProvisioning checks the provisioned datasource, dashboard
// provider and dashboard.
func TestGrafanaProvisioning(t *testing.T) {
	t.Run("datasource", func(t *testing.T) {
		var cfg struct {
			APIVersion  int `yaml:"apiVersion"`
			Datasources []struct {
				UID       string `yaml:"uid"`
				Type      string `yaml:"type"`
				URL       string `yaml:"url"`
				IsDefault bool   `yaml:"isDefault"`
			} `yaml:"datasources"`
		}
		readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &cfg)
		require.Equal(t, 1, cfg.APIVersion)
		require.Len(t, cfg.Datasources, 1)
		ds := cfg.Datasources[0]
		require.Equal(t, "prometheus", ds.UID)
		require.Equal(t, "prometheus", ds.Type)
		require.Equal(t, "http://prometheus:9090", ds.URL)
		require.True(t, ds.IsDefault)
	})

	t.Run("dashboard provider", func(t *testing.T) {
		var cfg struct {
			APIVersion int `yaml:"apiVersion"`
			Providers  []struct {
				Type    string `yaml:"type"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		readYAML(t, "deploy/grafana/provisioning/dashboards/vigil.yml", &cfg)
		require.Equal(t, 1, cfg.APIVersion)
		require.Len(t, cfg.Providers, 1)
		require.Equal(t, "file", cfg.Providers[0].Type)
		require.Equal(t, "/var/lib/grafana/dashboards", cfg.Providers[0].Options.Path)
	})

	t.Run("dashboard", func(t *testing.T) {
		var dash struct {
			UID    string `json:"uid"`
			Panels []struct {
				Title      string `json:"title"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		require.NoError(t, json.Unmarshal(readFile(t, "deploy/grafana/dashboards/vigil-http.json"), &dash))
		require.NotEmpty(t, dash.UID)
		var exprs []string
		for _, panel := range dash.Panels {
			require.Equal(t, "prometheus", panel.Datasource.UID, "panel %q", panel.Title)
			for _, target := range panel.Targets {
				exprs = append(exprs, target.Expr)
			}
		}
		all := strings.Join(exprs, "\n")
		for _, want := range []string{
			"rate(vigil_http_request_duration_seconds_count[5m])",
			"histogram_quantile(0.99, sum by (le, route) (rate(vigil_http_request_duration_seconds_bucket[5m])))",
			`status=~"5.."`,
		} {
			require.Contains(t, all, want)
		}
	})

	t.Run("mounted where grafana reads them", func(t *testing.T) {
		svc := service(t, loadProject(t), "grafana")
		targets := map[string]string{}
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind {
				targets[v.Target] = v.Source
			}
		}
		root, err := filepath.Abs(repoRoot)
		require.NoError(t, err)
		require.Equal(t, filepath.Join(root, "deploy/grafana/provisioning/datasources"), targets["/etc/grafana/provisioning/datasources"])
		require.Equal(t, filepath.Join(root, "deploy/grafana/provisioning/dashboards"), targets["/etc/grafana/provisioning/dashboards"])
		require.Equal(t, filepath.Join(root, "deploy/grafana/dashboards"), targets["/var/lib/grafana/dashboards"])
	})
}

// dockerfileInstruction is one instruction of a Dockerfile, continuation lines
// joined.
type dockerfileInstruction struct {
	cmd  string // upper case: FROM, RUN, USER, ...
	args string
}

func parseDockerfile(t *testing.T, rel string) []dockerfileInstruction {
	t.Helper()
	var (
		out     []dockerfileInstruction
		pending strings.Builder
	)
	sc := bufio.NewScanner(strings.NewReader(string(readFile(t, rel))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		cmd, args, _ := strings.Cut(pending.String(), " ")
		out = append(out, dockerfileInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		pending.Reset()
	}
	require.NoError(t, sc.Err())
	require.Empty(t, pending.String(), "dangling line continuation")
	return out
}

// TestDockerfile checks deploy/Dockerfile builds a static binary in a
// separate stage and runs it as a non-root user.
func TestDockerfile(t *testing.T) {
	instructions := parseDockerfile(t, "deploy/Dockerfile")

	var froms []int
	for i, in := range instructions {
		if in.cmd == "FROM" {
			froms = append(froms, i)
		}
	}
	require.NotEmpty(t, froms, "no FROM")
	last := froms[len(froms)-1]
	finalStage := instructions[last:]

	t.Run("multi-stage", func(t *testing.T) {
		require.GreaterOrEqual(t, len(froms), 2)
		require.Regexp(t, `^golang:1\.26\.\d+ AS \w+$`, instructions[froms[0]].args, "build stage pins a Go 1.26.x image")
		require.Equal(t, "gcr.io/distroless/static-debian12:nonroot", instructions[last].args)
	})

	t.Run("module download cached before the source", func(t *testing.T) {
		var copyMod, download, copyAll int
		for i, in := range instructions[:last] {
			switch {
			case in.cmd == "COPY" && in.args == "go.mod go.sum ./":
				copyMod = i
			case in.cmd == "RUN" && strings.Contains(in.args, "go mod download"):
				download = i
			case in.cmd == "COPY" && in.args == ". .":
				copyAll = i
			}
		}
		require.NotZero(t, copyMod)
		require.Less(t, copyMod, download)
		require.Less(t, download, copyAll)
	})

	t.Run("static build", func(t *testing.T) {
		var build string
		for _, in := range instructions[:last] {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				build = in.args
			}
		}
		require.NotEmpty(t, build, "no go build in the build stage")
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "-o /out/vigil", "./cmd/vigil"} {
			require.Contains(t, build, want)
		}
	})

	t.Run("final stage runs as non-root", func(t *testing.T) {
		var user string
		for _, in := range finalStage {
			if in.cmd == "USER" {
				user = in.args
			}
		}
		require.NotEmpty(t, user, "final stage has no USER")
		name, group, _ := strings.Cut(user, ":")
		for _, id := range []string{name, group} {
			require.NotContains(t, []string{"root", "0"}, id)
		}
	})

	t.Run("entrypoint and default command", func(t *testing.T) {
		got := map[string]string{}
		for _, in := range finalStage {
			got[in.cmd] = in.args
		}
		require.Equal(t, `["/vigil"]`, got["ENTRYPOINT"])
		require.Equal(t, `["api"]`, got["CMD"])
		require.Equal(t, "8080", got["EXPOSE"])
		require.Equal(t, "--from=build /out/vigil /vigil", got["COPY"])
	})
}

// TestDockerignore checks the build context leaves out local state but keeps
// the build inputs.
func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(string(readFile(t, ".dockerignore")), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	for _, want := range []string{".git", ".vigil", "bin", "**/*.test"} {
		t.Run(want, func(t *testing.T) {
			require.Contains(t, patterns, want)
		})
	}
	t.Run("keeps the build inputs", func(t *testing.T) {
		for _, keep := range []string{"go.mod", "go.sum", "cmd", "internal", "deploy/Dockerfile"} {
			require.NotContains(t, patterns, keep)
		}
	})
}
