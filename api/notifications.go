package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/incident"
)

func (s *Server) notificationRoutes(v1 *gin.RouterGroup) {
	v1.GET("/me/notifications", s.requireStaff(), s.listNotifications)
	v1.POST("/me/notifications/:id/read", s.requireStaff(), s.markNotificationRead)
	v1.POST("/me/notifications/read-all", s.requireStaff(), s.markAllNotificationsRead)
	v1.GET("/me/notifications/stream", queryTokenAuth(s.requireStaff()), s.streamNotifications)
}

// Notification is one in-app notification.
type Notification = incident.Notification

// listNotifications lists the caller's notifications, newest first;
// ?unread=true keeps the unread ones; ?before=<id> pages.
func (s *Server) listNotifications(c *gin.Context) {
	unread, fe := boolParam(c, "unread", false)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	limit, before, fe := idPage(c)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	items, err := s.incidentStore().ListNotifications(c.Request.Context(), incident.NotificationFilter{
		StaffID: principal(c).Subject, UnreadOnly: unread, Before: before, Limit: limit,
	})
	if err != nil {
		s.abortStore(c, "list notifications", err)
		return
	}
	c.JSON(http.StatusOK, idPageBody(items, limit, func(n Notification) int64 { return n.ID }))
}

func (s *Server) markNotificationRead(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		abortInvalid(c, invalid("id", "must be a positive integer"))
		return
	}
	found, err := s.incidentStore().MarkNotificationRead(c.Request.Context(), principal(c).Subject, id)
	if err != nil {
		s.abortInternal(c, "mark notification read", err)
		return
	}
	if !found {
		// Someone else's notification is as absent as a missing one.
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no such notification", "")
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) markAllNotificationsRead(c *gin.Context) {
	n, err := s.incidentStore().MarkAllNotificationsRead(c.Request.Context(), principal(c).Subject)
	s.answerOK(c, "mark notifications read", gin.H{"updated": n}, err)
}

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
	wake, unsubscribe := s.bus().subscribe(incident.NotificationChannel, staffID)
	defer unsubscribe()

	backlog := lastID == 0
	s.serveSSE(c, wake, func(w *sseWriter) bool {
		for {
			items, err := s.incidentStore().NotificationsAfter(ctx, staffID, lastID, backlog, notificationBatch)
			if err != nil {
				if ctx.Err() == nil {
					s.Logger.WarnContext(ctx, "notification stream query failed", "err", err)
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
