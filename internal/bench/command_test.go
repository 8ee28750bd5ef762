package bench

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/config"
)

func TestCommand_UsageErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no benchmark", nil, "usage: vigil bench incidents|watches|messages|nodes [flags]"},
		{"unknown benchmark", []string{"alerts"}, "usage: vigil bench incidents|watches|messages|nodes [flags]"},
		{"unknown flag", []string{"incidents", "-nope"}, "flag provided but not defined: -nope"},
		{"incidents rate", []string{"incidents", "-rate", "0"}, "vigil bench: -rate, -sustain-rate, -dup-workers and -dup-keys must be positive"},
		{"incidents escalation wait", []string{"incidents", "-escalation-wait", "2h"}, "vigil bench: -escalation-incidents must be 0 or more and -escalation-wait from 1s to 1h"},
		{"incidents ceiling concurrency", []string{"incidents", "-ceiling-concurrency", "0"}, "vigil bench: -ceiling-duration must be 0 or more and -ceiling-concurrency positive"},
		{"messages reads", []string{"messages", "-reads", "0"}, "vigil bench: -rate, -messages and -reads must be positive"},
		{"nodes count", []string{"nodes", "-nodes", "0"}, "vigil bench nodes: -nodes and -scans must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Command(context.Background(), config.Config{}, tt.args, &stdout, &stderr)
			require.Equal(t, 2, code)
			require.Contains(t, stderr.String(), tt.stderr)
			require.Empty(t, stdout.String())
		})
	}
}
