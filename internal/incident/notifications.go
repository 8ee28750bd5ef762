package incident

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-health/vigil/internal/database"
)

// Notification is one in-app notification of a staff member
// (staff_notifications).
type Notification struct {
	ID         int64      `json:"id" db:"id"`
	IncidentID *string    `json:"incident_id,omitempty" db:"incident_id"`
	Kind       string     `json:"kind" db:"kind"`
	Title      string     `json:"title" db:"title"`
	Body       string     `json:"body" db:"body"`
	CreatedAt  time.Time  `json:"created_at" db:"created_at"`
	ReadAt     *time.Time `json:"read_at,omitempty" db:"read_at"`
}

// NotificationFilter selects a page of a staff member's notifications.
type NotificationFilter struct {
	StaffID string
	// UnreadOnly leaves out the notifications already read.
	UnreadOnly bool
	// Before, when not zero, keeps the notifications with a smaller id.
	Before int64
	Limit  int
}

// ListNotifications returns a staff member's notifications, newest first.
func (s *Store) ListNotifications(ctx context.Context, f NotificationFilter) ([]Notification, error) {
	return database.Select[Notification](ctx, s.DB, "list notifications", `
		SELECT id, incident_id, kind, title, body, created_at, read_at FROM staff_notifications
		WHERE staff_id = $1 AND ($2 = false OR read_at IS NULL) AND ($3::bigint = 0 OR id < $3::bigint)
		ORDER BY id DESC LIMIT $4`, f.StaffID, f.UnreadOnly, f.Before, f.Limit)
}

// NotificationsAfter returns up to limit of a staff member's notifications
// with an id above after, oldest first; unreadOnly leaves out those read.
func (s *Store) NotificationsAfter(ctx context.Context, staffID string, after int64, unreadOnly bool, limit int) ([]Notification, error) {
	var items []Notification
	q := `SELECT id, incident_id, kind, title, body, created_at, read_at FROM staff_notifications
		WHERE staff_id = $1 AND id > $2 ORDER BY id LIMIT $3`
	if unreadOnly {
		q = `SELECT id, incident_id, kind, title, body, created_at, read_at FROM staff_notifications
			WHERE staff_id = $1 AND id > $2 AND read_at IS NULL ORDER BY id LIMIT $3`
	}
	if err := s.DB.SelectContext(ctx, &items, q, staffID, after, limit); err != nil {
		return nil, fmt.Errorf("read notifications after %d: %w", after, err)
	}
	return items, nil
}

// MarkNotificationRead marks one of a staff member's notifications read
// (keeping the first read time); found is false when the staff member has
// no notification with the id.
func (s *Store) MarkNotificationRead(ctx context.Context, staffID string, id int64) (found bool, err error) {
	res, err := s.DB.ExecContext(ctx,
		`UPDATE staff_notifications SET read_at = COALESCE(read_at, now()) WHERE id = $1 AND staff_id = $2`, id, staffID)
	if err != nil {
		return false, fmt.Errorf("mark notification %d read: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// MarkAllNotificationsRead marks every unread notification of a staff
// member read and returns how many it marked.
func (s *Store) MarkAllNotificationsRead(ctx context.Context, staffID string) (int64, error) {
	res, err := s.DB.ExecContext(ctx,
		`UPDATE staff_notifications SET read_at = now() WHERE staff_id = $1 AND read_at IS NULL`, staffID)
	if err != nil {
		return 0, fmt.Errorf("mark notifications read: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
