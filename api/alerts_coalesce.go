package api

import (
	"context"
	"errors"
	"sync"
	"time"
)

// coalescer turns a storm of alerts for one dedup key into few workflow
// updates: while an update for a key is in flight, later alerts for that key
// queue up and go out together as the next update, counted, instead of one
// update (and two history events) per raw alert.
type coalescer[Req, Res any] struct {
	mu     sync.Mutex
	queues map[string]*coalesceQueue[Req, Res]
	// send delivers one batch (never empty) and returns its result. Its
	// context ends margin before the earliest deadline of the batch's
	// callers, so they hear the outcome before they give up.
	send func(ctx context.Context, key string, batch []Req) (Res, error)
	// margin is kept back from the callers' deadline (at most a quarter of
	// the time left).
	margin time.Duration
}

type coalesceQueue[Req, Res any] struct {
	pending []*coalesceWaiter[Req, Res]
}

type coalesceWaiter[Req, Res any] struct {
	req Req
	// deadline is the caller's; zero when it has none.
	deadline time.Time
	done     chan struct{}
	res      Res
	index    int
	err      error
	// sent and abandoned are guarded by the coalescer's mu: a batch took
	// the request, or its caller gave up before one did (then it is never
	// sent).
	sent, abandoned bool
}

// errNotSent answers a caller whose deadline passed while its request still
// waited for an earlier batch: the request was never sent.
var errNotSent = errors.New("not sent: the deadline passed while it waited behind an earlier update")

func newCoalescer[Req, Res any](margin time.Duration, send func(context.Context, string, []Req) (Res, error)) *coalescer[Req, Res] {
	return &coalescer[Req, Res]{queues: map[string]*coalesceQueue[Req, Res]{}, send: send, margin: margin}
}

// submit queues req under key and waits for the batch that carries it. index
// is req's position in that batch (the leader of the batch that opened an
// incident, index 0, is the one told "created"). When ctx ends first, err
// is errNotSent if no batch had taken req (and none will), else ctx's error:
// the batch's outcome is unknown.
func (c *coalescer[Req, Res]) submit(ctx context.Context, key string, req Req) (res Res, index int, err error) {
	w := &coalesceWaiter[Req, Res]{req: req, done: make(chan struct{})}
	w.deadline, _ = ctx.Deadline()
	c.mu.Lock()
	q, running := c.queues[key]
	if !running {
		q = &coalesceQueue[Req, Res]{}
		c.queues[key] = q
	}
	q.pending = append(q.pending, w)
	c.mu.Unlock()
	if !running {
		go c.drain(key, q)
	}
	select {
	case <-w.done:
		return w.res, w.index, w.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	sent := w.sent
	w.abandoned = !sent
	c.mu.Unlock()
	var zero Res
	if !sent {
		return zero, -1, errNotSent
	}
	select {
	case <-w.done: // the outcome arrived with the deadline
		return w.res, w.index, w.err
	default:
		return zero, -1, ctx.Err()
	}
}

// drain sends batches for key until its queue is empty. It runs detached
// from any one request, so a caller that gives up does not cancel the
// others' alerts; a caller that gave up before its batch was sent is left
// out of it.
func (c *coalescer[Req, Res]) drain(key string, q *coalesceQueue[Req, Res]) {
	for {
		c.mu.Lock()
		var batch []*coalesceWaiter[Req, Res]
		for _, w := range q.pending {
			if !w.abandoned {
				w.sent = true
				batch = append(batch, w)
			}
		}
		q.pending = nil
		if len(batch) == 0 {
			delete(c.queues, key)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		reqs := make([]Req, len(batch))
		var earliest time.Time
		for i, w := range batch {
			reqs[i] = w.req
			if !w.deadline.IsZero() && (earliest.IsZero() || w.deadline.Before(earliest)) {
				earliest = w.deadline
			}
		}
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if !earliest.IsZero() {
			ctx, cancel = context.WithDeadline(ctx, earliest.Add(-min(c.margin, max(time.Until(earliest)/4, 0))))
		}
		res, err := c.send(ctx, key, reqs)
		cancel()
		for i, w := range batch {
			w.res, w.err, w.index = res, err, i
			close(w.done)
		}
	}
}
