//go:build integration

package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/mail/mailsink"
	"github.com/vigil-health/vigil/internal/node/brokersim"
)

// TestDev_BrokerFleetMails drives a scripted broker fleet through the whole
// `vigil dev` stack (embedded Temporal, worker, API, the fleet-scan Schedule
// triggered through the API) and a real SMTP server: the right mails arrive,
// to the right contacts, with the static address in CC, nothing is sent
// twice, and a node that comes back gets its "recovered" mail.
func TestDev_BrokerFleetMails(t *testing.T) {
	ctx := context.Background()

	now := time.Now().UTC()
	sim := brokersim.New(brokersim.Options{})
	for _, n := range []brokersim.NodeSpec{
		{ID: "1", Name: "Klinikum Nord", Behaviour: brokersim.Healthy},
		{ID: "2", Name: "Klinikum Süd", Behaviour: brokersim.Offline, At: now.Add(-100 * time.Hour)},
		{ID: "3", Name: "Klinikum Ost", Behaviour: brokersim.VersionDrift},
		{ID: "4", Name: "Klinikum West", Behaviour: brokersim.NoImports, At: now.Add(-100 * time.Hour)},
	} {
		_, err := sim.AddNode(n)
		require.NoError(t, err)
	}
	simURL, stopSim, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stopSim)

	sink, err := mailsink.Start(mailsink.Options{TLS: "none"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })

	cfg, dsn := devConfig(t, "devnodes", map[string]string{
		"VIGIL_DEMO":                "false",
		"VIGIL_BROKER_URL":          simURL,
		"VIGIL_BROKER_API_KEY":      brokersim.DefaultAdminKey,
		"VIGIL_DWH_CURRENT_VERSION": brokersim.CurrentDWHVersion,
		"VIGIL_SMTP_HOST":           sink.Host(),
		"VIGIL_SMTP_PORT":           strconv.Itoa(sink.Port()),
		"VIGIL_SMTP_TLS":            "none",
		"VIGIL_MAIL_FROM":           "monitor@vigil.example",
		"VIGIL_MAIL_CC":             "broker-ops@vigil.example",
	})
	stack := startDev(t, cfg, slog.LevelError)
	require.Nil(t, stack.Mail, "an SMTP server is configured: no mail catcher")

	db, err := database.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = demo.SeedStaff(ctx, db, "demo-password")
	require.NoError(t, err)
	token := login(t, stack.APIURL, "a01", "demo-password")

	// Settings from the seed's mapping JSON; node 3 is mailed in English.
	call(t, stack.APIURL, "POST", "/v1/nodes/settings/import", token, `{
		"1": {"COMMON_NAME": "[1] Klinikum Nord"},
		"2": {"COMMON_NAME": "[2] Klinikum Süd", "WEEKS_NOTIFICATION_INTERVAL": 2},
		"3": {"COMMON_NAME": "[3] Klinikum Ost"},
		"4": {"COMMON_NAME": "[4] Klinikum West", "THRESHOLD_HOURS_FAILURE": 0}
	}`, http.StatusOK, nil)
	call(t, stack.APIURL, "PATCH", "/v1/nodes/3/settings", token, `{"mail_language":"en"}`, http.StatusOK, nil)
	for _, n := range []string{"2", "3", "4"} {
		for _, c := range []string{
			`{"role":"ED","first_name":"Ada","last_name":"Main","email":"ed-main@node` + n + `.example","main_contact":true}`,
			`{"role":"ED","first_name":"Bo","last_name":"Other","email":"ed-other@node` + n + `.example"}`,
			`{"role":"IT","first_name":"Cy","last_name":"Admin","email":"it@node` + n + `.example"}`,
			`{"role":"IT","first_name":"Di","last_name":"Gone","email":"it-gone@node` + n + `.example","unsubscribed":true}`,
		} {
			call(t, stack.APIURL, "POST", "/v1/nodes/"+n+"/contacts", token, c, http.StatusCreated, nil)
		}
	}

	// First scan: node 2 is offline (and so has not imported either: both
	// are mailed, the seed's first-match rule hid the second), node 3 runs
	// an old DWH, node 4 has not imported for 100 h (threshold 72 h: the
	// mapping's 0 means the default).
	call(t, stack.APIURL, "POST", "/v1/nodes/scan", token, "", http.StatusAccepted, nil)
	waitCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	mails, err := sink.Wait(waitCtx, 4)
	require.NoError(t, err)
	type got struct {
		Subject string
		To, CC  []string
	}
	var gotMails []got
	for _, m := range mails {
		to, cc := slices.Clone(m.To), slices.Clone(m.CC)
		slices.Sort(to)
		gotMails = append(gotMails, got{m.Subject, to, cc})
		require.ElementsMatch(t, append(slices.Clone(m.To), m.CC...), m.Rcpt, "envelope = To + CC")
	}
	slices.SortFunc(gotMails, func(a, b got) int {
		return strings.Compare(a.Subject+strings.Join(a.To, ","), b.Subject+strings.Join(b.To, ","))
	})
	require.Equal(t, []got{
		{"Automatic notice: AKTIN DWH version outdated", []string{"ed-main@node3.example", "it@node3.example"}, []string{"broker-ops@vigil.example"}},
		{"Automatische Information: AKTIN DWH Keine Imports", []string{"ed-main@node2.example", "it@node2.example"}, []string{"broker-ops@vigil.example"}},
		{"Automatische Information: AKTIN DWH Keine Imports", []string{"ed-main@node4.example", "it@node4.example"}, []string{"broker-ops@vigil.example"}},
		{"Automatische Information: AKTIN DWH Offline", []string{"ed-main@node2.example", "it@node2.example"}, []string{"broker-ops@vigil.example"}},
	}, gotMails)
	// Settle: nothing else is sent for the first scan.
	time.Sleep(2 * time.Second)
	require.Len(t, sink.Messages(), 4)

	var summary struct {
		Nodes []struct {
			NodeID     string   `json:"node_id"`
			Headline   string   `json:"headline"`
			Conditions []string `json:"conditions"`
		} `json:"items"`
	}
	call(t, stack.APIURL, "GET", "/v1/nodes", token, "", http.StatusOK, &summary)
	status := map[string][]string{}
	for _, n := range summary.Nodes {
		status[n.NodeID] = append([]string{n.Headline}, n.Conditions...)
	}
	require.Contains(t, status["2"], "OFFLINE")
	require.Contains(t, status["3"], "DWH OUTDATED")
	require.Contains(t, status["4"], "NO IMPORTS")
	require.NotContains(t, status["1"], "OFFLINE")

	// Node 2 comes back: its DWH answers again but has not imported for
	// 100 h. The second scan sends exactly one more mail: node 2's OFFLINE
	// recovered. NO IMPORTS still holds there and elsewhere, and is not
	// mailed again before its re-send interval.
	require.NoError(t, sim.SetBehaviour("2", brokersim.Healthy, time.Now()))
	sim.Advance(time.Now())
	call(t, stack.APIURL, "POST", "/v1/nodes/scan", token, "", http.StatusAccepted, nil)
	mails, err = sink.Wait(waitCtx, 5)
	require.NoError(t, err)
	require.Equal(t, "Automatische Information: AKTIN DWH wieder erreichbar", mails[4].Subject)
	require.ElementsMatch(t, []string{"ed-main@node2.example", "it@node2.example"}, mails[4].To)
	require.Equal(t, []string{"broker-ops@vigil.example"}, mails[4].CC)
	require.Eventually(t, func() bool {
		var n int
		return db.GetContext(ctx, &n, `SELECT count(*) FROM broker_nodes WHERE last_scan_id <> '' AND last_scan_id = (SELECT scan_id FROM broker_scans ORDER BY started_at DESC LIMIT 1)`) == nil && n == 4
	}, 30*time.Second, 100*time.Millisecond, "every node recorded the second scan")
	time.Sleep(time.Second)
	require.Len(t, sink.Messages(), 5, "no mail twice")
}

// login returns a staff access token.
func login(t *testing.T, base, user, password string) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	call(t, base, "POST", "/v1/auth/login", "", `{"login":"`+user+`","password":"`+password+`"}`, http.StatusOK, &tok)
	return tok.AccessToken
}

// call sends a JSON request and checks the status.
func call(t *testing.T, base, method, path, token, body string, want int, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, base+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out))
	}
}
