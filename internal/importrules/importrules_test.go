package importrules_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/importrules"
)

const module = "github.com/vigil-health/vigil"

var sqlPackages = []string{"github.com/jmoiron/sqlx", "database/sql", "github.com/lib/pq"}

// sqlAllowed are the packages that may use the database driver: the
// capability stores, and the plumbing that opens, migrates or seeds the
// database or wires the stores over one pool (stores, worker).
var sqlAllowed = modulePaths(
	// capability stores: each owns its tables
	"internal/incident/...", "internal/watch/...", "internal/node/...", "internal/activation/...",
	"internal/message/...", "internal/reference/...", "internal/session/...", "internal/systemcheck/...",
	"internal/operatorsignal/...",
	// plumbing
	"internal/database/...", "internal/pgnotify/...", "internal/stores/...", "internal/app/...",
	"internal/testenv/...", "internal/bench/...", "internal/demo/...", "internal/embeddedtemporal/...",
	"worker/...",
)

var rules = []importrules.Rule{
	{
		Name:      "only stores and plumbing use SQL",
		Packages:  modulePaths("..."),
		Except:    sqlAllowed,
		Forbidden: sqlPackages,
	},
	{
		Name:      "api does not import activities",
		Packages:  modulePaths("api/..."),
		Forbidden: modulePaths("activities/..."),
	},
	{
		Name:      "activities does not import workflows",
		Packages:  modulePaths("activities/..."),
		Forbidden: modulePaths("workflows/..."),
	},
}

// pending are known violations, each one (importer, import) pair, allowed
// until they are fixed; issue 13 fixed the last ones.
var pending []importrules.Violation

func TestModuleFollowsImportRules(t *testing.T) {
	found := importrules.Check(moduleImports(t), rules)
	news, stale := importrules.Split(found, pending)
	for _, v := range news {
		t.Errorf("import rule broken: %s", v)
	}
	for _, v := range stale {
		t.Errorf("pending violation no longer occurs, remove it from pending: %s", v)
	}
}

func TestCheck(t *testing.T) {
	imports := map[string][]string{
		"m/api":                  {"m/activities", "m/internal/incident"},
		"m/activities":           {"database/sql"},
		"m/internal/incident":    {"github.com/jmoiron/sqlx"},
		"m/internal/incident/db": {"github.com/lib/pq"},
		"m/internal/incidentsx":  {"github.com/jmoiron/sqlx"},
		"m/workflows":            {"m/activities"},
	}
	rules := []importrules.Rule{
		{Name: "sql", Packages: []string{"m/..."}, Except: []string{"m/internal/incident/..."}, Forbidden: sqlPackages},
		{Name: "layers", Packages: []string{"m/api/..."}, Forbidden: []string{"m/activities/..."}},
	}
	tests := []struct {
		name      string
		pending   []importrules.Violation
		wantNew   []importrules.Violation
		wantStale []importrules.Violation
	}{
		{
			name: "nothing pending reports every violation, subpackages allowed, prefixes are not subpackages",
			wantNew: []importrules.Violation{
				{Rule: "layers", Importer: "m/api", Imported: "m/activities"},
				{Rule: "sql", Importer: "m/activities", Imported: "database/sql"},
				{Rule: "sql", Importer: "m/internal/incidentsx", Imported: "github.com/jmoiron/sqlx"},
			},
		},
		{
			name: "pending violations pass, others still fail",
			pending: []importrules.Violation{
				{Rule: "layers", Importer: "m/api", Imported: "m/activities"},
				{Rule: "sql", Importer: "m/activities", Imported: "database/sql"},
			},
			wantNew: []importrules.Violation{
				{Rule: "sql", Importer: "m/internal/incidentsx", Imported: "github.com/jmoiron/sqlx"},
			},
		},
		{
			name: "a fixed pending violation is reported stale",
			pending: []importrules.Violation{
				{Rule: "layers", Importer: "m/api", Imported: "m/activities"},
				{Rule: "sql", Importer: "m/activities", Imported: "database/sql"},
				{Rule: "sql", Importer: "m/internal/incidentsx", Imported: "github.com/jmoiron/sqlx"},
				{Rule: "sql", Importer: "m/api", Imported: "github.com/lib/pq"},
			},
			wantStale: []importrules.Violation{
				{Rule: "sql", Importer: "m/api", Imported: "github.com/lib/pq"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			news, stale := importrules.Split(importrules.Check(imports, rules), tt.pending)
			require.Equal(t, tt.wantNew, news)
			require.Equal(t, tt.wantStale, stale)
		})
	}
}

func modulePaths(relative ...string) []string {
	paths := make([]string, len(relative))
	for i, r := range relative {
		paths[i] = module + "/" + r
	}
	return paths
}

// moduleImports lists the non-test imports of every package in the module,
// running `go list` from the module root.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	root := moduleRoot(t)

	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())

	imports := map[string][]string{}
	decoder := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg struct {
			ImportPath string
			Imports    []string
		}
		err := decoder.Decode(&pkg)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		imports[pkg.ImportPath] = pkg.Imports
	}
	require.Contains(t, imports, module+"/api", "go list found no module packages")
	return imports
}
