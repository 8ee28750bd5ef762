// Package database opens Vigil's Postgres query model with sqlx and lib/pq,
// creates the database when it is missing, and applies the embedded
// migrations with goose.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// DefaultConnectTimeout bounds each new connection's TCP connect and
// start-up handshake when the DSN sets no connect_timeout (nor
// PGCONNECT_TIMEOUT): lib/pq ignores the context during the handshake, so
// without it a Postgres that accepts TCP but never answers hangs the caller.
const DefaultConnectTimeout = 5 * time.Second

// WithConnectTimeout returns dsn with connect_timeout set to timeout (whole
// seconds, at least one) unless it already has one or PGCONNECT_TIMEOUT is
// set. It accepts URL DSNs (postgres://...) and key=value DSNs.
func WithConnectTimeout(dsn string, timeout time.Duration) string {
	if _, ok := os.LookupEnv("PGCONNECT_TIMEOUT"); ok {
		return dsn
	}
	secs := strconv.Itoa(max(1, int(timeout.Round(time.Second)/time.Second)))
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn // lib/pq reports the bad URL
		}
		q := u.Query()
		if q.Has("connect_timeout") {
			return dsn
		}
		q.Set("connect_timeout", secs)
		u.RawQuery = q.Encode()
		return u.String()
	}
	if strings.Contains(dsn, "connect_timeout=") {
		return dsn
	}
	return strings.TrimSpace(dsn + " connect_timeout=" + secs)
}

// Open connects to dsn, checks the connection and sizes the pool for a
// service process. Each new connection's handshake is bounded by
// DefaultConnectTimeout unless dsn sets connect_timeout.
func Open(ctx context.Context, dsn string) (*sqlx.DB, error) {
	db, err := sqlx.Open("postgres", WithConnectTimeout(dsn, DefaultConnectTimeout))
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return db, nil
}

// EnsureExists creates the database named in dsn when it does not exist yet,
// connecting to the server's "postgres" maintenance database to do so. It is
// what lets `vigil dev` start on a machine that has only a bare Postgres.
func EnsureExists(ctx context.Context, dsn string) (created bool, err error) {
	name, adminDSN, err := splitDatabase(dsn)
	if err != nil {
		return false, err
	}
	admin, err := sql.Open("postgres", WithConnectTimeout(adminDSN, DefaultConnectTimeout))
	if err != nil {
		return false, fmt.Errorf("open postgres maintenance database: %w", err)
	}
	defer func() { _ = admin.Close() }()

	var exists bool
	if err := admin.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("connect to postgres: look up database %q: %w", name, err)
	}
	if exists {
		return false, nil
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		var pqErr *pq.Error
		// Another process created it between our check and our CREATE.
		if errors.As(err, &pqErr) && pqErr.Code == "42P04" {
			return false, nil
		}
		return false, fmt.Errorf("create database %q: %w", name, err)
	}
	return true, nil
}

// Drop removes the database named in dsn, ending its other sessions first. It
// is used by tests that create a database of their own.
func Drop(ctx context.Context, dsn string) error {
	name, adminDSN, err := splitDatabase(dsn)
	if err != nil {
		return err
	}
	admin, err := sql.Open("postgres", adminDSN)
	if err != nil {
		return fmt.Errorf("open postgres maintenance database: %w", err)
	}
	defer func() { _ = admin.Close() }()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %q: %w", name, err)
	}
	return nil
}

// WithDatabase returns dsn pointing at another database on the same server.
func WithDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// splitDatabase returns the database name of dsn and a DSN for the server's
// maintenance database.
func splitDatabase(dsn string) (name, adminDSN string, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", fmt.Errorf("parse database url: %w", err)
	}
	name = strings.Trim(u.Path, "/")
	if name == "" {
		return "", "", errors.New("database url names no database")
	}
	adminDSN, err = WithDatabase(dsn, "postgres")
	return name, adminDSN, err
}
