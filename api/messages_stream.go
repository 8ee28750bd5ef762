package api

import (
	"maps"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/messagestore"
)

// streamLookback is how far behind its position a message stream looks
// again on each wake. A message's created_at is its transaction's start, so
// one that commits late can sort before messages already sent; looking back
// (and skipping what was already sent) catches it.
const streamLookback = 10 * time.Second

// streamBatch is how many messages one stream query reads.
const streamBatch = 200

// streamMessages pushes the messages a receiver gets, as Server-Sent Events
// (event "message", id the message id, data the message), from the moment
// the stream opens, each the moment it is stored: the API process that
// stored it wakes its own streams at once and the others through a Postgres
// NOTIFY (see notificationBus.announce); the stream then reads what is new
// with the caller's authorisation (a patient follows only itself and never
// gets alerts). Comments (": ping") keep an idle stream open, and the stream
// also looks again at each one. ?type= keeps one receiver type.
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
	if err := messagestore.CanList(claims, receiver); err != nil {
		s.abortMessageError(c, "stream messages", err)
		return
	}
	// Subscribe before reading the clock: nothing stored after it is missed.
	wake, unsubscribe := s.bus().subscribe(messagestore.NotifyChannel, receiver)
	defer unsubscribe()
	start, err := store.Now(ctx)
	if err != nil {
		s.abortMessageError(c, "stream messages", err)
		return
	}

	// sent holds what was sent within the lookback, by id; high is the
	// newest created_at sent.
	sent := map[string]time.Time{}
	high := start
	s.serveSSE(c, wake, func(w *sseWriter) bool {
		pos := messagestore.Cursor{CreatedAt: high.Add(-streamLookback)}
		if pos.CreatedAt.Before(start) {
			pos.CreatedAt = start
		}
		for {
			items, err := store.Received(ctx, claims, receiver, receiverType, pos, streamBatch)
			if err != nil {
				if ctx.Err() == nil {
					s.logger.WarnContext(ctx, "message stream query failed", "err", err)
				}
				return false
			}
			for i := range items {
				m := &items[i]
				if _, dup := sent[m.ID]; dup {
					continue
				}
				w.event(m.ID, "message", m)
				sent[m.ID] = m.CreatedAt
				if m.CreatedAt.After(high) {
					high = m.CreatedAt
				}
			}
			w.flush()
			if len(items) < streamBatch {
				break
			}
			last := items[len(items)-1]
			pos = messagestore.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		maps.DeleteFunc(sent, func(_ string, at time.Time) bool { return at.Before(high.Add(-streamLookback)) })
		return true
	})
}
