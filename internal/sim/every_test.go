package sim_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/sim"
)

func TestEvery(t *testing.T) {
	tests := []struct {
		name    string
		every   time.Duration
		atLeast int64
	}{
		{"steps until cancelled", time.Millisecond, 3},
		{"never with no interval", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { sim.Every(ctx, tt.every, func() { n.Add(1) }); close(done) }()
			time.Sleep(30 * time.Millisecond)
			cancel()
			<-done
			require.GreaterOrEqual(t, n.Load(), tt.atLeast)
			if tt.atLeast == 0 {
				require.Zero(t, n.Load())
			}
		})
	}
}
