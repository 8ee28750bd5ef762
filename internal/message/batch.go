package message

import (
	"context"
	"fmt"
	"sync"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Batcher groups concurrent message inserts into multi-row INSERTs. Every
// message is its own durable commit otherwise, and under load commits wait
// for each other's WAL flush; a batch shares one. There is no waiting to fill
// a batch: a flusher takes whatever is queued when it is free, so a lone
// insert goes at once and a burst goes together.
type Batcher struct {
	// DB is the Vigil database.
	DB *sqlx.DB
	// Flushers is how many batches may be in flight at once; 0 means 4.
	Flushers int
	// MaxBatch bounds a batch; 0 means 128.
	MaxBatch int

	once  sync.Once
	queue chan *pendingInsert
}

type pendingInsert struct {
	row  insertRow
	done chan insertResult
}

type insertRow struct {
	ID, CreatedBy, CreatedByType string
	SenderID, SenderType         string
	ReceiverID, ReceiverType     string
	Type                         int64
	Content                      string
	Internal                     bool
}

type insertResult struct {
	msg *Message
	err error
}

func (b *Batcher) start() {
	flushers, size := b.Flushers, b.MaxBatch
	if flushers <= 0 {
		flushers = 4
	}
	if size <= 0 {
		size = 128
	}
	b.queue = make(chan *pendingInsert, size*flushers)
	for range flushers {
		go b.flushLoop(size)
	}
}

// insert queues row and waits for its batch. A request that gives up after
// queueing may still be inserted, as if it had given up just after a
// single-row insert.
func (b *Batcher) insert(ctx context.Context, row insertRow) (*Message, error) {
	b.once.Do(b.start)
	p := &pendingInsert{row: row, done: make(chan insertResult, 1)}
	select {
	case b.queue <- p:
	case <-ctx.Done():
		return nil, fmt.Errorf("create message: %w", ctx.Err())
	}
	select {
	case r := <-p.done:
		return r.msg, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("create message: %w", ctx.Err())
	}
}

func (b *Batcher) flushLoop(size int) {
	for first := range b.queue {
		batch := []*pendingInsert{first}
	fill:
		for len(batch) < size {
			select {
			case p := <-b.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		b.flush(batch)
	}
}

// flush inserts a batch in one statement (after the receivers' stream
// locks, see lockStreams). When it fails, each row is tried
// on its own, so one bad row fails only its own request.
func (b *Batcher) flush(batch []*pendingInsert) {
	ctx := context.Background()
	rows := make([]insertRow, len(batch))
	for i, p := range batch {
		rows[i] = p.row
	}
	msgs, err := b.insertRows(ctx, rows)
	if err != nil && len(batch) > 1 {
		for _, p := range batch {
			one, err := b.insertRows(ctx, []insertRow{p.row})
			if err != nil {
				p.done <- insertResult{err: err}
				continue
			}
			p.done <- insertResult{msg: one[p.row.ID]}
		}
		return
	}
	for _, p := range batch {
		if err != nil {
			p.done <- insertResult{err: err}
			continue
		}
		p.done <- insertResult{msg: msgs[p.row.ID]}
	}
}

func (b *Batcher) insertRows(ctx context.Context, rows []insertRow) (map[string]*Message, error) {
	n := len(rows)
	ids, by, byType := make([]string, n), make([]string, n), make([]string, n)
	senders, senderTypes, receivers, receiverTypes := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	types, contents, internal := make([]int64, n), make([]string, n), make([]bool, n)
	for i, r := range rows {
		ids[i], by[i], byType[i] = r.ID, r.CreatedBy, r.CreatedByType
		senders[i], senderTypes[i], receivers[i], receiverTypes[i] = r.SenderID, r.SenderType, r.ReceiverID, r.ReceiverType
		types[i], contents[i], internal[i] = r.Type, r.Content, r.Internal
	}
	tx, err := b.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("create message: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := lockStreams(ctx, tx, receivers); err != nil {
		return nil, err
	}
	var out []Message
	err = tx.SelectContext(ctx, &out, `INSERT INTO messages (id, created_by, created_by_type, sender_id, sender_type,
			receiver_id, receiver_type, type, content, internal)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::smallint[], $9::text[], $10::boolean[])
		RETURNING `+columns,
		pq.StringArray(ids), pq.StringArray(by), pq.StringArray(byType), pq.StringArray(senders), pq.StringArray(senderTypes),
		pq.StringArray(receivers), pq.StringArray(receiverTypes), pq.Int64Array(types), pq.StringArray(contents), pq.BoolArray(internal))
	if err != nil {
		return nil, fmt.Errorf("create message: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("create message: commit: %w", err)
	}
	byID := make(map[string]*Message, len(out))
	for i := range out {
		out[i].fill()
		byID[out[i].ID] = &out[i]
	}
	return byID, nil
}
