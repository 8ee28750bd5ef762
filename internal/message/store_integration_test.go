//go:build integration

package message

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/testenv"
)

// db is this package's fresh, migrated database. Tests use party ids of
// their own (a random prefix), so they do not see each other's messages.
var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "message", &db, nil)) }

func store() *Store { return &Store{DB: db} }

var sysClaims = &auth.Claims{Subject: "test-system", SubjectType: auth.SubjectSystem, Scopes: []string{"*"}}

func prefix() string { return "T" + uuid.NewString()[:8] + "-" }

// TestVisibilitySQLMatchesVisible creates every combination of party types,
// a few ids and every type, and checks for several callers that the SQL
// filter selects exactly the messages Visible allows.
func TestVisibilitySQLMatchesVisible(t *testing.T) {
	ctx := context.Background()
	p := prefix()
	ids := []string{p + "A", p + "B"}
	types := []Type{TypeGeneral, TypeCallback, TypeRedAlert, TypeAmberAlert, TypeGreyAlert, TypeClearAlerts}
	var all []*Message
	for _, st := range PartyTypes {
		for _, rt := range PartyTypes {
			for _, sid := range ids {
				for _, typ := range types {
					m, err := store().Create(ctx, sysClaims, NewMessage{SenderType: st, SenderID: sid, ReceiverType: rt, ReceiverID: ids[1], Type: typ, Content: "x"})
					require.NoError(t, err)
					all = append(all, m)
				}
			}
		}
	}
	callers := []*auth.Claims{
		{Subject: p + "A", SubjectType: auth.SubjectPatient},
		{Subject: p + "B", SubjectType: auth.SubjectPatient},
		{Subject: p + "A", SubjectType: auth.SubjectClinician},
		{Subject: p + "Z", SubjectType: auth.SubjectClinician, LocationIDs: []string{p + "B"}},
		{Subject: p + "Z", SubjectType: auth.SubjectClinician},
		sysClaims,
		{Subject: p + "A", SubjectType: auth.SubjectDevice},
	}
	for i, c := range callers {
		t.Run(strconv.Itoa(i)+"-"+c.SubjectType, func(t *testing.T) {
			var a database.Args
			prefixArg := a.Add(p + "%")
			var got []string
			require.NoError(t, db.SelectContext(ctx, &got, `SELECT id FROM messages WHERE sender_id LIKE `+prefixArg+` AND `+visibilitySQL(c, a.Add)+` ORDER BY id`, a...))
			var want []string
			for _, m := range all {
				if Visible(c, m) {
					want = append(want, m.ID)
				}
			}
			slices.Sort(want)
			require.Equal(t, want, got)
		})
	}
}

// TestActivePairDoesNotLeak is the seed's operator-precedence bug: the
// active pair list must hold only the pair's unconfirmed messages and
// callbacks, never another pair's unconfirmed ones.
func TestActivePairDoesNotLeak(t *testing.T) {
	ctx := context.Background()
	p := prefix()
	mk := func(s, r string, typ Type) *Message {
		m, err := store().Create(ctx, sysClaims, NewMessage{SenderType: PartyLocation, SenderID: p + s, ReceiverType: PartyPatient, ReceiverID: p + r, Type: typ, Content: "x"})
		require.NoError(t, err)
		return m
	}
	now := time.Now()
	unconfirmed := mk("L1", "P1", TypeGeneral)
	confirmedCallback := mk("L1", "P1", TypeCallback)
	_, err := store().Update(ctx, sysClaims, confirmedCallback.ID, Patch{Confirmed: &now})
	require.NoError(t, err)
	confirmed := mk("L1", "P1", TypeDosage)
	_, err = store().Update(ctx, sysClaims, confirmed.ID, Patch{Confirmed: &now})
	require.NoError(t, err)
	mk("L1", "P2", TypeGeneral)  // another receiver
	mk("L2", "P1", TypeGeneral)  // another sender
	mk("L2", "P2", TypeCallback) // another pair's callback
	mk("P1", "L1", TypeGeneral)  // the pair reversed
	page, err := store().List(ctx, sysClaims, ListQuery{SenderID: p + "L1", ReceiverID: p + "P1", Active: true})
	require.NoError(t, err)
	var got []string
	for _, m := range page.Items {
		got = append(got, m.ID)
	}
	require.Equal(t, []string{confirmedCallback.ID, unconfirmed.ID}, got)
}

func TestPartyListMergesBothSides(t *testing.T) {
	ctx := context.Background()
	p := prefix()
	var want []string
	for i := range 30 {
		m := NewMessage{SenderType: PartyPatient, SenderID: p + "P", ReceiverType: PartyLocation, ReceiverID: p + "L", Type: TypeGeneral, Content: strconv.Itoa(i)}
		switch i % 3 {
		case 1:
			m.SenderType, m.SenderID, m.ReceiverType, m.ReceiverID = PartyLocation, p+"L", PartyPatient, p+"P"
		case 2: // to itself: listed once
			m.ReceiverType, m.ReceiverID = PartyPatient, p+"P"
		}
		created, err := store().Create(ctx, sysClaims, m)
		require.NoError(t, err)
		want = append([]string{created.ID}, want...)
	}
	// Noise: other parties.
	_, err := store().Create(ctx, sysClaims, NewMessage{SenderType: PartyPatient, SenderID: p + "Q", ReceiverType: PartyLocation, ReceiverID: p + "L", Type: TypeGeneral, Content: "x"})
	require.NoError(t, err)
	var got []string
	q := ListQuery{PartyID: p + "P", Limit: 7}
	for {
		page, err := store().List(ctx, &auth.Claims{Subject: p + "P", SubjectType: auth.SubjectPatient}, q)
		require.NoError(t, err)
		for _, m := range page.Items {
			got = append(got, m.ID)
		}
		if page.Next == nil {
			break
		}
		q.Cursor = page.Next
	}
	require.Equal(t, want, got)

	page, err := store().List(ctx, sysClaims, ListQuery{PartyID: p + "P", PartyType: PartyLocation})
	require.NoError(t, err)
	require.Empty(t, page.Items, "P is never a location")
}

func TestContentIsImmutableInTheDatabase(t *testing.T) {
	ctx := context.Background()
	m, err := store().Create(ctx, sysClaims, NewMessage{SenderType: PartySystem, SenderID: "s", ReceiverType: PartyPatient, ReceiverID: prefix() + "P", Type: TypeGeneral, Content: "original"})
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `UPDATE messages SET content = 'changed' WHERE id = $1`, m.ID)
	require.ErrorContains(t, err, "only the state columns")
	_, err = db.ExecContext(ctx, `INSERT INTO messages (id, created_by, created_by_type, sender_id, sender_type, receiver_id, receiver_type, type, content)
		VALUES ($1, 's', 'system', 's', 'system', 'r', 'patient', 4, 'x')`, uuid.NewString())
	require.ErrorContains(t, err, "foreign key", "type 4 is not in message_types")
}

// seedParty inserts n messages for party, alternately sent and received,
// a millisecond apart, in one statement.
func seedParty(tb testing.TB, party string, n int) {
	tb.Helper()
	_, err := db.Exec(`
		INSERT INTO messages (id, created_at, created_by, created_by_type, sender_id, sender_type, receiver_id, receiver_type, type, content, confirmed)
		SELECT gen_random_uuid(), now() - i * interval '1 millisecond', 'bench', 'system',
			CASE WHEN i % 2 = 0 THEN $1 ELSE 'LOC-' || (i % 7) END, CASE WHEN i % 2 = 0 THEN 'patient' ELSE 'location' END,
			CASE WHEN i % 2 = 1 THEN $1 ELSE 'LOC-' || (i % 7) END, CASE WHEN i % 2 = 1 THEN 'patient' ELSE 'location' END,
			(ARRAY[0, 1, 2, 3, 5])[1 + i % 5], 'message ' || i, CASE WHEN i % 3 = 0 THEN NULL ELSE now() END
		FROM generate_series(1, $2) AS i`, party, n)
	require.NoError(tb, err)
	_, err = db.Exec(`ANALYZE messages`)
	require.NoError(tb, err)
}

func TestPartyListOf10000(t *testing.T) {
	ctx := context.Background()
	party := prefix() + "P"
	seedParty(t, party, 10000)
	seen := map[string]bool{}
	q := ListQuery{PartyID: party, Limit: MaxLimit}
	var prev *Message
	for {
		page, err := store().List(ctx, &auth.Claims{Subject: party, SubjectType: auth.SubjectPatient}, q)
		require.NoError(t, err)
		for i := range page.Items {
			m := &page.Items[i]
			require.False(t, seen[m.ID])
			seen[m.ID] = true
			if prev != nil {
				require.True(t, m.CreatedAt.Before(prev.CreatedAt) || (m.CreatedAt.Equal(prev.CreatedAt) && m.ID < prev.ID))
			}
			prev = m
		}
		if page.Next == nil {
			break
		}
		q.Cursor = page.Next
	}
	require.Len(t, seen, 10000)
}

// BenchmarkPartyFirstPage lists the first page (50) of one party's 10,000
// messages through sender-or-receiver, as the patient itself and as a
// clinician, and the whole list in pages of 500.
func BenchmarkPartyFirstPage(b *testing.B) {
	ctx := context.Background()
	party := prefix() + "P"
	seedParty(b, party, 10000)
	callers := map[string]*auth.Claims{
		"patient":   {Subject: party, SubjectType: auth.SubjectPatient},
		"clinician": {Subject: "C-bench", SubjectType: auth.SubjectClinician, LocationIDs: []string{"LOC-1"}},
		"system":    sysClaims,
	}
	for _, name := range []string{"patient", "clinician", "system"} {
		b.Run("first-page/"+name, func(b *testing.B) {
			for b.Loop() {
				if _, err := store().List(ctx, callers[name], ListQuery{PartyID: party}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("active-first-page/patient", func(b *testing.B) {
		for b.Loop() {
			if _, err := store().List(ctx, callers["patient"], ListQuery{PartyID: party, Active: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("all-pages-of-500/patient", func(b *testing.B) {
		for b.Loop() {
			q := ListQuery{PartyID: party, Limit: MaxLimit}
			for {
				page, err := store().List(ctx, callers["patient"], q)
				if err != nil {
					b.Fatal(err)
				}
				if page.Next == nil {
					break
				}
				q.Cursor = page.Next
			}
		}
	})
}
