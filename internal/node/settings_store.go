package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/database"
)

const settingsColumns = `node_id, common_name, long_name, hospital_information_system, import_interface,
	root_ids, format_ids, threshold_hours_failure, notification_interval_weeks, consecutive_import_days,
	labels, mail_language, created_at, updated_at`

const contactColumns = `id, node_id, role, title, first_name, last_name, email, main_contact, unsubscribed, created_at, updated_at`

// upsertSettings inserts or replaces a node's settings; $13 says whether
// an existing mail_language is replaced (the mapping JSON has none).
const upsertSettings = `
	INSERT INTO node_settings (node_id, common_name, long_name, hospital_information_system, import_interface,
		root_ids, format_ids, threshold_hours_failure, notification_interval_weeks, consecutive_import_days,
		labels, mail_language)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
	ON CONFLICT (node_id) DO UPDATE SET
		common_name = EXCLUDED.common_name, long_name = EXCLUDED.long_name,
		hospital_information_system = EXCLUDED.hospital_information_system,
		import_interface = EXCLUDED.import_interface, root_ids = EXCLUDED.root_ids, format_ids = EXCLUDED.format_ids,
		threshold_hours_failure = EXCLUDED.threshold_hours_failure,
		notification_interval_weeks = EXCLUDED.notification_interval_weeks,
		consecutive_import_days = EXCLUDED.consecutive_import_days, labels = EXCLUDED.labels,
		mail_language = CASE WHEN $13 THEN EXCLUDED.mail_language ELSE node_settings.mail_language END,
		updated_at = now()
	RETURNING ` + settingsColumns + `, (xmax = 0) AS inserted`

type upserted struct {
	Settings
	Inserted bool `db:"inserted"`
}

func upsert(ctx context.Context, q sqlx.QueryerContext, s Settings, replaceLanguage bool) (upserted, error) {
	var out upserted
	err := sqlx.GetContext(ctx, q, &out, upsertSettings, s.NodeID, s.CommonName, s.LongName, s.HospitalInformationSystem,
		s.ImportInterface, s.RootIDs, s.FormatIDs, s.ThresholdHoursFailure, s.NotificationIntervalWeeks,
		s.ConsecutiveImportDays, nonNil(s.Labels), s.MailLanguage, replaceLanguage)
	out.normalize()
	return out, err
}

// GetSettings returns a node's stored settings; ErrNotFound when it has none.
func (s *Store) GetSettings(ctx context.Context, nodeID string) (Settings, error) {
	out, err := database.Get[Settings](ctx, s.DB, ErrNotFound, "get node settings", `SELECT `+settingsColumns+` FROM node_settings WHERE node_id = $1`, nodeID)
	if err != nil {
		return out, err
	}
	out.normalize()
	return out, nil
}

// PutSettings validates st and stores it, replacing any settings of the node;
// created says whether there were none. A validation failure is a
// *FieldError.
func (s *Store) PutSettings(ctx context.Context, st Settings) (out Settings, created bool, err error) {
	if fe := st.Validate(); fe != nil {
		return st, false, fe
	}
	u, err := upsert(ctx, s.DB, st, true)
	if err != nil {
		return st, false, fmt.Errorf("store node settings: %w", err)
	}
	return u.Settings, u.Inserted, nil
}

// UpdateSettings changes a node's stored settings with change, under a row lock so
// concurrent updates do not undo each other, and validates the result. An
// error from change (a *FieldError, say) or from validation is returned
// as is; ErrNotFound when the node has no settings.
func (s *Store) UpdateSettings(ctx context.Context, nodeID string, change func(*Settings) error) (Settings, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return Settings{}, fmt.Errorf("update node settings: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	st, err := database.Get[Settings](ctx, tx, ErrNotFound, "lock node settings",
		`SELECT `+settingsColumns+` FROM node_settings WHERE node_id = $1 FOR UPDATE`, nodeID)
	if err != nil {
		return st, err
	}
	if err := change(&st); err != nil {
		return st, err
	}
	st.NodeID = nodeID
	if fe := st.Validate(); fe != nil {
		return st, fe
	}
	u, err := upsert(ctx, tx, st, true)
	if err != nil {
		return st, fmt.Errorf("update node settings: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return st, fmt.Errorf("commit node settings: %w", err)
	}
	return u.Settings, nil
}

// DeleteSettings removes a node's settings (the node is then monitored with the
// defaults); its contacts stay. ErrNotFound when it had none.
func (s *Store) DeleteSettings(ctx context.Context, nodeID string) error {
	res, err := s.DB.ExecContext(ctx, `DELETE FROM node_settings WHERE node_id = $1`, nodeID)
	if err != nil {
		return fmt.Errorf("delete node settings: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ImportSettings stores every node's settings (from ParseMapping) in one
// transaction: all of them or none. A stored mail language is kept. It
// returns how many nodes got settings for the first time and how many had
// theirs replaced.
func (s *Store) ImportSettings(ctx context.Context, nodes []Settings) (created, updated int, err error) {
	for i := range nodes {
		if fe := nodes[i].Validate(); fe != nil {
			return 0, 0, &FieldError{Field: nodes[i].NodeID + "." + fe.Field, Message: fe.Message}
		}
	}
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("import node settings: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, n := range nodes {
		u, err := upsert(ctx, tx, n, false)
		if err != nil {
			return 0, 0, fmt.Errorf("import node %s: %w", n.NodeID, err)
		}
		if u.Inserted {
			created++
		} else {
			updated++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("commit node settings import: %w", err)
	}
	return created, updated, nil
}

// Contacts returns a node's contacts: ED before IT, then by last and first
// name.
func (s *Store) Contacts(ctx context.Context, nodeID string) ([]Contact, error) {
	return database.SelectEach(ctx, s.DB, (*Contact).normalize, "list node contacts", `SELECT `+contactColumns+` FROM node_contacts WHERE node_id = $1
		ORDER BY role, last_name, first_name, id`, nodeID)
}

// GetContact returns one contact of a node; ErrNotFound when there is none.
func (s *Store) GetContact(ctx context.Context, nodeID string, id int64) (Contact, error) {
	c, err := database.Get[Contact](ctx, s.DB, ErrNotFound, "get node contact",
		`SELECT `+contactColumns+` FROM node_contacts WHERE node_id = $1 AND id = $2`, nodeID, id)
	if err != nil {
		return c, err
	}
	c.normalize()
	return c, nil
}

// CreateContact validates and stores a new contact; a *FieldError, or
// ErrDuplicate when the node has a contact with the same role and e-mail.
func (s *Store) CreateContact(ctx context.Context, c Contact) (Contact, error) {
	if fe := c.Validate(); fe != nil {
		return c, fe
	}
	var out Contact
	err := s.DB.GetContext(ctx, &out, `
		INSERT INTO node_contacts (node_id, role, title, first_name, last_name, email, main_contact, unsubscribed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		RETURNING `+contactColumns,
		c.NodeID, c.Role, c.Title, c.FirstName, c.LastName, c.Email, c.MainContact, c.Unsubscribed)
	if err != nil {
		return c, contactError("create node contact", err)
	}
	out.normalize()
	return out, nil
}

// UpdateContact changes a contact with change under a row lock and
// validates the result; errors as CreateContact, and ErrNotFound.
func (s *Store) UpdateContact(ctx context.Context, nodeID string, id int64, change func(*Contact) error) (Contact, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return Contact{}, fmt.Errorf("update node contact: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	c, err := database.Get[Contact](ctx, tx, ErrNotFound, "lock node contact",
		`SELECT `+contactColumns+` FROM node_contacts WHERE node_id = $1 AND id = $2 FOR UPDATE`, nodeID, id)
	if err != nil {
		return c, err
	}
	if err := change(&c); err != nil {
		return c, err
	}
	c.ID, c.NodeID = id, nodeID
	if fe := c.Validate(); fe != nil {
		return c, fe
	}
	var out Contact
	if err := tx.GetContext(ctx, &out, `
		UPDATE node_contacts SET role = $3, title = $4, first_name = $5, last_name = $6, email = $7,
			main_contact = $8, unsubscribed = $9, updated_at = now()
		WHERE node_id = $1 AND id = $2
		RETURNING `+contactColumns,
		nodeID, id, c.Role, c.Title, c.FirstName, c.LastName, c.Email, c.MainContact, c.Unsubscribed); err != nil {
		return c, contactError("update node contact", err)
	}
	if err := tx.Commit(); err != nil {
		return c, contactError("commit node contact", err)
	}
	out.normalize()
	return out, nil
}

// DeleteContact removes a contact; ErrNotFound when there is none.
func (s *Store) DeleteContact(ctx context.Context, nodeID string, id int64) error {
	res, err := s.DB.ExecContext(ctx, `DELETE FROM node_contacts WHERE node_id = $1 AND id = $2`, nodeID, id)
	if err != nil {
		return fmt.Errorf("delete node contact: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// contactError turns the unique index's violation into ErrDuplicate.
func contactError(what string, err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		return ErrDuplicate
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (s *Settings) normalize() {
	if s.Labels == nil {
		s.Labels = pq.StringArray{}
	}
	if s.CreatedAt != nil {
		t := s.CreatedAt.UTC()
		s.CreatedAt = &t
	}
	if s.UpdatedAt != nil {
		t := s.UpdatedAt.UTC()
		s.UpdatedAt = &t
	}
}

func (c *Contact) normalize() {
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
}

func nonNil(xs pq.StringArray) pq.StringArray {
	if xs == nil {
		return pq.StringArray{}
	}
	return xs
}
