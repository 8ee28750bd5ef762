package api

import (
	"context"
	"sync"
)

// coalescer turns a storm of alerts for one dedup key into few workflow
// updates: while an update for a key is in flight, later alerts for that key
// queue up and go out together as the next update, counted, instead of one
// update (and two history events) per raw alert.
type coalescer[Req, Res any] struct {
	mu     sync.Mutex
	queues map[string]*coalesceQueue[Req, Res]
	// send delivers one batch (never empty) and returns its result.
	send func(ctx context.Context, key string, batch []Req) (Res, error)
}

type coalesceQueue[Req, Res any] struct {
	pending []*coalesceWaiter[Req, Res]
}

type coalesceWaiter[Req, Res any] struct {
	req   Req
	done  chan struct{}
	res   Res
	first bool
	err   error
}

func newCoalescer[Req, Res any](send func(context.Context, string, []Req) (Res, error)) *coalescer[Req, Res] {
	return &coalescer[Req, Res]{queues: map[string]*coalesceQueue[Req, Res]{}, send: send}
}

// submit queues req under key and waits for the batch that carries it. first
// reports whether req led its batch (the leader of the batch that opened an
// incident is the one told "created").
func (c *coalescer[Req, Res]) submit(ctx context.Context, key string, req Req) (res Res, first bool, err error) {
	w := &coalesceWaiter[Req, Res]{req: req, done: make(chan struct{})}
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
		return w.res, w.first, w.err
	case <-ctx.Done():
		var zero Res
		return zero, false, ctx.Err()
	}
}

// drain sends batches for key until its queue is empty. It runs detached
// from any one request, so a caller that gives up does not cancel the
// others' alerts.
func (c *coalescer[Req, Res]) drain(key string, q *coalesceQueue[Req, Res]) {
	for {
		c.mu.Lock()
		batch := q.pending
		q.pending = nil
		if len(batch) == 0 {
			delete(c.queues, key)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		reqs := make([]Req, len(batch))
		for i, w := range batch {
			reqs[i] = w.req
		}
		res, err := c.send(context.Background(), key, reqs)
		for i, w := range batch {
			w.res, w.err, w.first = res, err, i == 0
			close(w.done)
		}
	}
}
