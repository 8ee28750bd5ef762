//go:build integration

package api_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/reference"
)

// shiftLine is the page's line naming the current shift and its end.
var shiftLine = regexp.MustCompile(`Now: the (DAY|EVENING|NIGHT) shift, until <time datetime="([^"]+)">`)

func TestConsoleOnCall_ChargeEditsOverridesNursesRead(t *testing.T) {
	s := startStack(t)
	admin, nurseToken := s.login(t, "a01"), s.login(t, "n01")
	const staffID, role = "T-OC-1", "CARDIOLOGIST"
	refStaff(t, s, admin, staffID, "SURGEON", true)
	overrides := func() []int64 {
		var ids []int64
		require.NoError(t, env.DB.Select(&ids, `SELECT id FROM oncall_overrides WHERE staff_id = $1 ORDER BY id`, staffID))
		return ids
	}
	t.Cleanup(func() {
		_, err := env.DB.ExecContext(context.Background(), `DELETE FROM oncall_overrides WHERE staff_id = $1`, staffID)
		require.NoError(t, err)
	})

	charge := consoleSignIn(t, s, "c01")
	nurse := consoleSignIn(t, s, "n01")
	get := func(cookie, path string) (*http.Response, string) {
		resp, body := ndRaw(t, s, "GET", path, "", "", "", "Cookie", cookie)
		return resp, string(body)
	}
	post := func(cookie, path string, form url.Values, headers ...string) (*http.Response, string) {
		resp, body := ndRaw(t, s, "POST", path, "", consoleFormType, form.Encode(), append([]string{"Cookie", cookie}, headers...)...)
		return resp, string(body)
	}

	// The page: every role, the shift's end on the hospital's clock.
	resp, page := get(charge, "/ui/oncall")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	require.Contains(t, page, `<a href="/ui/oncall" aria-current="page">On call</a>`)
	require.Contains(t, page, `id="r-NURSE"`)
	require.Contains(t, page, `id="r-`+role+`"`)
	require.Contains(t, page, `action="/ui/oncall/overrides"`, "a charge nurse gets the add form")
	require.Contains(t, page, `<option value="`+staffID+`">Test `+staffID+` (`+staffID+`, SURGEON)</option>`)
	m := shiftLine.FindStringSubmatch(page)
	require.NotNil(t, m, "the page names the shift and its end")
	end, err := time.Parse(time.RFC3339, m[2])
	require.NoError(t, err)
	require.Contains(t, []int{0, 8, 16}, end.In(london).Hour(), "shifts end at 08:00, 16:00 or midnight in London")
	require.True(t, end.After(time.Now()) && time.Until(end) <= 9*time.Hour, "the current shift ends within a shift")
	chargeCSRF := consoleCSRF(t, []byte(page))

	local := func(d time.Duration) string {
		return time.Now().In(london).Add(d).Format("2006-01-02T15:04")
	}
	good := url.Values{
		"csrf": {chargeCSRF}, "role": {role}, "staff_id": {staffID},
		"starts_at": {local(-time.Minute)}, "ends_at": {local(2 * time.Hour)}, "reason": {"covering a sick colleague"},
	}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range good {
			f[key] = vals
		}
		f.Set(k, v)
		return f
	}

	// Bad input: a 4xx naming the field, on the page again, and nothing
	// created.
	for _, tc := range []struct {
		name    string
		form    url.Values
		headers []string
		status  int
		want    []string
	}{
		{"until before from", with("ends_at", local(-time.Hour)), nil, http.StatusBadRequest,
			[]string{"Until (ends_at) must be after starts_at", `id="err-ends_at"`, `aria-invalid="true"`, `value="` + local(-time.Hour) + `"`}},
		{"unknown staff", with("staff_id", "T-OC-NOBODY"), nil, http.StatusBadRequest,
			[]string{"Staff member (staff_id) unknown staff member", `id="err-staff_id"`}},
		{"missing role", with("role", ""), nil, http.StatusBadRequest, []string{"Role (role) is required", `id="err-role"`}},
		{"unknown role", with("role", "JUGGLER"), nil, http.StatusBadRequest, []string{"Role (role) unknown role", `id="err-role"`}},
		{"missing from", with("starts_at", ""), nil, http.StatusBadRequest, []string{"From (starts_at) is required", `id="err-starts_at"`}},
		{"from not a time", with("starts_at", "tomorrow"), nil, http.StatusBadRequest, []string{"From (starts_at) must be a date and time", `id="err-starts_at"`}},
		{"longer than 90 days", with("ends_at", local(91*24*time.Hour)), nil, http.StatusBadRequest, []string{"Until (ends_at) an override lasts at most 90 days"}},
		{"bad CSRF", with("csrf", "v1.k.AAAA"), nil, http.StatusForbidden, []string{"expired or came from another site"}},
		{"no CSRF", with("csrf", ""), nil, http.StatusForbidden, []string{"expired or came from another site"}},
		{"cross-site origin", good, []string{"Origin", "https://evil.example"}, http.StatusForbidden, []string{"expired or came from another site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(charge, "/ui/oncall/overrides", tc.form, tc.headers...)
			require.Equal(t, tc.status, resp.StatusCode, body)
			for _, w := range tc.want {
				require.Contains(t, body, w)
			}
			require.Empty(t, overrides(), "nothing created")
		})
	}

	// A charge nurse adds an override: it covers the role now, on the page
	// and in GET /v1/oncall.
	resp, _ = post(charge, "/ui/oncall/overrides", good)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/oncall?done=added", resp.Header.Get("Location"))
	ids := overrides()
	require.Len(t, ids, 1)
	id := strconv.FormatInt(ids[0], 10)
	resp, page = get(charge, "/ui/oncall?done=added")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, page, "Override added.")
	row := regexp.MustCompile(`(?s)<tr id="r-` + role + `">.*?</tr>`).FindString(page)
	require.Contains(t, row, "Test "+staffID+` <span class="muted">(`+staffID+`)</span> until`)
	require.Contains(t, row, "override</span>")
	// The "now" cell names her; the next shift may start after the
	// override ends (the test runs at any time of day), so only this cell.
	now := regexp.MustCompile(`(?s)<td>.*?</td>`).FindString(row)
	require.Contains(t, now, "Test "+staffID)
	require.NotContains(t, now, "nobody")
	ovRow := regexp.MustCompile(`(?s)<tr id="o-` + id + `">.*?</tr>`).FindString(page)
	for _, want := range []string{role, `<span class="badge green">now</span>`, "covering a sick colleague", "(C01)", `action="/ui/oncall/overrides/` + id + `/delete"`} {
		require.Contains(t, ovRow, want)
	}
	var ans reference.OnCallAnswer
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/oncall?role="+role, nurseToken, "", &ans).StatusCode)
	require.Len(t, ans.Roles, 1)
	require.Len(t, ans.Roles[0].People, 1, "the override replaces the rotation")
	require.Equal(t, staffID, ans.Roles[0].People[0].ID)

	// A nurse reads the page: the override, no forms; posting anyway is
	// refused.
	resp, page = get(nurse, "/ui/oncall")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, page, `<tr id="o-`+id+`">`)
	require.Contains(t, page, `<a href="/ui/oncall" aria-current="page">On call</a>`)
	require.NotContains(t, page, `action="/ui/oncall/overrides`)
	require.Contains(t, page, "Charge nurses and admins add and delete overrides here.")
	nurseCSRF := consoleCSRF(t, []byte(page))
	for _, path := range []string{"/ui/oncall/overrides", "/ui/oncall/overrides/" + id + "/delete"} {
		resp, body := post(nurse, path, with("csrf", nurseCSRF))
		require.Equal(t, http.StatusForbidden, resp.StatusCode, path)
		require.Contains(t, body, "Only charge nurses and admins change who is on call.")
	}
	require.Equal(t, ids, overrides(), "the nurse changed nothing")

	// The charge nurse deletes it; again is a 404, a bad id a 400.
	form := url.Values{"csrf": {chargeCSRF}}
	resp, _ = post(charge, "/ui/oncall/overrides/"+id+"/delete", form)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/ui/oncall?done=deleted", resp.Header.Get("Location"))
	require.Empty(t, overrides())
	resp, page = get(charge, "/ui/oncall?done=deleted")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, page, "Override deleted.")
	require.NotContains(t, page, `<tr id="o-`+id+`">`)
	resp, body := post(charge, "/ui/oncall/overrides/"+id+"/delete", form)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, body, "that override no longer exists")
	resp, body = post(charge, "/ui/oncall/overrides/first/delete", form)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "Not deleted: id must be a positive integer.")
}
