package api

import (
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/message"
	"github.com/vigil-health/vigil/internal/pgnotify"
)

// bus returns the process's notification bus, starting it on first use. It
// listens on every channel an SSE stream follows: staff notifications and
// new messages.
func (s *Server) bus() *notificationBus {
	s.busOnce.Do(func() {
		s.notifyBus = &notificationBus{s.Stores.NotificationBus(s.DatabaseURL, s.Logger, incident.NotificationChannel, message.NotifyChannel)}
	})
	return s.notifyBus
}

// notificationBus is the process's Postgres NOTIFY bus (see pgnotify.Bus),
// as the SSE streams use it.
type notificationBus struct{ bus *pgnotify.Bus }

// announce tells every stream following key on channel that something is
// new (see pgnotify.Bus.Announce).
func (b *notificationBus) announce(channel, key string) { b.bus.Announce(channel, key) }

// subscribe follows key on channel until the returned function is called.
func (b *notificationBus) subscribe(channel, key string) (<-chan struct{}, func()) {
	return b.bus.Subscribe(channel, key)
}
