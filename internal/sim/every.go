package sim

import (
	"context"
	"time"
)

// Every calls step every interval until ctx is done (never when every is
// not positive). It blocks; run it with go.
func Every(ctx context.Context, every time.Duration, step func()) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			step()
		}
	}
}
