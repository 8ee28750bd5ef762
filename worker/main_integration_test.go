//go:build integration

package worker_test

import (
	"os"
	"testing"

	"github.com/vigil-health/vigil/internal/testenv"
)

// env is this package's real Postgres database and Temporal server.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, "worker", &env)) }
