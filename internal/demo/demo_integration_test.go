//go:build integration

package demo_test

import (
	"context"
	"os"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/testenv"
)

const password = "demo-test-password"

var (
	// db is this package's fresh, migrated database, seeded once by TestMain.
	db *sqlx.DB
	// firstSeed is how many staff rows the first SeedStaff call inserted.
	firstSeed int
)

func TestMain(m *testing.M) {
	os.Exit(testenv.RunDB(m, "demo", &db, func(ctx context.Context, db *sqlx.DB) (err error) {
		firstSeed, err = demo.SeedStaff(ctx, db, password)
		return err
	}))
}

func count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.GetContext(context.Background(), &n, query, args...))
	return n
}

func TestSeedStaffIsIdempotent(t *testing.T) {
	require.Equal(t, 28, firstSeed)
	staffBefore := count(t, `SELECT count(*) FROM staff`)
	rotationsBefore := count(t, `SELECT count(*) FROM rotations`)
	require.Equal(t, 28, staffBefore)

	n, err := demo.SeedStaff(context.Background(), db, password)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, staffBefore, count(t, `SELECT count(*) FROM staff`))
	require.Equal(t, rotationsBefore, count(t, `SELECT count(*) FROM rotations`))
}

func TestSeedStaffRejectsEmptyPassword(t *testing.T) {
	_, err := demo.SeedStaff(context.Background(), db, "")
	require.ErrorIs(t, err, demo.ErrEmptyPassword)
}

func TestSeededStaff(t *testing.T) {
	tests := []struct {
		id, login, role, access, email, phone string
	}{
		{"N01", "n01", "NURSE", "staff", "n01@demo-hospital.invalid", "+447700900001"},
		{"D04", "d04", "EMERGENCY_DOCTOR", "staff", "d04@demo-hospital.invalid", "+447700900010"},
		{"S01", "s01", "CARDIOLOGIST", "staff", "s01@demo-hospital.invalid", "+447700900011"},
		{"S12", "s12", "INFECTIOUS_DISEASE", "staff", "s12@demo-hospital.invalid", "+447700900022"},
		{"E02", "e02", "BIOMEDICAL_ENGINEER", "staff", "e02@demo-hospital.invalid", "+447700900024"},
		{"C03", "c03", "CHARGE_NURSE", "charge", "c03@demo-hospital.invalid", "+447700900027"},
		{"A01", "a01", "NURSE", "admin", "a01@demo-hospital.invalid", "+447700900028"},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			var got struct {
				Login     string `db:"login"`
				Name      string `db:"name"`
				Role      string `db:"role"`
				Access    string `db:"access"`
				Email     string `db:"email"`
				Phone     string `db:"phone"`
				Available bool   `db:"available"`
			}
			require.NoError(t, db.GetContext(context.Background(), &got, `
				SELECT login, name, role, access, email, phone, available
				FROM staff WHERE id = $1`, tc.id))
			require.Equal(t, tc.login, got.Login)
			require.NotEmpty(t, got.Name)
			require.Equal(t, tc.role, got.Role)
			require.Equal(t, tc.access, got.Access)
			require.Equal(t, tc.email, got.Email)
			require.Equal(t, tc.phone, got.Phone)
			require.True(t, got.Available)
		})
	}

	t.Run("role counts", func(t *testing.T) {
		var rows []struct {
			Role string `db:"role"`
			N    int    `db:"n"`
		}
		require.NoError(t, db.SelectContext(context.Background(), &rows,
			`SELECT role, count(*) AS n FROM staff WHERE access <> 'admin' GROUP BY role ORDER BY role`))
		got := map[string]int{}
		for _, r := range rows {
			got[r.Role] = r.N
		}
		require.Equal(t, map[string]int{
			"NURSE": 6, "EMERGENCY_DOCTOR": 4, "CARDIOLOGIST": 2, "NEUROLOGIST": 2,
			"SURGEON": 2, "OBSTETRICIAN": 2, "PULMONOLOGIST": 1, "PSYCHIATRIST": 1,
			"ENDOCRINOLOGIST": 1, "INFECTIOUS_DISEASE": 1, "BIOMEDICAL_ENGINEER": 2,
			"CHARGE_NURSE": 3,
		}, got)
	})
}

func TestEveryRoleHasDayCoverage(t *testing.T) {
	var roles []string
	require.NoError(t, db.SelectContext(context.Background(), &roles, `SELECT role FROM staff_roles ORDER BY role`))
	require.Len(t, roles, 12)
	for _, role := range roles {
		t.Run(role, func(t *testing.T) {
			require.Positive(t, count(t, `
				SELECT count(*) FROM rotations r JOIN staff s ON s.id = r.staff_id
				WHERE r.role = $1 AND r.shift = 'DAY' AND r.weekdays @> '{1,2,3,4,5,6,7}'`, role))
		})
	}
}

func TestRotations(t *testing.T) {
	tests := []struct {
		role  string
		shift string
		want  []string
	}{
		{"NURSE", "DAY", []string{"N01", "N02"}},
		{"NURSE", "EVENING", []string{"N03", "N04"}},
		{"NURSE", "NIGHT", []string{"N05", "N06"}},
		{"EMERGENCY_DOCTOR", "DAY", []string{"D01", "D04"}},
		{"EMERGENCY_DOCTOR", "EVENING", []string{"D02"}},
		{"EMERGENCY_DOCTOR", "NIGHT", []string{"D03"}},
		{"CHARGE_NURSE", "DAY", []string{"C01"}},
		{"CHARGE_NURSE", "EVENING", []string{"C02"}},
		{"CHARGE_NURSE", "NIGHT", []string{"C03"}},
		{"CARDIOLOGIST", "DAY", []string{"S01"}},
		{"CARDIOLOGIST", "EVENING", []string{"S02"}},
		{"OBSTETRICIAN", "EVENING", []string{"S08"}},
		{"PSYCHIATRIST", "EVENING", []string{}},
		{"BIOMEDICAL_ENGINEER", "DAY", []string{"E01"}},
		{"BIOMEDICAL_ENGINEER", "EVENING", []string{"E02"}},
	}
	for _, tc := range tests {
		t.Run(tc.role+" "+tc.shift, func(t *testing.T) {
			got := []string{}
			require.NoError(t, db.SelectContext(context.Background(), &got, `
				SELECT staff_id FROM rotations
				WHERE role = $1 AND shift = $2 AND weekdays @> '{1,2,3,4,5,6,7}'
				ORDER BY staff_id`, tc.role, tc.shift))
			require.Equal(t, tc.want, got)
		})
	}
	require.Zero(t, count(t, `SELECT count(*) FROM rotations WHERE staff_id = 'A01'`), "the admin has no rotation")
}

func TestSeededPasswordsVerify(t *testing.T) {
	var hashes []string
	require.NoError(t, db.SelectContext(context.Background(), &hashes, `SELECT DISTINCT password_hash FROM staff`))
	require.Len(t, hashes, 1, "one hash computed once and shared")

	tests := []struct {
		name     string
		password string
		ok       bool
	}{
		{"right password", password, true},
		{"wrong password", "password123", false},
		{"empty password", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := bcrypt.CompareHashAndPassword([]byte(hashes[0]), []byte(tc.password))
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, bcrypt.ErrMismatchedHashAndPassword)
			}
		})
	}
	cost, err := bcrypt.Cost([]byte(hashes[0]))
	require.NoError(t, err)
	require.Equal(t, bcrypt.DefaultCost, cost)
}
