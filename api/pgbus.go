package api

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/message"
)

// bus returns the process's notification bus, starting it on first use. It
// listens on every channel an SSE stream follows: staff notifications and
// new messages.
func (s *Server) bus() *notificationBus {
	s.busOnce.Do(func() {
		s.notifyBus = newNotificationBus(s.databaseURL, s.db, s.logger, notificationChannel, message.NotifyChannel)
	})
	return s.notifyBus
}

// notificationBus fans Postgres NOTIFY events out to the SSE streams of this
// process, so an event stored by any process (a page from a worker, a
// message from another API instance) reaches the open streams at once. A
// subscriber follows one key (the NOTIFY payload, such as a staff or
// receiver id) on one channel; a wake means "look again", the stream reads
// what is new itself. Without a database URL (some tests) it falls back to
// polling.
type notificationBus struct {
	mu       sync.Mutex
	subs     map[busKey]map[chan struct{}]struct{}
	listener *pq.Listener
	poll     time.Duration

	// db, pending and kick send announce's NOTIFYs in batches.
	db      *sqlx.DB
	logger  *slog.Logger
	pending map[busKey]struct{}
	kick    chan struct{}
}

// busKey is what a subscriber follows: a payload on a channel.
type busKey struct{ channel, key string }

func newNotificationBus(dsn string, db *sqlx.DB, logger *slog.Logger, channels ...string) *notificationBus {
	b := &notificationBus{subs: map[busKey]map[chan struct{}]struct{}{}, db: db, logger: logger,
		pending: map[busKey]struct{}{}, kick: make(chan struct{}, 1)}
	if dsn == "" || db == nil {
		b.poll = 2 * time.Second
		return b
	}
	b.listener = pq.NewListener(dsn, time.Second, 30*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			logger.Warn("notification listener", "event", ev, "err", err)
		}
	})
	for _, ch := range channels {
		if err := b.listener.Listen(ch); err != nil {
			logger.Warn("notification listener: falling back to polling", "channel", ch, "err", err)
			b.poll = 2 * time.Second
		}
	}
	go b.run()
	go b.sendPending()
	return b
}

// announce tells every stream following key on channel that something is
// new: this process's streams at once, other processes' through a NOTIFY.
// The NOTIFYs are sent after the caller's transaction, in batches (one
// statement for whatever accumulated while the previous one committed):
// a NOTIFY in the writing transaction would hold Postgres's global notify
// lock through that transaction's commit and serialise every insert.
func (b *notificationBus) announce(channel, key string) {
	k := busKey{channel, key}
	b.wake(k)
	if b.listener == nil {
		return
	}
	b.mu.Lock()
	b.pending[k] = struct{}{}
	b.mu.Unlock()
	signal(b.kick)
}

// sendPending sends the announced keys, one statement per batch of at most
// 500 keys. A failed batch is logged and dropped: streams also look again
// on every heartbeat.
func (b *notificationBus) sendPending() {
	for range b.kick {
		for {
			b.mu.Lock()
			var channels, keys []string
			for k := range b.pending {
				channels, keys = append(channels, k.channel), append(keys, k.key)
				delete(b.pending, k)
				if len(keys) == 500 {
					break
				}
			}
			b.mu.Unlock()
			if len(keys) == 0 {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := b.db.ExecContext(ctx, `SELECT pg_notify(c, k) FROM unnest($1::text[], $2::text[]) AS n (c, k)`,
				pq.StringArray(channels), pq.StringArray(keys))
			cancel()
			if err != nil {
				b.logger.Warn("notification bus: notify failed", "err", err)
			}
		}
	}
}

func (b *notificationBus) run() {
	for n := range b.listener.Notify {
		if n == nil {
			b.wakeAll() // reconnected: notifications may have been missed
			continue
		}
		b.wake(busKey{n.Channel, n.Extra})
	}
}

// subscribe follows key on channel until the returned function is called.
func (b *notificationBus) subscribe(channel, key string) (<-chan struct{}, func()) {
	k := busKey{channel, key}
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	if b.subs[k] == nil {
		b.subs[k] = map[chan struct{}]struct{}{}
	}
	b.subs[k][ch] = struct{}{}
	b.mu.Unlock()
	stop := make(chan struct{})
	if b.poll > 0 {
		go func() {
			t := time.NewTicker(b.poll)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					signal(ch)
				}
			}
		}()
	}
	return ch, func() {
		close(stop)
		b.mu.Lock()
		delete(b.subs[k], ch)
		if len(b.subs[k]) == 0 {
			delete(b.subs, k)
		}
		b.mu.Unlock()
	}
}

func (b *notificationBus) wake(k busKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[k] {
		signal(ch)
	}
}

func (b *notificationBus) wakeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, set := range b.subs {
		for ch := range set {
			signal(ch)
		}
	}
}

// signal wakes a subscriber without blocking; one pending wake is enough.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
