//go:build integration

package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/reference"
)

// refCase is one request and the answer it must get: a status and, for
// errors, the field the error names.
type refCase struct {
	name   string
	method string
	path   string
	token  string
	body   string
	status int
	field  string
}

// refRun runs cases as subtests; error answers must name the expected field.
func refRun(t *testing.T, s *stack, cases []refCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var raw json.RawMessage
			resp := s.call(t, tc.method, tc.path, tc.token, tc.body, &raw)
			require.Equal(t, tc.status, resp.StatusCode, string(raw))
			if tc.status >= 400 {
				var e api.ErrorBody
				require.NoError(t, json.Unmarshal(raw, &e), string(raw))
				require.NotEmpty(t, e.Error.Code)
				require.Equal(t, tc.field, e.Error.Field, string(raw))
			}
		})
	}
}

// refStaff creates a staff member through the API, with the demo password,
// and deletes them when the test ends.
func refStaff(t *testing.T, s *stack, admin, id, role string, available bool) reference.Staff {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"id": id, "login": strings.ToLower(id), "name": "Test " + id, "role": role,
		"available": available, "password": demoPassword,
	})
	require.NoError(t, err)
	var created reference.Staff
	resp := s.call(t, "POST", "/v1/staff", admin, string(body), &created)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "/v1/staff/"+id, resp.Header.Get("Location"))
	t.Cleanup(func() {
		_, err := env.DB.ExecContext(context.Background(), `DELETE FROM staff WHERE id = $1`, id)
		require.NoError(t, err)
	})
	return created
}

// refDeleteAlertType removes a test alert type (and its policy) when the
// test ends.
func refDeleteAlertType(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(func() {
		_, err := env.DB.ExecContext(context.Background(), `DELETE FROM alert_types WHERE alert_type = $1`, name)
		require.NoError(t, err)
	})
}

func TestReference_EveryRouteNeedsAToken(t *testing.T) {
	s := startStack(t)
	var cases []refCase
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/alert-types"}, {"GET", "/v1/alert-types/FALL_DETECTED"}, {"PUT", "/v1/alert-types/FALL_DETECTED"},
		{"GET", "/v1/roles"},
		{"GET", "/v1/staff"}, {"GET", "/v1/staff/N01"}, {"POST", "/v1/staff"}, {"PATCH", "/v1/staff/N01"}, {"DELETE", "/v1/staff/N01"},
		{"GET", "/v1/rotations"}, {"POST", "/v1/rotations"}, {"DELETE", "/v1/rotations/1"},
		{"GET", "/v1/oncall"}, {"GET", "/v1/oncall/overrides"}, {"POST", "/v1/oncall/overrides"}, {"DELETE", "/v1/oncall/overrides/1"},
		{"GET", "/v1/escalation-policies"}, {"GET", "/v1/escalation-policies/severity:HIGH"},
		{"PUT", "/v1/escalation-policies/severity:HIGH"}, {"DELETE", "/v1/escalation-policies/alert_type:FALL_DETECTED"},
		{"GET", "/v1/api-keys"}, {"POST", "/v1/api-keys"}, {"DELETE", "/v1/api-keys/1"},
	} {
		cases = append(cases, refCase{r.method + " " + r.path, r.method, r.path, "", `{}`, http.StatusUnauthorized, ""})
	}
	refRun(t, s, cases)
}

func TestReference_Catalogue(t *testing.T) {
	s := startStack(t)
	admin, charge, nurse := s.login(t, "a01"), s.login(t, "c01"), s.login(t, "n01")
	refDeleteAlertType(t, "T_REF_ALERT")

	t.Run("list pages in name order", func(t *testing.T) {
		var first, second reference.List[reference.AlertType]
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/alert-types?limit=5", nurse, "", &first).StatusCode)
		require.Len(t, first.Items, 5)
		require.NotNil(t, first.NextOffset)
		require.Equal(t, 5, *first.NextOffset)
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/alert-types?limit=5&offset=5", nurse, "", &second).StatusCode)
		require.Less(t, first.Items[4].AlertType, second.Items[0].AlertType)
	})
	t.Run("filter by severity", func(t *testing.T) {
		var l reference.List[reference.AlertType]
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/alert-types?severity=MEDIUM", nurse, "", &l).StatusCode)
		require.NotEmpty(t, l.Items)
		for _, a := range l.Items {
			require.Equal(t, "MEDIUM", a.Severity)
		}
	})
	t.Run("one alert type", func(t *testing.T) {
		var a reference.AlertType
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/alert-types/CARDIAC_ARREST", nurse, "", &a).StatusCode)
		require.Equal(t, "CRITICAL", a.Severity)
		require.Equal(t, []string{"EMERGENCY_DOCTOR", "CARDIOLOGIST"}, []string(a.Roles))
	})
	t.Run("roles", func(t *testing.T) {
		var l reference.List[reference.Role]
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/roles", nurse, "", &l).StatusCode)
		var failsafe []string
		for _, r := range l.Items {
			if r.IsFailsafe {
				failsafe = append(failsafe, r.Role)
			}
		}
		require.Equal(t, []string{"CHARGE_NURSE"}, failsafe)
	})
	t.Run("create then replace", func(t *testing.T) {
		var created, replaced, got reference.AlertType
		resp := s.call(t, "PUT", "/v1/alert-types/T_REF_ALERT", admin,
			`{"severity":"LOW","category":"TEST","description":"made by a test","requires_immediate_response":false,"roles":["NURSE","SURGEON"]}`, &created)
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		require.Equal(t, "/v1/alert-types/T_REF_ALERT", resp.Header.Get("Location"))
		require.Equal(t, []string{"NURSE", "SURGEON"}, []string(created.Roles))

		resp = s.call(t, "PUT", "/v1/alert-types/T_REF_ALERT", admin,
			`{"severity":"MEDIUM","category":"TEST","requires_immediate_response":true,"roles":["SURGEON"]}`, &replaced)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "MEDIUM", replaced.Severity)
		require.Empty(t, replaced.Description, "a PUT replaces the whole entry")
		require.False(t, replaced.UpdatedAt.Before(created.UpdatedAt))

		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/alert-types/T_REF_ALERT", nurse, "", &got).StatusCode)
		require.Equal(t, replaced.Roles, got.Roles)
		require.True(t, got.RequiresImmediateResponse)
	})

	good := `{"severity":"LOW","category":"TEST","requires_immediate_response":false,"roles":["NURSE"]}`
	refRun(t, s, []refCase{
		{"charge may not edit alert types", "PUT", "/v1/alert-types/T_REF_ALERT", charge, good, 403, ""},
		{"nurse may not edit alert types", "PUT", "/v1/alert-types/T_REF_ALERT", nurse, good, 403, ""},
		{"unknown severity", "PUT", "/v1/alert-types/T_REF_ALERT", admin, `{"severity":"SEVERE","category":"TEST","requires_immediate_response":false,"roles":["NURSE"]}`, 400, "severity"},
		{"empty roles", "PUT", "/v1/alert-types/T_REF_ALERT", admin, `{"severity":"LOW","category":"TEST","requires_immediate_response":false,"roles":[]}`, 400, "roles"},
		{"unknown role", "PUT", "/v1/alert-types/T_REF_ALERT", admin, `{"severity":"LOW","category":"TEST","requires_immediate_response":false,"roles":["NURSE","JUGGLER"]}`, 400, "roles"},
		{"unknown field", "PUT", "/v1/alert-types/T_REF_ALERT", admin, `{"severity":"LOW","colour":"red"}`, 400, "colour"},
		{"malformed name", "PUT", "/v1/alert-types/bad-name", admin, good, 400, "type"},
		{"unknown alert type", "GET", "/v1/alert-types/NO_SUCH_TYPE", nurse, "", 404, ""},
		{"limit too large", "GET", "/v1/alert-types?limit=201", nurse, "", 400, "limit"},
	})

	var unchanged reference.AlertType
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/alert-types/T_REF_ALERT", nurse, "", &unchanged).StatusCode)
	require.Equal(t, []string{"SURGEON"}, []string(unchanged.Roles), "refused writes change nothing")
}

func TestReference_Staff(t *testing.T) {
	s := startStack(t)
	admin, charge, nurse := s.login(t, "a01"), s.login(t, "c01"), s.login(t, "n01")
	created := refStaff(t, s, admin, "T-REF-S1", "NURSE", true)
	require.Equal(t, "staff", created.Access)
	require.Equal(t, "t-ref-s1", created.Login)
	self := s.login(t, "t-ref-s1")

	t.Run("reads never show a password hash", func(t *testing.T) {
		for _, path := range []string{"/v1/staff/T-REF-S1", "/v1/staff?limit=200"} {
			var raw json.RawMessage
			require.Equal(t, http.StatusOK, s.call(t, "GET", path, nurse, "", &raw).StatusCode)
			require.NotContains(t, string(raw), "password")
			require.NotContains(t, string(raw), "$2a$")
		}
	})
	t.Run("filter by role", func(t *testing.T) {
		var l reference.List[reference.Staff]
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/staff?role=CHARGE_NURSE", nurse, "", &l).StatusCode)
		var ids []string
		for _, m := range l.Items {
			ids = append(ids, m.ID)
		}
		require.Equal(t, []string{"C01", "C02", "C03"}, ids)
	})

	newStaff := func(id, login, role string) string {
		return `{"id":"` + id + `","login":"` + login + `","name":"X","role":"` + role + `","password":"` + demoPassword + `"}`
	}
	refRun(t, s, []refCase{
		{"nurse may not create staff", "POST", "/v1/staff", nurse, newStaff("T-REF-X", "t-ref-x", "NURSE"), 403, ""},
		{"charge may not create staff", "POST", "/v1/staff", charge, newStaff("T-REF-X", "t-ref-x", "NURSE"), 403, ""},
		{"duplicate login", "POST", "/v1/staff", admin, newStaff("T-REF-X", "n01", "NURSE"), 409, "login"},
		{"duplicate id", "POST", "/v1/staff", admin, newStaff("T-REF-S1", "t-ref-x", "NURSE"), 409, "id"},
		{"unknown role", "POST", "/v1/staff", admin, newStaff("T-REF-X", "t-ref-x", "JUGGLER"), 400, "role"},
		{"short password", "POST", "/v1/staff", admin, `{"id":"T-REF-X","login":"t-ref-x","name":"X","role":"NURSE","password":"1234567"}`, 400, "password"},
		{"unknown staff", "GET", "/v1/staff/T-REF-NOBODY", nurse, "", 404, ""},
		{"malformed staff id", "GET", "/v1/staff/bad%20id", nurse, "", 400, "id"},

		{"unknown field in PATCH", "PATCH", "/v1/staff/T-REF-S1", admin, `{"nickname":"Bo"}`, 400, "nickname"},
		{"password hash is not a field", "PATCH", "/v1/staff/T-REF-S1", admin, `{"password_hash":"x"}`, 400, "password_hash"},
		{"self may change own phone", "PATCH", "/v1/staff/T-REF-S1", self, `{"phone":"+447700900555","slack_user_id":"U0REF1"}`, 200, ""},
		{"self may not change own name", "PATCH", "/v1/staff/T-REF-S1", self, `{"name":"Boss"}`, 403, "name"},
		{"self may not raise own access", "PATCH", "/v1/staff/T-REF-S1", self, `{"access":"admin"}`, 403, "access"},
		{"charge may mark someone unavailable", "PATCH", "/v1/staff/T-REF-S1", charge, `{"available":false}`, 200, ""},
		{"charge may not change a phone", "PATCH", "/v1/staff/T-REF-S1", charge, `{"phone":"+447700900556"}`, 403, "phone"},
		{"nurse may not mark someone unavailable", "PATCH", "/v1/staff/T-REF-S1", nurse, `{"available":true}`, 403, "available"},
		{"admin unknown role", "PATCH", "/v1/staff/T-REF-S1", admin, `{"role":"JUGGLER"}`, 400, "role"},
		{"admin duplicate login", "PATCH", "/v1/staff/T-REF-S1", admin, `{"login":"n02"}`, 409, "login"},
		{"admin bad phone", "PATCH", "/v1/staff/T-REF-S1", admin, `{"phone":"call me"}`, 400, "phone"},
		{"patch unknown staff", "PATCH", "/v1/staff/T-REF-NOBODY", admin, `{"available":true}`, 404, ""},
		{"nurse may not delete staff", "DELETE", "/v1/staff/T-REF-S1", nurse, "", 403, ""},
	})

	t.Run("the allowed patches took effect, the refused ones did not", func(t *testing.T) {
		var m reference.Staff
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/staff/T-REF-S1", nurse, "", &m).StatusCode)
		require.Equal(t, "+447700900555", m.Phone)
		require.Equal(t, "U0REF1", m.SlackUserID)
		require.False(t, m.Available)
		require.Equal(t, "Test T-REF-S1", m.Name)
		require.Equal(t, "staff", m.Access)
		require.Equal(t, "NURSE", m.Role)
		require.Equal(t, "t-ref-s1", m.Login)
	})
	t.Run("admin changes anything", func(t *testing.T) {
		var m reference.Staff
		require.Equal(t, http.StatusOK, s.call(t, "PATCH", "/v1/staff/T-REF-S1", admin,
			`{"name":"Renamed","role":"SURGEON","email":"ref@example.org","available":true}`, &m).StatusCode)
		require.Equal(t, "Renamed", m.Name)
		require.Equal(t, "SURGEON", m.Role)
		require.Equal(t, "ref@example.org", m.Email)
		require.True(t, m.Available)
	})
	t.Run("self changes own password", func(t *testing.T) {
		self := s.login(t, "t-ref-s1") // the role change above ended the earlier session
		require.Equal(t, http.StatusOK, s.call(t, "PATCH", "/v1/staff/T-REF-S1", self, `{"password":"a-brand-new-password","current_password":"`+demoPassword+`"}`, nil).StatusCode)
		require.Equal(t, http.StatusUnauthorized, s.call(t, "POST", "/v1/auth/login", "", `{"login":"t-ref-s1","password":"`+demoPassword+`"}`, nil).StatusCode)
		require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/auth/login", "", `{"login":"t-ref-s1","password":"a-brand-new-password"}`, nil).StatusCode)
	})
	t.Run("the last admin cannot step down", func(t *testing.T) {
		refRun(t, s, []refCase{
			{"demote", "PATCH", "/v1/staff/A01", admin, `{"access":"staff"}`, 409, "access"},
		})
	})
	t.Run("delete", func(t *testing.T) {
		refRun(t, s, []refCase{
			{"admin deletes", "DELETE", "/v1/staff/T-REF-S1", admin, "", 204, ""},
			{"gone", "GET", "/v1/staff/T-REF-S1", nurse, "", 404, ""},
			{"deleting again", "DELETE", "/v1/staff/T-REF-S1", admin, "", 404, ""},
		})
	})
}

func TestReference_Rotations(t *testing.T) {
	s := startStack(t)
	admin, charge, nurse := s.login(t, "a01"), s.login(t, "c01"), s.login(t, "n01")
	// Unavailable, so the rotation never puts anyone on call for other tests.
	refStaff(t, s, admin, "T-REF-R1", "NURSE", false)

	var rot reference.Rotation
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/rotations", charge,
		`{"role":"NURSE","staff_id":"T-REF-R1","shift":"NIGHT","weekdays":[7,6]}`, &rot).StatusCode)
	require.Equal(t, []int64{6, 7}, []int64(rot.Weekdays))

	var everyDay reference.Rotation
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/rotations", admin,
		`{"role":"NURSE","staff_id":"T-REF-R1","shift":"DAY"}`, &everyDay).StatusCode)
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7}, []int64(everyDay.Weekdays), "weekdays default to every day")

	var l reference.List[reference.Rotation]
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/rotations?staff_id=T-REF-R1", nurse, "", &l).StatusCode)
	require.Len(t, l.Items, 2)
	require.Equal(t, rot.ID, l.Items[0].ID)

	rotation := func(role, staff, shift, weekdays string) string {
		return `{"role":"` + role + `","staff_id":"` + staff + `","shift":"` + shift + `","weekdays":` + weekdays + `}`
	}
	refRun(t, s, []refCase{
		{"nurse may not create rotations", "POST", "/v1/rotations", nurse, rotation("NURSE", "T-REF-R1", "EVENING", "[1]"), 403, ""},
		{"duplicate shift", "POST", "/v1/rotations", charge, rotation("NURSE", "T-REF-R1", "NIGHT", "[1]"), 409, "shift"},
		{"bad shift", "POST", "/v1/rotations", charge, rotation("NURSE", "T-REF-R1", "MORNING", "[1]"), 400, "shift"},
		{"weekday 8", "POST", "/v1/rotations", charge, rotation("NURSE", "T-REF-R1", "EVENING", "[1,8]"), 400, "weekdays"},
		{"unknown role", "POST", "/v1/rotations", charge, rotation("JUGGLER", "T-REF-R1", "EVENING", "[1]"), 400, "role"},
		{"unknown staff", "POST", "/v1/rotations", charge, rotation("NURSE", "T-REF-NOBODY", "EVENING", "[1]"), 400, "staff_id"},
		{"nurse may not delete rotations", "DELETE", "/v1/rotations/" + jsonInt(rot.ID), nurse, "", 403, ""},
		{"charge deletes", "DELETE", "/v1/rotations/" + jsonInt(rot.ID), charge, "", 204, ""},
		{"deleting again", "DELETE", "/v1/rotations/" + jsonInt(rot.ID), charge, "", 404, ""},
		{"admin deletes", "DELETE", "/v1/rotations/" + jsonInt(everyDay.ID), admin, "", 204, ""},
		{"bad id", "DELETE", "/v1/rotations/first", charge, "", 400, "id"},
	})
}

// jsonInt formats a record id for a path.
func jsonInt(id int64) string {
	b, _ := json.Marshal(id)
	return string(b)
}

func TestReference_OverridesChangeWhoIsOnCall(t *testing.T) {
	s := startStack(t)
	admin, charge, nurse := s.login(t, "a01"), s.login(t, "c01"), s.login(t, "n01")
	refStaff(t, s, admin, "T-REF-O1", "SURGEON", true)

	// 1 January 2031 03:00 in London is a Wednesday night shift; nobody
	// rotates through CARDIOLOGIST at night.
	const at = "2031-01-01T03:00:00Z"
	onCall := func(t *testing.T, query string) reference.OnCallAnswer {
		t.Helper()
		var ans reference.OnCallAnswer
		resp := s.call(t, "GET", "/v1/oncall?"+query, nurse, "", &ans)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return ans
	}
	people := func(ans reference.OnCallAnswer, role string) []string {
		ids := []string{}
		for _, g := range ans.Roles {
			if g.Role == role {
				for _, p := range g.People {
					ids = append(ids, p.ID)
				}
			}
		}
		return ids
	}

	before := onCall(t, "role=CARDIOLOGIST&at="+at)
	require.Equal(t, "NIGHT", before.Shift)
	require.Equal(t, 3, before.Weekday)
	require.Equal(t, "Europe/London", before.TimeZone)
	require.Equal(t, "2031-01-01T03:00:00Z", before.LocalTime)
	require.Len(t, before.Roles, 1)
	require.Empty(t, people(before, "CARDIOLOGIST"))

	var ov reference.Override
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/oncall/overrides", charge,
		`{"role":"CARDIOLOGIST","staff_id":"T-REF-O1","starts_at":"2031-01-01T02:00:00Z","ends_at":"2031-01-01T04:00:00Z","reason":"cover"}`, &ov).StatusCode)
	t.Cleanup(func() {
		_, err := env.DB.ExecContext(context.Background(), `DELETE FROM oncall_overrides WHERE id = $1`, ov.ID)
		require.NoError(t, err)
	})
	require.Equal(t, "C01", ov.CreatedBy, "created_by is the caller")

	during := onCall(t, "role=CARDIOLOGIST&at="+at)
	require.Equal(t, []string{"T-REF-O1"}, people(during, "CARDIOLOGIST"))
	require.Equal(t, "SURGEON", during.Roles[0].People[0].Role, "the person's own role is shown")
	require.Empty(t, people(onCall(t, "role=CARDIOLOGIST&at=2031-01-01T04:00:00Z"), "CARDIOLOGIST"), "the end is exclusive")
	require.Equal(t, []string{"T-REF-O1"}, people(onCall(t, "role=CARDIOLOGIST&at=2031-01-01T04:00:00+01:00"), "CARDIOLOGIST"),
		"an offset whose + was not escaped is understood")

	everyone := onCall(t, "at="+at)
	require.Greater(t, len(everyone.Roles), 1)
	require.Equal(t, []string{"T-REF-O1"}, people(everyone, "CARDIOLOGIST"))
	require.Equal(t, []string{"N05", "N06"}, people(everyone, "NURSE"))
	require.Equal(t, []string{"C03"}, people(everyone, "CHARGE_NURSE"))

	now := onCall(t, "role=NURSE")
	require.NotEmpty(t, now.Shift, "at defaults to now")

	var listed reference.List[reference.Override]
	require.Equal(t, http.StatusOK, s.call(t, "GET",
		"/v1/oncall/overrides?role=CARDIOLOGIST&from=2031-01-01T00:00:00Z&to=2031-01-02T00:00:00Z", nurse, "", &listed).StatusCode)
	require.Len(t, listed.Items, 1)
	require.Equal(t, ov.ID, listed.Items[0].ID)
	require.Equal(t, http.StatusOK, s.call(t, "GET",
		"/v1/oncall/overrides?role=CARDIOLOGIST&from=2031-01-01T04:00:00Z&to=2031-01-02T00:00:00Z", nurse, "", &listed).StatusCode)
	require.Empty(t, listed.Items, "an override ending at from does not overlap")

	override := func(staff, starts, ends string) string {
		return `{"role":"CARDIOLOGIST","staff_id":"` + staff + `","starts_at":"` + starts + `","ends_at":"` + ends + `"}`
	}
	refRun(t, s, []refCase{
		{"nurse may not create overrides", "POST", "/v1/oncall/overrides", nurse, override("T-REF-O1", "2031-01-02T02:00:00Z", "2031-01-02T04:00:00Z"), 403, ""},
		{"ends before it starts", "POST", "/v1/oncall/overrides", charge, override("T-REF-O1", "2031-01-02T04:00:00Z", "2031-01-02T02:00:00Z"), 400, "ends_at"},
		{"bad RFC3339", "POST", "/v1/oncall/overrides", charge, override("T-REF-O1", "2031-01-02 02:00", "2031-01-02T04:00:00Z"), 400, "starts_at"},
		{"unknown staff", "POST", "/v1/oncall/overrides", charge, override("T-REF-NOBODY", "2031-01-02T02:00:00Z", "2031-01-02T04:00:00Z"), 400, "staff_id"},
		{"unknown role", "POST", "/v1/oncall/overrides", charge, `{"role":"JUGGLER","staff_id":"T-REF-O1","starts_at":"2031-01-02T02:00:00Z","ends_at":"2031-01-02T04:00:00Z"}`, 400, "role"},
		{"unknown on-call role", "GET", "/v1/oncall?role=JUGGLER", nurse, "", 400, "role"},
		{"bad at", "GET", "/v1/oncall?at=2031-01-01", nurse, "", 400, "at"},
		{"bad from", "GET", "/v1/oncall/overrides?from=soon", nurse, "", 400, "from"},
		{"nurse may not delete overrides", "DELETE", "/v1/oncall/overrides/" + jsonInt(ov.ID), nurse, "", 403, ""},
		{"charge deletes", "DELETE", "/v1/oncall/overrides/" + jsonInt(ov.ID), charge, "", 204, ""},
		{"deleting again", "DELETE", "/v1/oncall/overrides/" + jsonInt(ov.ID), charge, "", 404, ""},
	})

	require.Empty(t, people(onCall(t, "role=CARDIOLOGIST&at="+at), "CARDIOLOGIST"), "deleting the override restores the rotation")
}

func TestReference_EscalationPolicies(t *testing.T) {
	s := startStack(t)
	admin, charge, nurse := s.login(t, "a01"), s.login(t, "c01"), s.login(t, "n01")
	refDeleteAlertType(t, "T_REF_POLICY")
	require.Equal(t, http.StatusCreated, s.call(t, "PUT", "/v1/alert-types/T_REF_POLICY", admin,
		`{"severity":"LOW","category":"TEST","requires_immediate_response":false,"roles":["NURSE"]}`, nil).StatusCode)

	t.Run("severity defaults are listed and end at the failsafe", func(t *testing.T) {
		var l reference.List[reference.Policy]
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/escalation-policies", nurse, "", &l).StatusCode)
		ids := map[string]bool{}
		for _, p := range l.Items {
			ids[p.ID] = true
			require.Equal(t, reference.TargetFailsafe, p.Steps[len(p.Steps)-1].Target, p.ID)
		}
		for _, sev := range reference.Severities {
			require.True(t, ids["severity:"+sev], sev)
		}
	})

	t.Run("replace a severity default and put it back", func(t *testing.T) {
		var orig, replaced reference.Policy
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/escalation-policies/severity:LOW", nurse, "", &orig).StatusCode)
		t.Cleanup(func() {
			body, err := json.Marshal(reference.PolicyInput{Steps: orig.Steps, StartReminderSeconds: &orig.StartReminderSeconds})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, s.call(t, "PUT", "/v1/escalation-policies/severity:LOW", admin, string(body), nil).StatusCode)
		})
		resp := s.call(t, "PUT", "/v1/escalation-policies/severity:LOW", admin,
			`{"steps":[{"wait_seconds":1800,"target":"next_in_role"},{"wait_seconds":900,"target":"role","role":"EMERGENCY_DOCTOR"},{"wait_seconds":3600,"target":"failsafe"}],"start_reminder_seconds":3000}`, &replaced)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "LOW", replaced.Severity)
		require.Len(t, replaced.Steps, 3)
		require.Equal(t, "EMERGENCY_DOCTOR", replaced.Steps[1].Role)
		require.Equal(t, 3000, replaced.StartReminderSeconds)
	})

	t.Run("an alert type's own policy", func(t *testing.T) {
		const path = "/v1/escalation-policies/alert_type:T_REF_POLICY"
		var created, got reference.Policy
		resp := s.call(t, "PUT", path, admin, `{"steps":[{"wait_seconds":60,"target":"failsafe"}]}`, &created)
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		require.Equal(t, path, resp.Header.Get("Location"))
		require.Equal(t, "T_REF_POLICY", created.AlertType)
		require.Equal(t, reference.DefaultStartReminderSeconds, created.StartReminderSeconds)

		require.Equal(t, http.StatusOK, s.call(t, "PUT", path, admin,
			`{"steps":[{"wait_seconds":30,"target":"next_in_role"},{"wait_seconds":60,"target":"failsafe"}],"start_reminder_seconds":120}`, nil).StatusCode)
		require.Equal(t, http.StatusOK, s.call(t, "GET", path, nurse, "", &got).StatusCode)
		require.Len(t, got.Steps, 2)
		require.Equal(t, 120, got.StartReminderSeconds)

		refRun(t, s, []refCase{
			{"delete the override", "DELETE", path, admin, "", 204, ""},
			{"gone", "GET", path, nurse, "", 404, ""},
			{"deleting again", "DELETE", path, admin, "", 404, ""},
		})
	})

	steps := func(s string) string { return `{"steps":` + s + `}` }
	good := steps(`[{"wait_seconds":60,"target":"failsafe"}]`)
	refRun(t, s, []refCase{
		{"charge may not edit policies", "PUT", "/v1/escalation-policies/severity:LOW", charge, good, 403, ""},
		{"last step is not failsafe", "PUT", "/v1/escalation-policies/severity:LOW", admin, steps(`[{"wait_seconds":60,"target":"failsafe"},{"wait_seconds":60,"target":"next_in_role"}]`), 400, "steps"},
		{"wait_seconds 5", "PUT", "/v1/escalation-policies/severity:LOW", admin, steps(`[{"wait_seconds":5,"target":"failsafe"}]`), 400, "steps[0].wait_seconds"},
		{"eleven steps", "PUT", "/v1/escalation-policies/severity:LOW", admin, steps("[" + strings.Repeat(`{"wait_seconds":60,"target":"next_in_role"},`, 10) + `{"wait_seconds":60,"target":"failsafe"}]`), 400, "steps"},
		{"role target without a role", "PUT", "/v1/escalation-policies/severity:LOW", admin, steps(`[{"wait_seconds":60,"target":"role"},{"wait_seconds":60,"target":"failsafe"}]`), 400, "steps[0].role"},
		{"unknown step role", "PUT", "/v1/escalation-policies/severity:LOW", admin, steps(`[{"wait_seconds":60,"target":"role","role":"JUGGLER"},{"wait_seconds":60,"target":"failsafe"}]`), 400, "steps[0].role"},
		{"unknown target", "PUT", "/v1/escalation-policies/severity:LOW", admin, steps(`[{"wait_seconds":60,"target":"everyone"},{"wait_seconds":60,"target":"failsafe"}]`), 400, "steps[0].target"},
		{"unknown step field", "PUT", "/v1/escalation-policies/severity:LOW", admin, steps(`[{"wait_seconds":60,"target":"failsafe","channel":"sms"}]`), 400, "channel"},
		{"reminder under a minute", "PUT", "/v1/escalation-policies/severity:LOW", admin, `{"steps":[{"wait_seconds":60,"target":"failsafe"}],"start_reminder_seconds":59}`, 400, "start_reminder_seconds"},
		{"unknown alert type", "PUT", "/v1/escalation-policies/alert_type:T_REF_NOTHING", admin, good, 400, "id"},
		{"malformed id", "PUT", "/v1/escalation-policies/LOW", admin, good, 400, "id"},
		{"severity defaults cannot be deleted", "DELETE", "/v1/escalation-policies/severity:LOW", admin, "", 409, "id"},
		{"charge may not delete policies", "DELETE", "/v1/escalation-policies/alert_type:T_REF_POLICY", charge, "", 403, ""},
		{"unknown policy", "GET", "/v1/escalation-policies/alert_type:T_REF_NOTHING", nurse, "", 404, ""},
	})
}

func TestReference_APIKeys(t *testing.T) {
	s := startStack(t)
	admin, charge := s.login(t, "a01"), s.login(t, "c01")

	var created api.CreatedAPIKey
	resp := s.call(t, "POST", "/v1/api-keys", admin, `{"name":"reference test monitor"}`, &created)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.True(t, strings.HasPrefix(created.Key, "vk_"), created.Key)
	require.Equal(t, created.Key[:len(created.Prefix)], created.Prefix)
	require.Positive(t, created.ID)
	require.Nil(t, created.RevokedAt)

	listed := func() (reference.APIKey, string) {
		t.Helper()
		var raw json.RawMessage
		require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/api-keys?limit=200", admin, "", &raw).StatusCode)
		var l reference.List[reference.APIKey]
		require.NoError(t, json.Unmarshal(raw, &l))
		for _, k := range l.Items {
			if k.ID == created.ID {
				return k, string(raw)
			}
		}
		require.FailNow(t, "the key is not listed")
		return reference.APIKey{}, ""
	}
	k, raw := listed()
	require.Equal(t, created.Prefix, k.Prefix)
	require.Equal(t, "reference test monitor", k.Name)
	require.NotContains(t, raw, created.Key, "the plaintext is shown once, never again")
	require.NotContains(t, raw, `"key"`)
	require.NotContains(t, raw, "hash")

	refRun(t, s, []refCase{
		{"charge may not create keys", "POST", "/v1/api-keys", charge, `{"name":"x"}`, 403, ""},
		{"charge may not list keys", "GET", "/v1/api-keys", charge, "", 403, ""},
		{"charge may not revoke keys", "DELETE", "/v1/api-keys/" + jsonInt(created.ID), charge, "", 403, ""},
		{"name is required", "POST", "/v1/api-keys", admin, `{}`, 400, "name"},
		{"unknown field", "POST", "/v1/api-keys", admin, `{"name":"x","key":"vk_mine"}`, 400, "key"},
		{"revoke", "DELETE", "/v1/api-keys/" + jsonInt(created.ID), admin, "", 204, ""},
		{"revoking again is fine", "DELETE", "/v1/api-keys/" + jsonInt(created.ID), admin, "", 204, ""},
		{"unknown key", "DELETE", "/v1/api-keys/999999999", admin, "", 404, ""},
	})
	k, _ = listed()
	require.NotNil(t, k.RevokedAt)
}
