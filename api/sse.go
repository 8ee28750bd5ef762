package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/auth"
)

// streamHeartbeat keeps idle SSE connections (and the proxies on the way)
// open.
const streamHeartbeat = 15 * time.Second

// streamRecheck is how often an open stream checks that its token's session
// and rights still hold (the check itself is cached for a few seconds).
const streamRecheck = 5 * time.Second

// EventReauthenticate is the last event of a stream whose token expired or
// whose session was revoked: the client must get a new token (refresh or
// sign in) and open the stream again. Its data is {"reason": "..."}.
const EventReauthenticate = "reauthenticate"

// queryTokenAuth is auth (requireStaff, requireSubject) that also accepts
// the token as ?access_token=, because browsers' EventSource cannot set
// headers. (Query strings are never written to the access log.)
func queryTokenAuth(auth gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if tok := c.Query("access_token"); tok != "" && c.GetHeader("Authorization") == "" {
			c.Request.Header.Set("Authorization", "Bearer "+tok)
		}
		auth(c)
	}
}

// sseWriter writes the events of an open Server-Sent Events stream.
type sseWriter struct {
	w       gin.ResponseWriter
	pending bool
}

// event writes one event: its id, its name and v as JSON data.
func (w *sseWriter) event(id, name string, v any) {
	data, _ := json.Marshal(v)
	_, _ = fmt.Fprintf(w.w, "id: %s\nevent: %s\ndata: %s\n\n", id, name, data)
	w.pending = true
}

// flush sends the events written since the last flush.
func (w *sseWriter) flush() {
	if w.pending {
		w.w.Flush()
		w.pending = false
	}
}

// serveSSE answers c with a Server-Sent Events stream: the headers and a
// ": connected" comment, then send, called at once, after every wake (see
// notificationBus.subscribe) and after every heartbeat, whose ": ping"
// comment keeps an idle stream open. The stream ends when the client goes
// or send returns false (send logs why). What send writes is flushed when
// it returns.
//
// A stream lives no longer than its token: when the token expires, or a
// periodic check finds its session revoked or its holder's rights gone, the
// stream sends a reauthenticate event and ends.
func (s *Server) serveSSE(c *gin.Context, wake <-chan struct{}, send func(*sseWriter) bool) {
	c.Header("Content-Type", "text/event-stream")
	c.Header("Cache-Control", "no-cache")
	c.Header("Connection", "keep-alive")
	c.Header("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	_, _ = fmt.Fprint(c.Writer, ": connected\n\n")
	c.Writer.Flush()

	ctx := c.Request.Context()
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	recheck := time.NewTicker(streamRecheck)
	defer recheck.Stop()
	claims := principal(c)
	var expired <-chan time.Time
	if claims != nil && !claims.ExpiresAt.IsZero() {
		t := time.NewTimer(time.Until(claims.ExpiresAt))
		defer t.Stop()
		expired = t.C
	}
	w := &sseWriter{w: c.Writer}
	reauthenticate := func(reason string) {
		_, _ = fmt.Fprintf(c.Writer, "event: %s\ndata: %s\n\n", EventReauthenticate, mustJSON(map[string]string{"reason": reason}))
		c.Writer.Flush()
	}
	for {
		more := send(w)
		w.flush()
		if !more {
			return
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
				break wait
			case <-expired:
				reauthenticate("the token has expired; refresh it and reconnect")
				return
			case <-recheck.C:
				if reason, err := s.streamStillAuthorized(ctx, claims); err == nil && reason != "" {
					reauthenticate(reason)
					return
				}
			case <-heartbeat.C:
				if _, err := fmt.Fprint(c.Writer, ": ping\n\n"); err != nil {
					return
				}
				c.Writer.Flush()
				break wait
			}
		}
	}
}

// streamStillAuthorized re-checks an open stream's token: "" while it still
// holds, else why not. A failed check (the database is briefly away) keeps
// the stream; the next check decides.
func (s *Server) streamStillAuthorized(ctx context.Context, claims *auth.Claims) (string, error) {
	if claims == nil {
		return "", nil
	}
	if claims.SessionID != "" {
		rights, err := s.rightsChecker().Check(ctx, claims.SessionID, claims.SubjectType, claims.Subject)
		if err != nil {
			return "", err
		}
		if !rights.Live {
			return rights.Reason, nil
		}
	}
	return s.subjectStillAuthorized(ctx, claims)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
