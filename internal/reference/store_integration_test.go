//go:build integration

package reference_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/testenv"
)

// db is this package's fresh, migrated database with the demo staff seeded.
var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "reference", &db, seedDemo)) }

func store() *reference.Store { return &reference.Store{DB: db} }

func ptr[T any](v T) *T { return &v }

// count runs a COUNT query.
func count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.GetContext(context.Background(), &n, query, args...))
	return n
}

// requireField asserts err is a *FieldError naming field.
func requireField(t *testing.T, err error, field string) {
	t.Helper()
	var fe *reference.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, field, fe.Field)
}

// requireConflict asserts err is a *ConflictError naming field.
func requireConflict(t *testing.T, err error, field string) {
	t.Helper()
	var ce *reference.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, field, ce.Field)
}

// newStaff creates a staff member removed when the test ends.
func newStaff(t *testing.T, id, access string) reference.Staff {
	t.Helper()
	s, err := store().CreateStaff(context.Background(), reference.NewStaff{
		ID: id, Login: "login-" + id, Name: "Person " + id, Role: "NURSE", Access: access, Password: "a-good-password",
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := db.ExecContext(context.Background(), `DELETE FROM staff WHERE id = $1`, id)
		require.NoError(t, err)
	})
	return s
}

func TestStaffWritesMapConstraintsToFields(t *testing.T) {
	ctx := context.Background()
	created := newStaff(t, "T-S1", "")
	require.Equal(t, "staff", created.Access)
	require.True(t, created.Available)

	var hash string
	require.NoError(t, db.GetContext(ctx, &hash, `SELECT password_hash FROM staff WHERE id = 'T-S1'`))
	require.True(t, auth.CheckPassword(hash, "a-good-password"), "the password is stored as a bcrypt hash")

	tests := []struct {
		name     string
		in       reference.NewStaff
		conflict bool
		field    string
	}{
		{"duplicate id", reference.NewStaff{ID: "T-S1", Login: "fresh", Name: "x", Role: "NURSE", Password: "a-good-password"}, true, "id"},
		{"duplicate login", reference.NewStaff{ID: "T-S2", Login: "n01", Name: "x", Role: "NURSE", Password: "a-good-password"}, true, "login"},
		{"unknown role", reference.NewStaff{ID: "T-S3", Login: "t-s3", Name: "x", Role: "JUGGLER", Password: "a-good-password"}, false, "role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := store().CreateStaff(ctx, tt.in)
			if tt.conflict {
				requireConflict(t, err, tt.field)
			} else {
				requireField(t, err, tt.field)
			}
			require.Zero(t, count(t, `SELECT count(*) FROM staff WHERE id IN ('T-S2', 'T-S3')`))
		})
	}
}

func TestPatchStaff(t *testing.T) {
	ctx := context.Background()
	newStaff(t, "T-P1", "")
	admin := reference.Caller{ID: "A01", Access: "admin"}

	t.Run("admin changes fields, others stay", func(t *testing.T) {
		s, err := store().PatchStaff(ctx, admin, "T-P1", reference.StaffPatch{Name: ptr("  Renamed  "), Phone: ptr("+447700900777")})
		require.NoError(t, err)
		require.Equal(t, "Renamed", s.Name)
		require.Equal(t, "+447700900777", s.Phone)
		require.Equal(t, "login-T-P1", s.Login)
		require.Equal(t, "NURSE", s.Role)
	})
	t.Run("self changes own password", func(t *testing.T) {
		_, err := store().PatchStaff(ctx, reference.Caller{ID: "T-P1", Access: "staff"}, "T-P1", reference.StaffPatch{Password: ptr("another-password"), CurrentPassword: ptr("a-good-password")})
		require.NoError(t, err)
		var hash string
		require.NoError(t, db.GetContext(ctx, &hash, `SELECT password_hash FROM staff WHERE id = 'T-P1'`))
		require.True(t, auth.CheckPassword(hash, "another-password"))
	})
	t.Run("duplicate login", func(t *testing.T) {
		_, err := store().PatchStaff(ctx, admin, "T-P1", reference.StaffPatch{Login: ptr("n02")})
		requireConflict(t, err, "login")
	})
	t.Run("unknown role", func(t *testing.T) {
		_, err := store().PatchStaff(ctx, admin, "T-P1", reference.StaffPatch{Role: ptr("JUGGLER")})
		requireField(t, err, "role")
	})
	t.Run("unknown staff", func(t *testing.T) {
		_, err := store().PatchStaff(ctx, admin, "T-NOBODY", reference.StaffPatch{Available: ptr(false)})
		require.ErrorIs(t, err, reference.ErrNotFound)
	})
}

func TestTheLastAdminStays(t *testing.T) {
	ctx := context.Background()
	require.Equal(t, 1, count(t, `SELECT count(*) FROM staff WHERE access = 'admin'`), "A01 is the only seeded admin")
	admin := reference.Caller{ID: "A01", Access: "admin"}

	_, err := store().PatchStaff(ctx, admin, "A01", reference.StaffPatch{Access: ptr("staff"), Name: ptr("Demoted")})
	requireConflict(t, err, "access")
	err = store().DeleteStaff(ctx, "A01")
	requireConflict(t, err, "id")

	s, err := store().GetStaff(ctx, "A01")
	require.NoError(t, err)
	require.Equal(t, "admin", s.Access, "the refused change was rolled back")
	require.Equal(t, "Sophie Marchetti", s.Name, "the whole refused change was rolled back")

	// With a second admin, the first may step down.
	newStaff(t, "T-ADMIN", "admin")
	_, err = store().PatchStaff(ctx, admin, "T-ADMIN", reference.StaffPatch{Access: ptr("charge")})
	require.NoError(t, err)
}

func TestStaffWithIncidentsCannotBeDeleted(t *testing.T) {
	ctx := context.Background()
	newStaff(t, "T-D1", "")
	_, err := db.ExecContext(ctx, `
		INSERT INTO incidents (id, workflow_id, dedup_key_hash, alert_type, severity, patient_id, status, assigned_to, opened_at, last_alert_at)
		VALUES ('00000000-0000-0000-0000-0000000000d1', 'incident:d1', 'd1', 'FALL_DETECTED', 'HIGH', 'P1', 'ASSIGNED', 'T-D1', now(), now())`)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := db.ExecContext(context.Background(), `DELETE FROM incidents WHERE id = '00000000-0000-0000-0000-0000000000d1'`)
		require.NoError(t, err)
	})

	requireConflict(t, store().DeleteStaff(ctx, "T-D1"), "id")
	_, err = store().GetStaff(ctx, "T-D1")
	require.NoError(t, err, "the refused delete changed nothing")
	require.ErrorIs(t, store().DeleteStaff(ctx, "T-NOBODY"), reference.ErrNotFound)
}

func TestPutAlertTypeIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() {
		_, err := db.ExecContext(ctx, `DELETE FROM alert_types WHERE alert_type = 'T_REF_STORE'`)
		require.NoError(t, err)
	})
	in := reference.AlertTypeInput{Severity: "LOW", Category: "TEST", RequiresImmediateResponse: ptr(false), Roles: []string{"NURSE", "JUGGLER"}}
	_, _, err := store().PutAlertType(ctx, "T_REF_STORE", in)
	requireField(t, err, "roles")
	require.Zero(t, count(t, `SELECT count(*) FROM alert_types WHERE alert_type = 'T_REF_STORE'`))

	in.Roles = []string{"NURSE"}
	first, created, err := store().PutAlertType(ctx, "T_REF_STORE", in)
	require.NoError(t, err)
	require.True(t, created)

	in.Severity, in.Roles = "HIGH", []string{"SURGEON", "NURSE"}
	second, created, err := store().PutAlertType(ctx, "T_REF_STORE", in)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, "HIGH", second.Severity)
	require.Equal(t, []string{"SURGEON", "NURSE"}, []string(second.Roles), "order is kept")
	require.False(t, second.UpdatedAt.Before(first.UpdatedAt))
}

func TestPolicies(t *testing.T) {
	ctx := context.Background()
	_, _, err := store().PutAlertType(ctx, "T_REF_POLICY", reference.AlertTypeInput{
		Severity: "LOW", Category: "TEST", RequiresImmediateResponse: ptr(false), Roles: []string{"NURSE"},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := db.ExecContext(ctx, `DELETE FROM alert_types WHERE alert_type = 'T_REF_POLICY'`)
		require.NoError(t, err)
	})
	id := reference.PolicyID{AlertType: "T_REF_POLICY"}
	steps := []reference.Step{{WaitSeconds: 60, Target: reference.TargetRole, Role: "JUGGLER"}, {WaitSeconds: 60, Target: reference.TargetFailsafe}}

	_, _, err = store().PutPolicy(ctx, id, reference.PolicyInput{Steps: steps})
	requireField(t, err, "steps[0].role")
	_, _, err = store().PutPolicy(ctx, reference.PolicyID{AlertType: "T_REF_NOTHING"}, reference.PolicyInput{Steps: steps[1:]})
	requireField(t, err, "id")
	require.Zero(t, count(t, `SELECT count(*) FROM escalation_policies WHERE alert_type IS NOT NULL`))

	steps[0].Role = "SURGEON"
	p, created, err := store().PutPolicy(ctx, id, reference.PolicyInput{Steps: steps})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "alert_type:T_REF_POLICY", p.ID)
	require.Equal(t, "T_REF_POLICY", p.AlertType)
	require.Equal(t, reference.DefaultStartReminderSeconds, p.StartReminderSeconds)
	require.Equal(t, steps, p.Steps)

	got, err := store().GetPolicy(ctx, id)
	require.NoError(t, err)
	require.Equal(t, p.Steps, got.Steps)

	_, created, err = store().PutPolicy(ctx, id, reference.PolicyInput{Steps: steps[1:], StartReminderSeconds: ptr(120)})
	require.NoError(t, err)
	require.False(t, created)

	requireConflict(t, store().DeletePolicy(ctx, reference.PolicyID{Severity: "LOW"}), "id")
	require.NoError(t, store().DeletePolicy(ctx, id))
	require.ErrorIs(t, store().DeletePolicy(ctx, id), reference.ErrNotFound)
	_, err = store().GetPolicy(ctx, id)
	require.ErrorIs(t, err, reference.ErrNotFound)
}

func TestRotationsAndOverrides(t *testing.T) {
	ctx := context.Background()
	newStaff(t, "T-R1", "")

	r, err := store().CreateRotation(ctx, reference.RotationInput{Role: "NURSE", StaffID: "T-R1", Shift: "NIGHT", Weekdays: []int{6, 7}})
	require.NoError(t, err)
	require.Equal(t, []int64{6, 7}, []int64(r.Weekdays))
	_, err = store().CreateRotation(ctx, reference.RotationInput{Role: "NURSE", StaffID: "T-R1", Shift: "NIGHT"})
	requireConflict(t, err, "shift")
	_, err = store().CreateRotation(ctx, reference.RotationInput{Role: "NURSE", StaffID: "T-NOBODY", Shift: "DAY"})
	requireField(t, err, "staff_id")

	list, err := store().ListRotations(ctx, reference.RotationFilter{StaffID: "T-R1"}, reference.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	require.NoError(t, store().DeleteRotation(ctx, r.ID))
	require.ErrorIs(t, store().DeleteRotation(ctx, r.ID), reference.ErrNotFound)

	_, err = store().CreateOverride(ctx, reference.OverrideInput{Role: "JUGGLER", StaffID: "T-R1", StartsAt: "2031-01-01T10:00:00Z", EndsAt: "2031-01-01T12:00:00Z"}, "C01")
	requireField(t, err, "role")
	o, err := store().CreateOverride(ctx, reference.OverrideInput{Role: "CARDIOLOGIST", StaffID: "T-R1", StartsAt: "2031-01-01T10:00:00Z", EndsAt: "2031-01-01T12:00:00Z"}, "C01")
	require.NoError(t, err)
	require.Equal(t, "C01", o.CreatedBy)
	t.Cleanup(func() { _ = store().DeleteOverride(context.Background(), o.ID) })

	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	at := time.Date(2031, 1, 1, 11, 0, 0, 0, time.UTC)
	ans, err := store().OnCall(ctx, london, "CARDIOLOGIST", at)
	require.NoError(t, err)
	require.Equal(t, "DAY", ans.Shift)
	require.Equal(t, 3, ans.Weekday, "1 January 2031 is a Wednesday")
	require.Equal(t, "2031-01-01T11:00:00Z", ans.LocalTime)
	require.Len(t, ans.Roles, 1)
	require.Len(t, ans.Roles[0].People, 1)
	require.Equal(t, "T-R1", ans.Roles[0].People[0].ID)

	_, err = store().OnCall(ctx, london, "JUGGLER", at)
	requireField(t, err, "role")

	everyone, err := store().OnCall(ctx, london, "", at)
	require.NoError(t, err)
	require.Equal(t, count(t, `SELECT count(*) FROM staff_roles`), len(everyone.Roles))
}

func TestListsPage(t *testing.T) {
	ctx := context.Background()
	var seen []string
	p := reference.Page{Limit: 5}
	for {
		l, err := store().ListStaff(ctx, reference.StaffFilter{}, p)
		require.NoError(t, err)
		for _, s := range l.Items {
			seen = append(seen, s.ID)
		}
		if l.NextOffset == nil {
			break
		}
		p.Offset = *l.NextOffset
	}
	var all []string
	require.NoError(t, db.SelectContext(ctx, &all, `SELECT id FROM staff ORDER BY id`))
	require.Equal(t, all, seen, "pages cover every row once, in order")
}

func TestAPIKeys(t *testing.T) {
	ctx := context.Background()
	k, secret, err := store().CreateAPIKey(ctx, reference.APIKeyInput{Name: "monitor"})
	require.NoError(t, err)
	require.Equal(t, secret.Reveal()[:auth.APIKeyDisplayPrefixLength], k.Prefix)
	var hash []byte
	require.NoError(t, db.GetContext(ctx, &hash, `SELECT key_hash FROM api_keys WHERE id = $1`, k.ID))
	require.True(t, auth.CheckAPIKey(secret.Reveal(), hash))

	require.NoError(t, store().RevokeAPIKey(ctx, k.ID))
	l, err := store().ListAPIKeys(ctx, reference.Page{Limit: 200})
	require.NoError(t, err)
	require.NotEmpty(t, l.Items)
	first := l.Items[len(l.Items)-1].RevokedAt
	require.NotNil(t, first)
	require.NoError(t, store().RevokeAPIKey(ctx, k.ID), "revoking twice is fine")
	l, err = store().ListAPIKeys(ctx, reference.Page{Limit: 200})
	require.NoError(t, err)
	require.Equal(t, first, l.Items[len(l.Items)-1].RevokedAt, "the first revocation time is kept")
	require.ErrorIs(t, store().RevokeAPIKey(ctx, 1<<40), reference.ErrNotFound)
}

func seedDemo(ctx context.Context, db *sqlx.DB) error {
	_, err := demo.SeedStaff(ctx, db, "reference-test-password")
	return err
}
