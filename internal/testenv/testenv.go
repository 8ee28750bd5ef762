// Package testenv gives a test package real servers: a fresh Postgres
// database, migrated, and an in-process Temporal server, started once in
// TestMain and removed when the package's tests end.
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Run(m, "api", &env)) }
//
// Postgres is reached at VIGIL_TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); each package
// gets its own database, named after it, so packages run in parallel.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/embeddedtemporal"
	"github.com/vigil-health/vigil/internal/temporalclient"
	"github.com/vigil-health/vigil/workflows"
)

// DefaultAdminURL is the Postgres server tests use when
// VIGIL_TEST_DATABASE_URL is unset.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Env is one test package's servers.
type Env struct {
	// DatabaseURL is the fresh, migrated database.
	DatabaseURL string
	// DB is a pool on DatabaseURL.
	DB *sqlx.DB
	// Temporal is the in-process server; Client is connected to it, with
	// Vigil's search attributes registered.
	Temporal *embeddedtemporal.Server
	Client   client.Client
	// Logger writes to stderr at warn level; set VIGIL_TEST_LOG=debug for more.
	Logger *slog.Logger
}

// Run starts an Env for package name, runs the tests and tears the Env down.
// It returns the exit code for os.Exit.
func Run(m *testing.M, name string, env **Env) int {
	return runTests(m, func(ctx context.Context) (*Env, error) { return Start(ctx, name) },
		func(e *Env) { *env = e })
}

// RunDB is Run for packages that need only Postgres: a fresh, migrated
// database (seeded by setup when it is not nil), dropped afterwards.
//
//	func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "oncall", &db, seed)) }
func RunDB(m *testing.M, name string, db **sqlx.DB, setup func(context.Context, *sqlx.DB) error) int {
	return runTests(m, func(ctx context.Context) (*Env, error) {
		e, err := StartDB(ctx, name)
		if err == nil && setup != nil {
			if err = setup(ctx, e.DB); err != nil {
				e.Close()
				return nil, fmt.Errorf("set up test database: %w", err)
			}
		}
		return e, err
	}, func(e *Env) { *db = e.DB })
}

// runTests starts an Env with start (given two minutes), hands it to use,
// runs the tests and tears the Env down. It returns the exit code for
// os.Exit.
func runTests(m *testing.M, start func(context.Context) (*Env, error), use func(*Env)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e, err := start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 1
	}
	use(e)
	code := m.Run()
	e.Close()
	return code
}

// StartDB creates and migrates a fresh database, without a Temporal server.
func StartDB(ctx context.Context, name string) (_ *Env, err error) {
	e := &Env{Logger: testLogger()}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.DatabaseURL, err = NewDatabase(ctx, name); err != nil {
		return nil, err
	}
	if e.DB, err = database.Open(ctx, e.DatabaseURL); err != nil {
		return nil, err
	}
	if err = database.Migrate(ctx, e.DB.DB, e.Logger); err != nil {
		return nil, err
	}
	return e, nil
}

// Start creates the database and starts the Temporal server.
func Start(ctx context.Context, name string) (_ *Env, err error) {
	e, err := StartDB(ctx, name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.Temporal, err = embeddedtemporal.Start(ctx, embeddedtemporal.Options{Logger: e.Logger}); err != nil {
		return nil, err
	}
	if e.Client, err = client.DialContext(ctx, client.Options{
		HostPort:  e.Temporal.FrontendAddress(),
		Namespace: e.Temporal.Namespace(),
		Logger:    sdklog.NewStructuredLogger(e.Logger),
	}); err != nil {
		return nil, fmt.Errorf("dial test temporal server: %w", err)
	}
	if err = temporalclient.EnsureSearchAttributes(ctx, e.Client, e.Temporal.Namespace(), workflows.SearchAttributes); err != nil {
		return nil, err
	}
	return e, nil
}

// Close stops the server and drops the database.
func (e *Env) Close() {
	if e.Client != nil {
		e.Client.Close()
	}
	if e.Temporal != nil {
		_ = e.Temporal.Stop()
	}
	if e.DB != nil {
		_ = e.DB.Close()
	}
	if e.DatabaseURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := database.Drop(ctx, e.DatabaseURL); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		}
	}
}

// NewDatabase creates an empty database named vigil_test_<name>_<random> and
// returns its URL. The caller drops it (database.Drop) when done.
func NewDatabase(ctx context.Context, name string) (string, error) {
	admin := os.Getenv("VIGIL_TEST_DATABASE_URL")
	if admin == "" {
		admin = DefaultAdminURL
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	dbName := "vigil_test_" + strings.NewReplacer("/", "_", "-", "_", ".", "_").Replace(name) + "_" + hex.EncodeToString(b[:])
	dsn, err := database.WithDatabase(admin, dbName)
	if err != nil {
		return "", err
	}
	if _, err := database.EnsureExists(ctx, dsn); err != nil {
		return "", fmt.Errorf("create test database (is Postgres running at %s?): %w", admin, err)
	}
	return dsn, nil
}

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if v := os.Getenv("VIGIL_TEST_LOG"); v != "" {
		_ = level.UnmarshalText([]byte(v))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// AdminDB opens a pool on the Postgres server's maintenance database (the
// one test databases are created from), for tests that act on their own
// database from outside, such as refusing its connections for a while.
func (e *Env) AdminDB() (*sqlx.DB, error) {
	admin := os.Getenv("VIGIL_TEST_DATABASE_URL")
	if admin == "" {
		admin = DefaultAdminURL
	}
	db, err := sqlx.Open("postgres", admin)
	if err != nil {
		return nil, fmt.Errorf("open admin database: %w", err)
	}
	return db, nil
}
