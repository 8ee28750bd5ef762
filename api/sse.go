package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// streamHeartbeat keeps idle SSE connections (and the proxies on the way)
// open.
const streamHeartbeat = 15 * time.Second

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
func serveSSE(c *gin.Context, wake <-chan struct{}, send func(*sseWriter) bool) {
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
	w := &sseWriter{w: c.Writer}
	for {
		more := send(w)
		w.flush()
		if !more {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-heartbeat.C:
			if _, err := fmt.Fprint(c.Writer, ": ping\n\n"); err != nil {
				return
			}
			c.Writer.Flush()
		}
	}
}
