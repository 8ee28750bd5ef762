package database_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/database"
)

func TestWithConnectTimeout(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{"url without one gets it", "postgres://u@h:5432/vigil?sslmode=disable",
			"postgres://u@h:5432/vigil?connect_timeout=5&sslmode=disable"},
		{"url with one keeps it", "postgres://u@h/vigil?connect_timeout=30", "postgres://u@h/vigil?connect_timeout=30"},
		{"postgresql scheme", "postgresql://u@h/vigil", "postgresql://u@h/vigil?connect_timeout=5"},
		{"key=value without one gets it", "host=h dbname=vigil", "host=h dbname=vigil connect_timeout=5"},
		{"key=value with one keeps it", "host=h connect_timeout=2", "host=h connect_timeout=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, database.WithConnectTimeout(tt.dsn, 5*time.Second))
		})
	}
	t.Run("PGCONNECT_TIMEOUT wins", func(t *testing.T) {
		t.Setenv("PGCONNECT_TIMEOUT", "9")
		require.Equal(t, "postgres://u@h/vigil", database.WithConnectTimeout("postgres://u@h/vigil", 5*time.Second))
	})
}
