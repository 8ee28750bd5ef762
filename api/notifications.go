package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// notificationChannel is the Postgres NOTIFY channel the Page activity
// signals, with the recipient's staff id as payload.
const notificationChannel = "staff_notifications"

func (s *Server) notificationRoutes(v1 *gin.RouterGroup) {
	v1.GET("/me/notifications", s.requireStaff(), s.listNotifications)
	v1.POST("/me/notifications/:id/read", s.requireStaff(), s.markNotificationRead)
	v1.POST("/me/notifications/read-all", s.requireStaff(), s.markAllNotificationsRead)
	v1.GET("/me/notifications/stream", queryTokenAuth(s.requireStaff()), s.streamNotifications)
}

// Notification is one in-app notification.
type Notification struct {
	ID         int64      `json:"id" db:"id"`
	IncidentID *string    `json:"incident_id,omitempty" db:"incident_id"`
	Kind       string     `json:"kind" db:"kind"`
	Title      string     `json:"title" db:"title"`
	Body       string     `json:"body" db:"body"`
	CreatedAt  time.Time  `json:"created_at" db:"created_at"`
	ReadAt     *time.Time `json:"read_at,omitempty" db:"read_at"`
}

// listNotifications lists the caller's notifications, newest first;
// ?unread=true keeps the unread ones; ?before=<id> pages.
func (s *Server) listNotifications(c *gin.Context) {
	unread := false
	if v, ok := c.GetQuery("unread"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			abortInvalid(c, invalid("unread", "must be true or false"))
			return
		}
		unread = b
	}
	limit, fe := intParam(c, "limit", 50, 1, 200)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	before, fe := int64Param(c, "before", 0, 0, pgBigintMax)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	items := []Notification{}
	err := s.db.SelectContext(c.Request.Context(), &items, `
		SELECT id, incident_id, kind, title, body, created_at, read_at FROM staff_notifications
		WHERE staff_id = $1 AND ($2 = false OR read_at IS NULL) AND ($3::bigint = 0 OR id < $3::bigint)
		ORDER BY id DESC LIMIT $4`, principal(c).Subject, unread, before, limit)
	if err != nil {
		s.abortStore(c, "list notifications", err)
		return
	}
	resp := gin.H{"items": items}
	if len(items) == limit {
		resp["next_before"] = items[len(items)-1].ID
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Server) markNotificationRead(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		abortInvalid(c, invalid("id", "must be a positive integer"))
		return
	}
	res, err := s.db.ExecContext(c.Request.Context(),
		`UPDATE staff_notifications SET read_at = COALESCE(read_at, now()) WHERE id = $1 AND staff_id = $2`, id, principal(c).Subject)
	if err != nil {
		s.abortInternal(c, "mark notification read", err)
		return
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Someone else's notification is as absent as a missing one.
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no such notification", "")
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) markAllNotificationsRead(c *gin.Context) {
	res, err := s.db.ExecContext(c.Request.Context(),
		`UPDATE staff_notifications SET read_at = now() WHERE staff_id = $1 AND read_at IS NULL`, principal(c).Subject)
	if err != nil {
		s.abortInternal(c, "mark notifications read", err)
		return
	}
	n, _ := res.RowsAffected()
	c.JSON(http.StatusOK, gin.H{"updated": n})
}

// notificationLockClass is the first key of the advisory lock (the second is
// hashtext(staff_id)) that the Page activity takes before it inserts a
// staff notification and holds until it commits: a staff member's
// notification ids are then drawn in commit order, so a stream that has sent
// id n has seen every smaller one and resuming after n misses nothing.
const notificationLockClass = 1297303380

// notificationBatch is how many notifications one stream query reads.
const notificationBatch = 100

// streamNotifications pushes the caller's notifications as Server-Sent
// Events (id the notification id): first those after Last-Event-ID (the
// header or ?last_event_id=), or the unread ones when it does not resume,
// then each new one the moment the Page activity stores it. It subscribes
// before its first query, so nothing stored while it opens is missed.
func (s *Server) streamNotifications(c *gin.Context) {
	staffID := principal(c).Subject
	var lastID int64
	if v, field := lastEventID(c); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 0 {
			abortInvalid(c, invalid(field, "must be a notification id"))
			return
		}
		lastID = id
	}
	ctx := c.Request.Context()
	wake, unsubscribe := s.bus().subscribe(notificationChannel, staffID)
	defer unsubscribe()

	backlog := lastID == 0
	s.serveSSE(c, wake, func(w *sseWriter) bool {
		for {
			items, err := s.pendingNotifications(ctx, staffID, lastID, backlog)
			if err != nil {
				if ctx.Err() == nil {
					s.logger.WarnContext(ctx, "notification stream query failed", "err", err)
				}
				return false
			}
			for _, n := range items {
				w.event(strconv.FormatInt(n.ID, 10), "notification", n)
				lastID = n.ID
			}
			w.flush()
			if len(items) < notificationBatch {
				backlog = false
				return true
			}
		}
	})
}

func (s *Server) pendingNotifications(ctx context.Context, staffID string, after int64, unreadBacklog bool) ([]Notification, error) {
	var items []Notification
	q := `SELECT id, incident_id, kind, title, body, created_at, read_at FROM staff_notifications
		WHERE staff_id = $1 AND id > $2 ORDER BY id LIMIT $3`
	if unreadBacklog {
		q = `SELECT id, incident_id, kind, title, body, created_at, read_at FROM staff_notifications
			WHERE staff_id = $1 AND id > $2 AND read_at IS NULL ORDER BY id LIMIT $3`
	}
	err := s.db.SelectContext(ctx, &items, q, staffID, after, notificationBatch)
	return items, err
}
