package reference

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/vigil-health/vigil/internal/database"
)

// SeedMember is one person SeedStaff adds, with the shifts they work every
// day of the week for their role.
type SeedMember struct {
	ID     string
	Login  string
	Name   string
	Role   string
	Access string
	Email  string
	Phone  string
	Shifts []string
}

// SeedStaff adds members with passwordHash (a bcrypt hash) and their
// rotations, in one transaction. People who already exist (by id or login)
// are left as they are, and rotations are only added for the people added
// now, so a rota edited after seeding is not restored. It returns how many
// people it added. It is for demo and test data: it does not validate
// members as CreateStaff does.
func (st *Store) SeedStaff(ctx context.Context, members []SeedMember, passwordHash string) (int, error) {
	inserted := 0
	err := database.InTx(ctx, st.DB, func(tx *sqlx.Tx) error {
		for _, m := range members {
			res, err := tx.ExecContext(ctx, `
				INSERT INTO staff (id, login, name, role, access, email, phone, password_hash)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT DO NOTHING`,
				m.ID, m.Login, m.Name, m.Role, m.Access, m.Email, m.Phone, passwordHash)
			if err != nil {
				return fmt.Errorf("staff %s: %w", m.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("staff %s: %w", m.ID, err)
			}
			if n == 0 {
				continue
			}
			inserted++
			for _, shift := range m.Shifts {
				if _, err := tx.ExecContext(ctx, `
					INSERT INTO rotations (role, staff_id, shift)
					VALUES ($1, $2, $3)
					ON CONFLICT DO NOTHING`, m.Role, m.ID, shift); err != nil {
					return fmt.Errorf("rotation %s %s: %w", m.ID, shift, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("seed staff: %w", err)
	}
	return inserted, nil
}
