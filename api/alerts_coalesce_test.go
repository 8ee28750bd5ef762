package api

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCoalescer_CallersWhoGaveUpAreNotSent: while one batch is in flight,
// a queued caller whose deadline passes is answered errNotSent and left
// out of the next batch; the batch that carries the others ends before
// their deadline, and each learns its position in it.
func TestCoalescer_CallersWhoGaveUpAreNotSent(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var batches [][]string
	var sendDeadlines []time.Time
	c := newCoalescer(50*time.Millisecond, func(ctx context.Context, _ string, batch []string) (int, error) {
		mu.Lock()
		batches = append(batches, batch)
		d, _ := ctx.Deadline()
		sendDeadlines = append(sendDeadlines, d)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release
		}
		return len(batch), nil
	})

	type outcome struct {
		n, index int
		err      error
	}
	submit := func(req string, wait time.Duration) <-chan outcome {
		out := make(chan outcome, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			n, i, err := c.submit(ctx, "k", req)
			out <- outcome{n, i, err}
		}()
		return out
	}
	lead := submit("lead", 5*time.Second)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(batches) == 1 }, time.Second, time.Millisecond)
	quitter := submit("quitter", 100*time.Millisecond)
	stayer := submit("stayer", 5*time.Second)
	late := submit("late", 5*time.Second)

	q := <-quitter
	require.ErrorIs(t, q.err, errNotSent, "it was still queued when its caller gave up")
	close(release)
	require.NoError(t, (<-lead).err)
	s, l := <-stayer, <-late
	require.NoError(t, s.err)
	require.NoError(t, l.err)
	require.Equal(t, 2, s.n, "one batch carried both")
	require.ElementsMatch(t, []int{0, 1}, []int{s.index, l.index})

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, batches, 2)
	require.NotContains(t, batches[1], "quitter")
	require.WithinDuration(t, time.Now().Add(5*time.Second-50*time.Millisecond), sendDeadlines[1], time.Second,
		"the batch ends a margin before its callers' deadline")
}
