package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClosedLoop_CountsSuccessesAndFailuresFromEveryWorker(t *testing.T) {
	tests := []struct {
		name        string
		concurrency int
		failEvery   int
	}{
		{"all succeed", 4, 0},
		{"every third fails", 8, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inFlight, most atomic.Int64
			ok, failed := closedLoop(context.Background(), tt.concurrency, 50*time.Millisecond, func(i int) error {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(time.Millisecond)
				if tt.failEvery > 0 && i%tt.failEvery == 0 {
					return errors.New("refused")
				}
				return nil
			})
			require.Positive(t, ok)
			if tt.failEvery == 0 {
				require.Zero(t, failed)
			} else {
				require.Positive(t, failed)
			}
			require.LessOrEqual(t, most.Load(), int64(tt.concurrency), "never more in flight than asked")
		})
	}
}
