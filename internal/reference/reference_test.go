package reference

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
	"github.com/stretchr/testify/require"
)

// fieldOf returns the field named by err, which must be a *FieldError.
func fieldOf(t *testing.T, err error) string {
	t.Helper()
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	return fe.Field
}

func ptr[T any](v T) *T { return &v }

func TestParsePage(t *testing.T) {
	tests := []struct {
		name, limit, offset string
		want                Page
		field               string
	}{
		{"defaults", "", "", Page{Limit: 50}, ""},
		{"explicit", "10", "20", Page{Limit: 10, Offset: 20}, ""},
		{"max", "200", "0", Page{Limit: 200}, ""},
		{"too large", "201", "", Page{}, "limit"},
		{"zero", "0", "", Page{}, "limit"},
		{"not a number", "ten", "", Page{}, "limit"},
		{"negative offset", "", "-1", Page{}, "offset"},
		{"offset not a number", "", "x", Page{}, "offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePage(tt.limit, tt.offset)
			if tt.field != "" {
				require.Equal(t, tt.field, fieldOf(t, err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, p)
		})
	}
}

func TestNewList(t *testing.T) {
	tests := []struct {
		name      string
		items     []int
		page      Page
		wantItems []int
		wantNext  *int
	}{
		{"nil becomes empty", nil, Page{Limit: 2}, []int{}, nil},
		{"short page is the last", []int{1}, Page{Limit: 2}, []int{1}, nil},
		{"full page without extra is the last", []int{1, 2}, Page{Limit: 2}, []int{1, 2}, nil},
		{"extra item means more", []int{1, 2, 3}, Page{Limit: 2, Offset: 4}, []int{1, 2}, ptr(6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newList(tt.items, tt.page)
			require.Equal(t, tt.wantItems, l.Items)
			require.Equal(t, tt.wantNext, l.NextOffset)
			require.Equal(t, tt.page.Limit, l.Limit)
			require.Equal(t, tt.page.Offset, l.Offset)
		})
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"0", 0, false},
		{"-3", 0, false},
		{"abc", 0, false},
		{"9223372036854775808", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseID("id", tt.in)
			if !tt.ok {
				require.Equal(t, "id", fieldOf(t, err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestAlertTypeInputValidate(t *testing.T) {
	valid := func() AlertTypeInput {
		return AlertTypeInput{Severity: "HIGH", Category: "SAFETY", RequiresImmediateResponse: ptr(true), Roles: []string{"NURSE", "EMERGENCY_DOCTOR"}}
	}
	tests := []struct {
		name   string
		change func(*AlertTypeInput)
		field  string
	}{
		{"valid", func(*AlertTypeInput) {}, ""},
		{"unknown severity", func(in *AlertTypeInput) { in.Severity = "URGENT" }, "severity"},
		{"lower-case severity", func(in *AlertTypeInput) { in.Severity = "high" }, "severity"},
		{"blank category", func(in *AlertTypeInput) { in.Category = "  " }, "category"},
		{"NUL in description", func(in *AlertTypeInput) { in.Description = "a\x00b" }, "description"},
		{"multi-line description", func(in *AlertTypeInput) { in.Description = "line one\nline two" }, ""},
		{"missing immediate flag", func(in *AlertTypeInput) { in.RequiresImmediateResponse = nil }, "requires_immediate_response"},
		{"no roles", func(in *AlertTypeInput) { in.Roles = nil }, "roles"},
		{"empty roles", func(in *AlertTypeInput) { in.Roles = []string{} }, "roles"},
		{"malformed role", func(in *AlertTypeInput) { in.Roles = []string{"nurse"} }, "roles"},
		{"repeated role", func(in *AlertTypeInput) { in.Roles = []string{"NURSE", "NURSE"} }, "roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := valid()
			tt.change(&in)
			err := in.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.field, fieldOf(t, err))
		})
	}
}

func TestNewStaffValidate(t *testing.T) {
	valid := func() NewStaff {
		return NewStaff{ID: "T-1", Login: "t1", Name: "Test Person", Role: "NURSE", Password: "long-enough"}
	}
	tests := []struct {
		name   string
		change func(*NewStaff)
		field  string
	}{
		{"valid with defaults", func(*NewStaff) {}, ""},
		{"full", func(in *NewStaff) {
			in.Access, in.Email, in.Phone, in.SlackUserID = "charge", "t1@example.org", "+447700900999", "U012AB3CD"
		}, ""},
		{"missing id", func(in *NewStaff) { in.ID = "" }, "id"},
		{"bad id", func(in *NewStaff) { in.ID = "has space" }, "id"},
		{"long id", func(in *NewStaff) { in.ID = strings.Repeat("x", 33) }, "id"},
		{"missing login", func(in *NewStaff) { in.Login = "" }, "login"},
		{"login with space", func(in *NewStaff) { in.Login = "t 1" }, "login"},
		{"blank name", func(in *NewStaff) { in.Name = " " }, "name"},
		{"missing role", func(in *NewStaff) { in.Role = "" }, "role"},
		{"malformed role", func(in *NewStaff) { in.Role = "Nurse" }, "role"},
		{"bad access", func(in *NewStaff) { in.Access = "root" }, "access"},
		{"bad email", func(in *NewStaff) { in.Email = "nobody" }, "email"},
		{"bad phone", func(in *NewStaff) { in.Phone = "07700 900999" }, "phone"},
		{"bad slack id", func(in *NewStaff) { in.SlackUserID = "bob" }, "slack_user_id"},
		{"short password", func(in *NewStaff) { in.Password = "short" }, "password"},
		{"long password", func(in *NewStaff) { in.Password = strings.Repeat("p", 73) }, "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := valid()
			tt.change(&in)
			err := in.Validate()
			if tt.field != "" {
				require.Equal(t, tt.field, fieldOf(t, err))
				return
			}
			require.NoError(t, err)
			require.NotEmpty(t, in.Access)
			require.NotNil(t, in.Available)
		})
	}
}

func TestStaffPatchCheckAccess(t *testing.T) {
	admin := Caller{ID: "A01", Access: "admin"}
	charge := Caller{ID: "C01", Access: "charge"}
	nurse := Caller{ID: "N01", Access: "staff"}
	tests := []struct {
		name      string
		caller    Caller
		target    string
		patch     StaffPatch
		forbidden string
	}{
		{"admin changes everything", admin, "N02", StaffPatch{Name: ptr("x"), Access: ptr("admin"), Role: ptr("SURGEON"), Active: ptr(false)}, ""},
		{"admin resets, never sets, another's password", admin, "N02", StaffPatch{Password: ptr("new-password"), CurrentPassword: ptr("x")}, "password"},
		{"admin may not deactivate themselves", admin, "A01", StaffPatch{Active: ptr(false)}, "active"},
		{"charge marks someone unavailable", charge, "N02", StaffPatch{Available: ptr(false)}, ""},
		{"charge may not rename", charge, "N02", StaffPatch{Available: ptr(false), Name: ptr("x")}, "name"},
		{"charge may not change another's phone", charge, "N02", StaffPatch{Phone: ptr("+447700900999")}, "phone"},
		{"charge changes own phone", charge, "C01", StaffPatch{Phone: ptr("+447700900999"), Available: ptr(true)}, ""},
		{"self changes own contact details", nurse, "N01", StaffPatch{Phone: ptr("+447700900999"), SlackUserID: ptr("U1234"), Available: ptr(false), Password: ptr("new-password"), CurrentPassword: ptr("old-password")}, ""},
		{"self may not change own access", nurse, "N01", StaffPatch{Access: ptr("admin")}, "access"},
		{"self may not change own role", nurse, "N01", StaffPatch{Role: ptr("SURGEON")}, "role"},
		{"nurse may not mark another unavailable", nurse, "N02", StaffPatch{Available: ptr(false)}, "available"},
		{"nurse may not deactivate anyone", nurse, "N02", StaffPatch{Active: ptr(false)}, "active"},
		{"nurse may not change another's password", nurse, "N02", StaffPatch{Password: ptr("new-password")}, "password"},
		{"empty patch is allowed", nurse, "N02", StaffPatch{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.patch.CheckAccess(tt.caller, tt.target)
			if tt.forbidden == "" {
				require.NoError(t, err)
				return
			}
			var fe *ForbiddenError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tt.forbidden, fe.Field)
		})
	}
}

func TestStaffPatchValidate(t *testing.T) {
	tests := []struct {
		name  string
		patch StaffPatch
		field string
	}{
		{"empty", StaffPatch{}, ""},
		{"clear phone", StaffPatch{Phone: ptr("")}, ""},
		{"bad phone", StaffPatch{Phone: ptr("123")}, "phone"},
		{"blank name", StaffPatch{Name: ptr("")}, "name"},
		{"bad access", StaffPatch{Access: ptr("owner")}, "access"},
		{"short password", StaffPatch{Password: ptr("1234567")}, "password"},
		{"bad login", StaffPatch{Login: ptr("")}, "login"},
		{"bad role", StaffPatch{Role: ptr("x")}, "role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.patch.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.field, fieldOf(t, err))
		})
	}
}

func TestRotationInputValidate(t *testing.T) {
	tests := []struct {
		name     string
		in       RotationInput
		field    string
		weekdays []int
	}{
		{"weekdays default to every day", RotationInput{Role: "NURSE", StaffID: "N01", Shift: "DAY"}, "", []int{1, 2, 3, 4, 5, 6, 7}},
		{"weekdays are sorted and deduplicated", RotationInput{Role: "NURSE", StaffID: "N01", Shift: "NIGHT", Weekdays: []int{5, 1, 5}}, "", []int{1, 5}},
		{"weekday 8", RotationInput{Role: "NURSE", StaffID: "N01", Shift: "DAY", Weekdays: []int{1, 8}}, "weekdays", nil},
		{"weekday 0", RotationInput{Role: "NURSE", StaffID: "N01", Shift: "DAY", Weekdays: []int{0}}, "weekdays", nil},
		{"explicitly empty weekdays", RotationInput{Role: "NURSE", StaffID: "N01", Shift: "DAY", Weekdays: []int{}}, "weekdays", nil},
		{"bad shift", RotationInput{Role: "NURSE", StaffID: "N01", Shift: "MORNING"}, "shift", nil},
		{"missing role", RotationInput{StaffID: "N01", Shift: "DAY"}, "role", nil},
		{"missing staff", RotationInput{Role: "NURSE", Shift: "DAY"}, "staff_id", nil},
		{"malformed staff", RotationInput{Role: "NURSE", StaffID: "N 01", Shift: "DAY"}, "staff_id", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.field != "" {
				require.Equal(t, tt.field, fieldOf(t, err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.weekdays, tt.in.Weekdays)
		})
	}
}

func TestOverrideInputParse(t *testing.T) {
	valid := func() OverrideInput {
		return OverrideInput{Role: "NURSE", StaffID: "N01", StartsAt: "2026-11-22T09:00:00Z", EndsAt: "2026-11-22T12:00:00+01:00", Reason: "cover"}
	}
	tests := []struct {
		name   string
		change func(*OverrideInput)
		field  string
	}{
		{"valid", func(*OverrideInput) {}, ""},
		{"bad starts_at", func(in *OverrideInput) { in.StartsAt = "2026-11-22 09:00" }, "starts_at"},
		{"missing starts_at", func(in *OverrideInput) { in.StartsAt = "" }, "starts_at"},
		{"bad ends_at", func(in *OverrideInput) { in.EndsAt = "tomorrow" }, "ends_at"},
		{"ends before it starts", func(in *OverrideInput) { in.EndsAt = "2026-11-22T08:00:00Z" }, "ends_at"},
		{"ends when it starts", func(in *OverrideInput) { in.EndsAt = in.StartsAt }, "ends_at"},
		{"longer than 90 days", func(in *OverrideInput) { in.EndsAt = "2027-03-01T00:00:00Z" }, "ends_at"},
		{"missing role", func(in *OverrideInput) { in.Role = "" }, "role"},
		{"bad staff", func(in *OverrideInput) { in.StaffID = "x y" }, "staff_id"},
		{"control character in reason", func(in *OverrideInput) { in.Reason = "\x07" }, "reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := valid()
			tt.change(&in)
			start, end, err := in.Parse()
			if tt.field != "" {
				require.Equal(t, tt.field, fieldOf(t, err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, 2*60*60.0, end.Sub(start).Seconds())
		})
	}
}

func TestParsePolicyID(t *testing.T) {
	tests := []struct {
		in   string
		want PolicyID
		ok   bool
	}{
		{"severity:CRITICAL", PolicyID{Severity: "CRITICAL"}, true},
		{"alert_type:FALL_DETECTED", PolicyID{AlertType: "FALL_DETECTED"}, true},
		{"severity:URGENT", PolicyID{}, false},
		{"alert_type:fall", PolicyID{}, false},
		{"CRITICAL", PolicyID{}, false},
		{"role:NURSE", PolicyID{}, false},
		{"", PolicyID{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePolicyID(tt.in)
			if !tt.ok {
				require.Equal(t, "id", fieldOf(t, err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.in, got.String())
		})
	}
}

func TestPolicyInputValidate(t *testing.T) {
	failsafe := Step{WaitSeconds: 300, Target: TargetFailsafe}
	tests := []struct {
		name  string
		in    PolicyInput
		field string
	}{
		{"valid", PolicyInput{Steps: []Step{{WaitSeconds: 120, Target: TargetNextInRole}, {WaitSeconds: 60, Target: TargetRole, Role: "SURGEON"}, failsafe}}, ""},
		{"failsafe only", PolicyInput{Steps: []Step{failsafe}, StartReminderSeconds: ptr(60)}, ""},
		{"no steps", PolicyInput{}, "steps"},
		{"eleven steps", PolicyInput{Steps: append(make([]Step, 10), failsafe)}, "steps"},
		{"last step not failsafe", PolicyInput{Steps: []Step{{WaitSeconds: 120, Target: TargetNextInRole}}}, "steps"},
		{"wait 5 seconds", PolicyInput{Steps: []Step{{WaitSeconds: 5, Target: TargetNextInRole}, failsafe}}, "steps[0].wait_seconds"},
		{"wait longer than a day", PolicyInput{Steps: []Step{failsafe, {WaitSeconds: 86401, Target: TargetFailsafe}}}, "steps[1].wait_seconds"},
		{"unknown target", PolicyInput{Steps: []Step{{WaitSeconds: 60, Target: "everyone"}, failsafe}}, "steps[0].target"},
		{"role target without role", PolicyInput{Steps: []Step{{WaitSeconds: 60, Target: TargetRole}, failsafe}}, "steps[0].role"},
		{"role on a failsafe step", PolicyInput{Steps: []Step{{WaitSeconds: 60, Target: TargetFailsafe, Role: "NURSE"}}}, "steps[0].role"},
		{"short reminder", PolicyInput{Steps: []Step{failsafe}, StartReminderSeconds: ptr(59)}, "start_reminder_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.field != "" {
				require.Equal(t, tt.field, fieldOf(t, err))
				return
			}
			require.NoError(t, err)
			require.NotNil(t, tt.in.StartReminderSeconds)
		})
	}
}

func TestMapDBError(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		conflict bool
		field    string
	}{
		{"duplicate login", &pq.Error{Code: pqerror.UniqueViolation, Constraint: "staff_login_key"}, true, "login"},
		{"duplicate id", &pq.Error{Code: pqerror.UniqueViolation, Constraint: "staff_pkey"}, true, "id"},
		{"unknown role", &pq.Error{Code: pqerror.ForeignKeyViolation, Constraint: "staff_role_fkey", Message: `insert or update on table "staff" violates foreign key constraint "staff_role_fkey"`}, false, "role"},
		{"unknown staff in override", &pq.Error{Code: pqerror.ForeignKeyViolation, Constraint: "oncall_overrides_staff_id_fkey", Message: "insert or update on table"}, false, "staff_id"},
		{"unlisted check names the column", &pq.Error{Code: pqerror.NotNullViolation, Column: "name"}, false, "name"},
		{"wrapped", fmt.Errorf("outer: %w", &pq.Error{Code: pqerror.CheckViolation, Constraint: "oncall_overrides_check"}), false, "ends_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mapDBError("write", tt.err)
			if tt.conflict {
				var ce *ConflictError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, tt.field, ce.Field)
				return
			}
			require.Equal(t, tt.field, fieldOf(t, err))
		})
	}

	t.Run("a delete refused by a reference is a conflict", func(t *testing.T) {
		for _, constraint := range []string{"incidents_assigned_to_fkey", "some_later_fkey"} {
			err := mapDeleteError("delete", "id", &pq.Error{Code: pqerror.ForeignKeyViolation, Constraint: constraint})
			var ce *ConflictError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "id", ce.Field)
		}
		cause := errors.New("connection reset")
		require.ErrorIs(t, mapDeleteError("delete", "id", cause), cause)
	})
	t.Run("other errors are wrapped", func(t *testing.T) {
		cause := errors.New("connection reset")
		err := mapDBError("write", cause)
		require.ErrorIs(t, err, cause)
		var fe *FieldError
		require.False(t, errors.As(err, &fe))
	})
	t.Run("nil stays nil", func(t *testing.T) {
		require.NoError(t, mapDBError("write", nil))
	})
}
