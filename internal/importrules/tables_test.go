package importrules_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/importrules"
)

// owners names the one package that owns each table: the only one whose
// code writes it (other stores may read it, for example to join a staff
// member's name). Tables written only by their migration (staff_roles,
// message_types) have an owner too, the package that reads them as
// reference data.
var owners = map[string]string{
	// incidents
	"incidents":               "internal/incident",
	"incident_events":         "internal/incident",
	"notification_outbox":     "internal/incident",
	"staff_notifications":     "internal/incident",
	"incident_slack_messages": "internal/incident",
	"escalation_schedule":     "internal/incident",
	"incident_step_picks":     "internal/incident",
	// reference data
	"staff":               "internal/reference",
	"staff_roles":         "internal/reference",
	"alert_types":         "internal/reference",
	"api_keys":            "internal/reference",
	"escalation_policies": "internal/reference",
	"rotations":           "internal/reference",
	"oncall_overrides":    "internal/reference",
	// capacity watches
	"watches":          "internal/watch",
	"watch_polls":      "internal/watch",
	"snapshots":        "internal/watch",
	"service_statuses": "internal/watch",
	"status_changes":   "internal/watch",
	// broker nodes
	"broker_nodes":          "internal/node",
	"broker_scans":          "internal/node",
	"node_observations":     "internal/node",
	"node_daily_stats":      "internal/node",
	"node_import_errors":    "internal/node",
	"node_resources":        "internal/node",
	"node_resource_changes": "internal/node",
	"node_status_history":   "internal/node",
	"node_settings":         "internal/node",
	"node_contacts":         "internal/node",
	"node_mail_log":         "internal/node",
	"node_mail_recipients":  "internal/node",
	// activations and messages
	"activations":   "internal/activation",
	"devices":       "internal/activation",
	"clinicians":    "internal/activation",
	"auth_audit":    "internal/activation",
	"messages":      "internal/message",
	"message_types": "internal/message",
	// sessions, operator signals, the system check
	"sessions":         "internal/session",
	"refresh_tokens":   "internal/session",
	"operator_signals": "internal/operatorsignal",
	"system_checks":    "internal/systemcheck",
}

// fixtureWriters are the other packages allowed to write a table, with
// why. Only the benchmark is: it bulk-loads rows that no store writes in
// bulk, and sets up what the API would refuse.
var fixtureWriters = map[string][]string{
	"messages":         {"internal/bench"}, // `vigil bench messages`: 100,000 messages to list, cleared after the run
	"node_daily_stats": {"internal/bench"}, // `vigil bench nodes`: years of daily statistics for the reports
	// `vigil bench incidents`' escalation phase: a policy whose first wait
	// it retunes every second, down to 1 s (the API refuses waits under
	// 30 s).
	"escalation_policies": {"internal/bench"},
}

// TestEveryTableHasOneOwner checks that every table the migrations create
// has an owner in owners, and that no package but its owner (and its
// listed fixture writers) writes it.
func TestEveryTableHasOneOwner(t *testing.T) {
	root := moduleRoot(t)
	paths, err := filepath.Glob(filepath.Join(root, "migrations", "*.sql"))
	require.NoError(t, err)
	var migrations []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		migrations = append(migrations, string(b))
	}
	tables := importrules.Tables(migrations)
	require.NotEmpty(t, tables, "no CREATE TABLE in migrations/")

	for _, table := range tables {
		require.Contains(t, owners, table, "table %s has no owner: add it to owners", table)
	}
	for table := range owners {
		require.Contains(t, tables, table, "owners names %s, which no migration creates", table)
	}

	writers := map[string][]string{}
	for pkg, files := range moduleFiles(t, root) {
		for _, file := range files {
			src, err := os.ReadFile(file)
			require.NoError(t, err)
			written, err := importrules.WrittenTables(src, tables)
			require.NoError(t, err, file)
			for _, table := range written {
				if !slices.Contains(writers[table], pkg) {
					writers[table] = append(writers[table], pkg)
				}
				if pkg != owners[table] && !slices.Contains(fixtureWriters[table], pkg) {
					rel, _ := filepath.Rel(root, file)
					t.Errorf("%s writes %s, which %s owns: call the owner's store", rel, table, owners[table])
				}
			}
		}
	}
	for table, pkgs := range fixtureWriters {
		for _, pkg := range pkgs {
			require.Contains(t, writers[table], pkg, "fixture writer %s no longer writes %s: remove it from fixtureWriters", pkg, table)
		}
	}
	require.Contains(t, writers["incidents"], "internal/incident", "the scan found no writes: is WrittenTables broken?")
}

func TestWrittenTables(t *testing.T) {
	tables := []string{"incidents", "staff", "watches"}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "insert, update and delete in literals",
			src: "package p\nconst a = `INSERT INTO incidents (id) VALUES ($1)`\n" +
				"var b = \"update staff SET name = $1\"\nvar c = `DELETE FROM watches WHERE id = $1`",
			want: []string{"incidents", "staff", "watches"},
		},
		{
			name: "comments, reads and upsert or locking clauses are not writes",
			src: "package p\n// INSERT INTO staff\nconst a = `SELECT * FROM incidents FOR UPDATE SKIP LOCKED`\n" +
				"const b = `INSERT INTO audit (x) VALUES (1) ON CONFLICT (x) DO UPDATE SET x = 2`",
		},
		{
			name: "a table no migration creates is not reported",
			src:  "package p\nconst a = `INSERT INTO incidents_archive (id) VALUES (1)`",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := importrules.WrittenTables([]byte(tt.src), tables)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestTables(t *testing.T) {
	got := importrules.Tables([]string{
		"-- +goose Up\nCREATE TABLE incidents (id uuid);\ncreate table if not exists Staff (id text);\n-- +goose Down\nCREATE TABLE old (x int);",
		"-- +goose Up\nALTER TABLE incidents ADD COLUMN x int;\nCREATE TABLE watches (id uuid);",
	})
	require.Equal(t, []string{"incidents", "staff", "watches"}, got)
}

// moduleFiles lists the non-test Go files of every package in the module,
// by the package's path relative to the module.
func moduleFiles(t *testing.T, root string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Dir,GoFiles", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())

	files := map[string][]string{}
	decoder := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg struct {
			ImportPath string
			Dir        string
			GoFiles    []string
		}
		err := decoder.Decode(&pkg)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg.ImportPath, module), "/")
		for _, f := range pkg.GoFiles {
			files[rel] = append(files[rel], filepath.Join(pkg.Dir, f))
		}
	}
	require.Contains(t, files, "internal/incident", "go list found no module packages")
	return files
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	require.FileExists(t, filepath.Join(root, "go.mod"))
	return root
}
