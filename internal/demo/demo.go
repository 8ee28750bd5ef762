// Package demo seeds the demo hospital used by `vigil dev`: staff and
// rotations (written by the reference store, which owns those tables).
//
// The staff are modelled on the 24 employees of the reference seed (six
// nurses, four emergency doctors, twelve specialists, two biomedical
// engineers) plus three charge nurses, who are the failsafe of every
// escalation, and one administrator. Names are invented; e-mail addresses
// use the reserved .invalid domain and phone numbers the Ofcom drama range,
// so nothing can reach a real person.
package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/bcrypt"

	"github.com/vigil-health/vigil/internal/reference"
)

// ErrEmptyPassword is returned by SeedStaff when asked to give the demo
// accounts an empty password.
var ErrEmptyPassword = errors.New("demo password is empty")

// Shift names as stored in rotations.shift.
const (
	day     = "DAY"
	evening = "EVENING"
	night   = "NIGHT"
)

// member is one demo staff row and the shifts they work, every day of the
// week, for their role.
type member struct {
	id     string
	name   string
	role   string
	access string
	shifts []string
}

// staff is the demo hospital: ids, invented names, roles, access and shifts.
// Logins are the lower-cased ids, e-mails <login>@demo-hospital.invalid and
// phones +447700900001 onwards in this order.
var staff = []member{
	{"N01", "Amelia Hart", "NURSE", "staff", []string{day}},
	{"N02", "Oliver Bennett", "NURSE", "staff", []string{day}},
	{"N03", "Priya Raman", "NURSE", "staff", []string{evening}},
	{"N04", "Thomas Whitlock", "NURSE", "staff", []string{evening}},
	{"N05", "Grace Okafor", "NURSE", "staff", []string{night}},
	{"N06", "Daniel Moreau", "NURSE", "staff", []string{night}},
	{"D01", "Dr Hannah Lindqvist", "EMERGENCY_DOCTOR", "staff", []string{day}},
	{"D02", "Dr Samuel Achterberg", "EMERGENCY_DOCTOR", "staff", []string{evening}},
	{"D03", "Dr Fatima Qureshi", "EMERGENCY_DOCTOR", "staff", []string{night}},
	{"D04", "Dr Marcus Ellery", "EMERGENCY_DOCTOR", "staff", []string{day}},
	{"S01", "Dr Eleanor Vance", "CARDIOLOGIST", "staff", []string{day}},
	{"S02", "Dr Rajesh Menon", "CARDIOLOGIST", "staff", []string{evening}},
	{"S03", "Dr Isabel Carrow", "NEUROLOGIST", "staff", []string{day}},
	{"S04", "Dr Tobias Fenwick", "NEUROLOGIST", "staff", []string{evening}},
	{"S05", "Dr Miriam Osei", "SURGEON", "staff", []string{day}},
	{"S06", "Dr Henry Castellan", "SURGEON", "staff", []string{evening}},
	{"S07", "Dr Clara Dunmore", "OBSTETRICIAN", "staff", []string{day}},
	{"S08", "Dr Aisha Bellamy", "OBSTETRICIAN", "staff", []string{evening}},
	{"S09", "Dr Lucas Pembridge", "PULMONOLOGIST", "staff", []string{day}},
	{"S10", "Dr Naomi Strand", "PSYCHIATRIST", "staff", []string{day}},
	{"S11", "Dr Victor Halloran", "ENDOCRINOLOGIST", "staff", []string{day}},
	{"S12", "Dr Yasmin Farouk", "INFECTIOUS_DISEASE", "staff", []string{day}},
	{"E01", "Ben Thackeray", "BIOMEDICAL_ENGINEER", "staff", []string{day}},
	{"E02", "Leah Gallagher", "BIOMEDICAL_ENGINEER", "staff", []string{evening}},
	{"C01", "Rosa Delgado", "CHARGE_NURSE", "charge", []string{day}},
	{"C02", "Patrick Doyle", "CHARGE_NURSE", "charge", []string{evening}},
	{"C03", "Joanna Kowalczyk", "CHARGE_NURSE", "charge", []string{night}},
	{"A01", "Sophie Marchetti", "NURSE", "admin", nil},
}

// SeedStaff inserts the demo staff, all with password, and their rotations.
// It is idempotent: people who already exist (by id or login) are left as
// they are, and rotations are only added for the people inserted now, so a
// rota edited after seeding is not restored. It returns how many staff rows
// it inserted.
func SeedStaff(ctx context.Context, db *sqlx.DB, password string) (int, error) {
	if db == nil {
		return 0, errors.New("seed demo staff: no database")
	}
	if password == "" {
		return 0, ErrEmptyPassword
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return 0, fmt.Errorf("hash demo password: %w", err)
	}

	members := make([]reference.SeedMember, len(staff))
	for i, m := range staff {
		login := strings.ToLower(m.id)
		members[i] = reference.SeedMember{
			ID: m.id, Login: login, Name: m.name, Role: m.role, Access: m.access,
			Email: login + "@demo-hospital.invalid", Phone: fmt.Sprintf("+447700900%03d", i+1),
			Shifts: m.shifts,
		}
	}
	n, err := (&reference.Store{DB: db}).SeedStaff(ctx, members, string(hash))
	if err != nil {
		return 0, fmt.Errorf("seed demo staff: %w", err)
	}
	return n, nil
}
