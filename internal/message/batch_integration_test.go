//go:build integration

package message

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestBatcher_ConcurrentCreatesShareCommits: concurrent creates through one
// Batcher all land, each answer is its own message, and a row the database
// refuses fails only its own request.
func TestBatcher_ConcurrentCreatesShareCommits(t *testing.T) {
	ctx := context.Background()
	b := &Batcher{DB: db, Flushers: 2, MaxBatch: 16}
	s := &Store{DB: db, Batcher: b}
	p := prefix()
	const n = 200
	var wg sync.WaitGroup
	got := make([]*Message, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.Create(ctx, sysClaims, NewMessage{
				SenderID: p + "sys", SenderType: "system", ReceiverID: p + "patient", ReceiverType: "patient",
				Type: TypeGeneral, Content: uuid.NewString(),
			})
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		require.NoError(t, errs[i])
		require.False(t, seen[got[i].ID], "one answer per message")
		seen[got[i].ID] = true
		require.Equal(t, TypeGeneral, got[i].Type)
		require.Equal(t, p+"patient", got[i].ReceiverID)
	}
	var stored int
	require.NoError(t, db.GetContext(ctx, &stored, `SELECT count(*) FROM messages WHERE receiver_id = $1`, p+"patient"))
	require.Equal(t, n, stored)

	// A batch with a row the database refuses (an unknown type) falls back
	// to single rows: only that one fails.
	good := insertRow{ID: uuid.NewString(), CreatedBy: "x", CreatedByType: "system", SenderID: p + "a", SenderType: "system",
		ReceiverID: p + "b", ReceiverType: "location", Type: int64(TypeGeneral), Content: "ok"}
	bad := good
	bad.ID, bad.Type = uuid.NewString(), 99
	batch := []*pendingInsert{{row: good, done: make(chan insertResult, 1)}, {row: bad, done: make(chan insertResult, 1)}}
	b.flush(batch)
	r := <-batch[0].done
	require.NoError(t, r.err)
	require.Equal(t, good.ID, r.msg.ID)
	r = <-batch[1].done
	require.Error(t, r.err)
}
