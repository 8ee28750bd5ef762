// Package stores opens every capability store over one Postgres pool. The
// API serves many capabilities, so it holds this set; it never holds the
// pool itself, and its handlers reach the database only through a store.
package stores

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"github.com/vigil-health/vigil/internal/activation"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/message"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/pgnotify"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/session"
	"github.com/vigil-health/vigil/internal/systemcheck"
	"github.com/vigil-health/vigil/internal/watch"
)

// Set is one store per capability, all over the same pool.
type Set struct {
	Incidents    *incident.Store
	Watches      *watch.Store
	Nodes        *node.Store
	Reference    *reference.Store
	Sessions     *session.Store
	Activations  *activation.Store
	SystemChecks *systemcheck.Store
	// Messages groups concurrent creates into shared commits (its Batcher
	// lives as long as the set).
	Messages *message.Store

	db *sqlx.DB
}

// New returns the stores over db.
func New(db *sqlx.DB) *Set {
	return &Set{
		Incidents:    &incident.Store{DB: db},
		Watches:      &watch.Store{DB: db},
		Nodes:        &node.Store{DB: db},
		Reference:    &reference.Store{DB: db},
		Sessions:     &session.Store{DB: db},
		Activations:  &activation.Store{DB: db},
		SystemChecks: &systemcheck.Store{DB: db},
		Messages:     &message.Store{DB: db, Batcher: &message.Batcher{DB: db}},
		db:           db,
	}
}

// Ping checks that the database answers (readiness).
func (s *Set) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// RightsChecker returns a new per-request session and rights check (the
// caller keeps one: its cache is what makes it cheap).
func (s *Set) RightsChecker() *session.Checker { return &session.Checker{DB: s.db} }

// NotificationBus returns the LISTEN/NOTIFY bus on channels (dsn is the
// database URL to LISTEN on; empty makes subscribers poll).
func (s *Set) NotificationBus(dsn string, logger *slog.Logger, channels ...string) *pgnotify.Bus {
	return pgnotify.New(dsn, s.db, logger, channels...)
}
