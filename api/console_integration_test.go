//go:build integration

package api_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

const consoleFormType = "application/x-www-form-urlencoded"

// consoleSignIn signs in through the console's form and returns the
// session's Cookie header.
func consoleSignIn(t *testing.T, s *stack, login string) string {
	t.Helper()
	form := url.Values{"login": {login}, "password": {demoPassword}}.Encode()
	resp, _ := ndRaw(t, s, "POST", "/ui/login", "", consoleFormType, form, "Origin", s.URL)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/", resp.Header.Get("Location"), "signed in: My work")
	var parts []string
	for _, c := range resp.Cookies() {
		if c.Path == "/ui" {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	require.Len(t, parts, 2)
	return strings.Join(parts, "; ")
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleCSRF reads the CSRF token from a console page.
func consoleCSRF(t *testing.T, page []byte) string {
	t.Helper()
	m := csrfInput.FindSubmatch(page)
	require.NotNil(t, m, "no CSRF field on the page")
	return html.UnescapeString(string(m[1]))
}

func TestConsole_FormsNeedCSRFShowRefusalsAndKeepRights(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "bed-sensors")
	var created struct {
		IncidentID string `json:"incident_id"`
	}
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", key, alertBody("FALL_DETECTED", "P-"+uuid.NewString()[:8]), &created).StatusCode)
	row := waitIncident(t, created.IncidentID, func(r incidentRow) bool { return r.Status == "ASSIGNED" && r.AssignedTo != nil })
	var login string
	require.NoError(t, env.DB.Get(&login, `SELECT login FROM staff WHERE id = $1`, *row.AssignedTo))
	other := "n01"
	if login == "n01" {
		other = "n02"
	}

	// / leads to My work, which needs a session.
	resp, _ := ndRaw(t, s, "GET", "/", "", "", "")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/", resp.Header.Get("Location"))
	resp, _ = ndRaw(t, s, "GET", "/ui/", "", "", "")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/login?next="+url.QueryEscape("/ui/"), resp.Header.Get("Location"))

	cookie := consoleSignIn(t, s, login)
	resp, body := ndRaw(t, s, "GET", "/ui/", "", "", "", "Cookie", cookie)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, string(body), `id="i-`+created.IncidentID+`"`, "my incident is on My work")
	require.Contains(t, string(body), `action="/ui/incidents/`+created.IncidentID+`/acknowledge"`)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'", "My work loads its script")
	require.Contains(t, string(body), `<script src="/ui/static/console.js" defer></script>`)
	token := consoleCSRF(t, body)

	path := "/ui/incidents/" + created.IncidentID
	post := func(action string, form url.Values, cookie string, headers ...string) (*http.Response, string) {
		resp, body := ndRaw(t, s, "POST", path+"/"+action, "", consoleFormType, form.Encode(), append([]string{"Cookie", cookie}, headers...)...)
		return resp, string(body)
	}

	// CSRF: no token, a forged one, another session's, or a cross-site
	// origin are refused, and nothing changes.
	otherCookie := consoleSignIn(t, s, other)
	_, otherPage := ndRaw(t, s, "GET", "/ui/", "", "", "", "Cookie", otherCookie)
	for name, tc := range map[string]struct {
		form    url.Values
		headers []string
	}{
		"no token":              {form: url.Values{"back": {"/ui/"}}},
		"forged token":          {form: url.Values{"csrf": {"v1.k.AAAA"}, "back": {"/ui/"}}},
		"other session's token": {form: url.Values{"csrf": {consoleCSRF(t, otherPage)}, "back": {"/ui/"}}},
		"cross-site origin":     {form: url.Values{"csrf": {token}}, headers: []string{"Origin", "https://evil.example"}},
	} {
		resp, body := post("acknowledge", tc.form, cookie, tc.headers...)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, name)
		require.Contains(t, body, "expired or came from another site", name)
	}
	waitIncident(t, created.IncidentID, func(r incidentRow) bool { return r.Status == "ASSIGNED" })

	// A refused action re-renders the page with the workflow's reason.
	resp, body2 := post("start", url.Values{"csrf": {token}, "back": {"/ui/"}}, cookie)
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Contains(t, body2, `role="alert"`)
	require.Contains(t, body2, "acknowledge it first")
	require.Contains(t, body2, "My work")
	_, otherToken := otherCookie, consoleCSRF(t, otherPage)
	resp, body2 = post("acknowledge", url.Values{"csrf": {otherToken}, "back": {path}}, otherCookie)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "one nurse cannot acknowledge another's incident")
	require.Contains(t, body2, "Refused: ")
	require.Contains(t, body2, "Timeline", "the detail page again")

	// Acknowledge, then resolve: notes are required.
	resp, _ = post("acknowledge", url.Values{"csrf": {token}, "back": {"/ui/"}}, cookie)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/", resp.Header.Get("Location"))
	resp, body2 = post("resolve", url.Values{"csrf": {token}, "back": {path}, "resolution_notes": {"ok"}}, cookie)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body2, "resolution notes must be 10 to 2000 characters")
	resp, _ = post("note", url.Values{"csrf": {token}, "back": {path}, "note": {"Patient conscious"}}, cookie)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, path, resp.Header.Get("Location"))

	// Rights: a nurse cannot see the board; a charge nurse can, and her
	// reassign form refuses an unknown staff id on the board.
	resp, body = ndRaw(t, s, "GET", "/ui/board", "", "", "", "Cookie", cookie)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, string(body), "for charge nurses and admins")
	require.NotContains(t, string(body), `href="/ui/board"`, "no board link for a nurse")
	charge := consoleSignIn(t, s, "c01")
	resp, body = ndRaw(t, s, "GET", "/ui/board?severity=HIGH", "", "", "", "Cookie", charge)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, string(body), `id="b-`+created.IncidentID+`"`)
	require.Contains(t, string(body), `<option selected>HIGH</option>`)
	resp, _ = ndRaw(t, s, "GET", "/ui/board?severity=LOW", "", "", "", "Cookie", charge)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = ndRaw(t, s, "GET", "/ui/board?severity=NOPE", "", "", "", "Cookie", charge)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, body2 = post("reassign", url.Values{"csrf": {consoleCSRF(t, body)}, "back": {"/ui/board?severity=HIGH"}, "staff_id": {"nobody"}}, charge)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body2, "staff id is not a staff member")
	require.Contains(t, body2, "Incident board")

	// Resolve with notes; the detail page shows the timeline.
	resp, _ = post("resolve", url.Values{"csrf": {token}, "back": {path}, "resolution_notes": {"Helped back to bed, no injury."}}, cookie)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	waitIncident(t, created.IncidentID, func(r incidentRow) bool { return r.Status == "RESOLVED" })
	resp, body = ndRaw(t, s, "GET", path, "", "", "", "Cookie", cookie)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, want := range []string{"RESOLVED", "ACKNOWLEDGED", "NOTE_ADDED", "Patient conscious", "Helped back to bed, no injury.", "PAGED"} {
		require.Contains(t, string(body), want)
	}
	// The pages table: the assignee's in-app page, sent.
	pages := string(body)[strings.Index(string(body), `<table id="pages">`):]
	pages = pages[:strings.Index(pages, "</table>")]
	require.Contains(t, pages, "<td>assign</td>")
	require.Contains(t, pages, "("+*row.AssignedTo+")")
	require.Contains(t, pages, "<td>In-app</td>")
	require.Contains(t, pages, `<span class="badge green">sent</span>`)
	resp, _ = ndRaw(t, s, "GET", "/ui/incidents/"+uuid.NewString(), "", "", "", "Cookie", cookie)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// The live stream answers the session cookie.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/ui/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Cookie", cookie)
	sresp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = sresp.Body.Close() }()
	require.Equal(t, http.StatusOK, sresp.StatusCode)
	require.Equal(t, "text/event-stream", sresp.Header.Get("Content-Type"))
}
