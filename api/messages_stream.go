package api

import (
	"errors"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/message"
)

// streamWindow is how far back a message stream that does not resume
// starts: one stored while the client was connecting (or between its list
// and its stream) is not missed.
const streamWindow = 10 * time.Second

// streamBatch is how many messages one stream query reads.
const streamBatch = 200

// lastEventID is where a stream resumes: the Last-Event-ID header
// (EventSource sends it when it reconnects by itself) or, for a client that
// reconnects by hand (EventSource cannot set headers), ?last_event_id=. It
// returns the value ("" for none) and the name of the field it came from.
func lastEventID(c *gin.Context) (value, field string) {
	if v := c.GetHeader("Last-Event-ID"); v != "" {
		return v, "Last-Event-ID"
	}
	return c.Query("last_event_id"), "last_event_id"
}

// streamMessages pushes the messages a receiver gets, as Server-Sent Events
// (event "message", id the message's stream position, data the message):
// after Last-Event-ID when the client resumes, else those of the last
// streamWindow, then each the moment it is stored: the API process that
// stored it wakes its own streams at once and the others through a Postgres
// NOTIFY (see notificationBus.announce); the stream then reads what is new
// with the caller's authorisation (a patient follows only itself and never
// gets alerts). Positions follow commit order per receiver (see
// message.Received), so a resumed stream neither repeats nor skips.
// Comments (": ping") keep an idle stream open, and the stream also looks
// again at each one. ?type= keeps one receiver type.
func (s *Server) streamMessages(c *gin.Context) {
	receiver, fe := partyParam(c, "id")
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	receiverType, fe := partyTypeParam(c, "type")
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	ctx := c.Request.Context()
	claims := principal(c)
	store := s.messageStore()
	if err := message.CanList(claims, receiver); err != nil {
		s.abortMessageError(c, "stream messages", err)
		return
	}
	// Subscribe before reading the position: nothing stored after it is
	// missed.
	wake, unsubscribe := s.bus().subscribe(message.NotifyChannel, receiver)
	defer unsubscribe()

	var pos int64
	if v, field := lastEventID(c); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err == nil && n >= 0:
			pos = n
		case err != nil && len(v) == 36:
			// An id sent before stream positions existed: the message id.
			m, err := store.Get(ctx, claims, v)
			if errors.Is(err, message.ErrNotFound) || (err == nil && m.ReceiverID != receiver) {
				abortInvalid(c, invalid(field, "must be the id of an event of this stream"))
				return
			}
			if err != nil {
				s.abortMessageError(c, "stream messages", err)
				return
			}
			pos = m.StreamSeq
		default:
			abortInvalid(c, invalid(field, "must be the id of an event of this stream"))
			return
		}
	} else {
		start, err := store.StreamStart(ctx, receiver, streamWindow)
		if err != nil {
			s.abortMessageError(c, "stream messages", err)
			return
		}
		pos = start
	}

	s.serveSSE(c, wake, func(w *sseWriter) bool {
		for {
			items, err := store.Received(ctx, claims, receiver, receiverType, pos, streamBatch)
			if err != nil {
				if ctx.Err() == nil {
					s.Logger.WarnContext(ctx, "message stream query failed", "err", err)
				}
				return false
			}
			for i := range items {
				m := &items[i]
				w.event(strconv.FormatInt(m.StreamSeq, 10), "message", m)
				pos = m.StreamSeq
			}
			w.flush()
			if len(items) < streamBatch {
				return true
			}
		}
	})
}
