//go:build integration

package session_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/session"
	"github.com/vigil-health/vigil/internal/testenv"
)

var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "session", &db, seedStaff)) }

func seedStaff(ctx context.Context, db *sqlx.DB) error {
	_, err := db.ExecContext(ctx, `
		INSERT INTO staff_roles (role) VALUES ('NURSE') ON CONFLICT DO NOTHING;
		INSERT INTO staff (id, login, name, role, access) VALUES
			('S1', 's1', 'One', 'NURSE', 'staff'), ('S2', 's2', 'Two', 'NURSE', 'charge')`)
	return err
}

func open(t *testing.T, subject string, o session.Open) session.Opened {
	t.Helper()
	o.SubjectType, o.SubjectID = "staff", subject
	if o.Origin == "" {
		o.Origin = session.OriginAPI
	}
	if o.Lifetime == 0 {
		o.Lifetime = time.Hour
	}
	opened, err := (&session.Store{DB: db}).Open(context.Background(), o)
	require.NoError(t, err)
	return opened
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	st := &session.Store{DB: db}
	first := open(t, "S1", session.Open{WithRefresh: true})
	require.True(t, strings.HasPrefix(first.Refresh, session.RefreshTokenPrefix))

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"malformed", "not-a-refresh-token", session.ErrInvalidRefresh},
		{"unknown", session.RefreshTokenPrefix + "unknown", session.ErrInvalidRefresh},
		{"over long", session.RefreshTokenPrefix + strings.Repeat("x", 200), session.ErrInvalidRefresh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := st.Rotate(ctx, tt.token)
			require.ErrorIs(t, err, tt.want)
		})
	}

	sess, second, err := st.Rotate(ctx, first.Refresh)
	require.NoError(t, err)
	require.Equal(t, first.ID, sess.ID)
	require.NotEqual(t, first.Refresh, second)

	// Reuse of the first token ends the session: the second stops too.
	sess, _, err = st.Rotate(ctx, first.Refresh)
	require.ErrorIs(t, err, session.ErrRefreshReused)
	require.Equal(t, first.ID, sess.ID)
	_, _, err = st.Rotate(ctx, second)
	require.ErrorIs(t, err, session.ErrSessionEnded)
	got, err := st.Get(ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, session.ReasonRefreshReused, got.RevokeReason)
}

func TestRotate_ConcurrentUseIsReuse(t *testing.T) {
	ctx := context.Background()
	st := &session.Store{DB: db}
	opened := open(t, "S1", session.Open{WithRefresh: true})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, _, errs[i] = st.Rotate(ctx, opened.Refresh) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, session.ErrRefreshReused)
	}
	require.Equal(t, 1, ok, "exactly one use wins")
}

func TestRevokeSubjectAndChecker(t *testing.T) {
	ctx := context.Background()
	st := &session.Store{DB: db}
	a := open(t, "S2", session.Open{})
	b := open(t, "S2", session.Open{Origin: session.OriginConsole, WithSecret: true})
	now := time.Now()
	checker := &session.Checker{DB: db, TTL: time.Hour, Now: func() time.Time { return now }}

	r, err := checker.Check(ctx, a.ID, "staff", "S2")
	require.NoError(t, err)
	require.Equal(t, session.Rights{Live: true, Access: "charge", Role: "NURSE"}, r)
	r, err = checker.Check(ctx, a.ID, "staff", "S1")
	require.NoError(t, err)
	require.False(t, r.Live, "another subject's session")
	r, err = checker.Check(ctx, "not-a-uuid", "staff", "S2")
	require.NoError(t, err)
	require.False(t, r.Live)

	sid, _, subject, r, err := checker.CheckCookie(ctx, b.Cookie)
	require.NoError(t, err)
	require.Equal(t, b.ID, sid)
	require.Equal(t, "S2", subject)
	require.True(t, r.Live)
	_, _, _, r, err = checker.CheckCookie(ctx, b.ID+".wrong-secret")
	require.NoError(t, err)
	require.False(t, r.Live, "a wrong secret")
	_, _, _, r, err = checker.CheckCookie(ctx, a.ID+".anything")
	require.NoError(t, err)
	require.False(t, r.Live, "an API session has no cookie")

	n, err := st.RevokeSubject(ctx, "staff", "S2", session.ReasonPasswordChange)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	r, err = checker.Check(ctx, a.ID, "staff", "S2")
	require.NoError(t, err)
	require.True(t, r.Live, "cached until the TTL passes or Forget")
	checker.ForgetSubject("staff", "S2")
	r, err = checker.Check(ctx, a.ID, "staff", "S2")
	require.NoError(t, err)
	require.False(t, r.Live)
	require.Contains(t, r.Reason, session.ReasonPasswordChange)
	now = now.Add(2 * time.Hour)
	_, _, _, r, err = checker.CheckCookie(ctx, b.Cookie)
	require.NoError(t, err)
	require.False(t, r.Live, "re-read after the TTL")

	// Rights follow the account: deactivated or removed staff are not live.
	c := open(t, "S1", session.Open{})
	_, err = db.Exec(`UPDATE staff SET active = false WHERE id = 'S1'`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Exec(`UPDATE staff SET active = true WHERE id = 'S1'`) })
	r, err = (&session.Checker{DB: db}).Check(ctx, c.ID, "staff", "S1")
	require.NoError(t, err)
	require.Equal(t, "the account is deactivated", r.Reason)

	list, err := st.List(ctx, "staff", "S2")
	require.NoError(t, err)
	require.Len(t, list, 2)
	for _, s := range list {
		require.NotNil(t, s.RevokedAt)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	st := &session.Store{DB: db}
	old := open(t, "S1", session.Open{WithRefresh: true})
	_, err := db.Exec(`UPDATE sessions SET expires_at = now() - interval '3 days' WHERE id = $1`, old.ID)
	require.NoError(t, err)
	live := open(t, "S1", session.Open{})
	n, err := st.Prune(ctx, 24*time.Hour)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(1))
	_, err = st.Get(ctx, old.ID)
	require.ErrorIs(t, err, session.ErrNotFound)
	_, err = st.Get(ctx, live.ID)
	require.NoError(t, err)
}

// BenchmarkChecker measures the per-request session check: a cache hit (what
// almost every request pays) and a miss (one query, once per session every
// DefaultCheckTTL).
func BenchmarkChecker(b *testing.B) {
	ctx := context.Background()
	opened, err := (&session.Store{DB: db}).Open(ctx, session.Open{SubjectType: "staff", SubjectID: "S2", Origin: session.OriginAPI, Lifetime: time.Hour})
	require.NoError(b, err)
	b.Run("cached", func(b *testing.B) {
		checker := &session.Checker{DB: db}
		_, err := checker.Check(ctx, opened.ID, "staff", "S2")
		require.NoError(b, err)
		for b.Loop() {
			if _, err := checker.Check(ctx, opened.ID, "staff", "S2"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		checker := &session.Checker{DB: db, TTL: time.Nanosecond}
		for b.Loop() {
			if _, err := checker.Check(ctx, opened.ID, "staff", "S2"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
