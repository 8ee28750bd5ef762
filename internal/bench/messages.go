package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// MessagesOptions configures `vigil bench messages`.
type MessagesOptions struct {
	// BaseURL is the API under test.
	BaseURL string
	// DB is its Postgres: the list phase seeds its 10,000 messages there
	// directly, and the run's messages are deleted from it at the end.
	DB *sqlx.DB
	// Token is a system token (scope "*") for the API.
	Token string
	// PatientToken, when set, is a patient token for the subject
	// PatientID; the list phase then also reads as that patient.
	PatientToken, PatientID string
	// Rate is the create phase's arrival rate (per second), for Duration.
	Rate     float64
	Duration time.Duration
	// Messages is how many messages the list phase's party has.
	Messages int
	// Reads is how many times the first page is read.
	Reads int
	// Keep leaves the run's messages in the database.
	Keep bool
}

// MessagesReport is what `vigil bench messages` measured.
type MessagesReport struct {
	CreateOffered  float64 `json:"create_offered_per_s"`
	CreateAchieved float64 `json:"create_achieved_per_s"`
	Create         Latency `json:"create_http"`
	CreateErrors   int     `json:"create_errors"`

	Messages          int     `json:"party_messages"`
	FirstPage         Latency `json:"first_page_http"`
	FirstPagePatient  Latency `json:"first_page_patient_http"`
	ActiveFirstPage   Latency `json:"active_first_page_http"`
	AllPages500Ms     float64 `json:"all_pages_limit_500_ms"`
	AllPages500Count  int     `json:"all_pages_limit_500_pages"`
	AllPages50Ms      float64 `json:"all_pages_limit_50_ms"`
	AllPages50Count   int     `json:"all_pages_limit_50_pages"`
	AllPagesListed    int     `json:"all_pages_messages"`
	ListErrors        int     `json:"list_errors"`
	PartyID           string  `json:"party_id"`
	PatientPartyCheck bool    `json:"patient_token_used"`
}

// Messages runs the messages benchmark: a create phase (POST /v1/messages at
// Rate for Duration, open loop) and a list phase (one party with Messages
// messages, half sent and half received, read through the sender-or-receiver
// list: the first page Reads times, then every page).
func Messages(ctx context.Context, o MessagesOptions, progress io.Writer) (*MessagesReport, error) {
	c := newClient(o.BaseURL, "", 512)
	run := "BENCH-" + uuid.NewString()[:8]
	rep := &MessagesReport{CreateOffered: o.Rate, Messages: o.Messages}

	fmt.Fprintf(progress, "create: messages at %.0f/s for %s\n", o.Rate, o.Duration)
	start := time.Now()
	created := openLoop(ctx, o.Rate, o.Duration, func(i int) (time.Duration, error) {
		body := map[string]any{
			"sender_type": "location", "sender_id": run + "-WARD", "receiver_type": "patient",
			"receiver_id": fmt.Sprintf("%s-P%03d", run, i%100), "message_type": map[string]int{"value": 1},
			"content": "Take 4 units of insulin with your evening meal.",
		}
		t0 := time.Now()
		_, err := c.post(ctx, "/v1/messages", body, o.Token)
		return time.Since(t0), err
	})
	elapsed := time.Since(start)
	rep.Create, rep.CreateErrors = summarize(created.durations), created.errors
	rep.CreateAchieved = float64(len(created.durations)) / max(elapsed, o.Duration).Seconds()

	party := o.PatientID
	if party == "" {
		party = run + "-PARTY"
	}
	rep.PartyID = party
	fmt.Fprintf(progress, "list: seeding %d messages for %s\n", o.Messages, party)
	if _, err := o.DB.ExecContext(ctx, `
		INSERT INTO messages (id, created_at, created_by, created_by_type, sender_id, sender_type, receiver_id, receiver_type,
			type, content, confirmed)
		SELECT gen_random_uuid(), now() - i * interval '10 seconds', 'vigil-bench', 'system',
			CASE WHEN i % 2 = 0 THEN $1 ELSE $2 || (i % 5) END, CASE WHEN i % 2 = 0 THEN 'patient' ELSE 'location' END,
			CASE WHEN i % 2 = 1 THEN $1 ELSE $2 || (i % 5) END, CASE WHEN i % 2 = 1 THEN 'patient' ELSE 'location' END,
			(ARRAY[0, 1, 2, 3, 5])[1 + i % 5], 'Benchmark message ' || i, CASE WHEN i % 4 = 0 THEN NULL ELSE now() END
		FROM generate_series(1, $3) AS i`, party, run+"-LOC", o.Messages); err != nil {
		return nil, fmt.Errorf("seed party messages: %w", err)
	}
	if _, err := o.DB.ExecContext(ctx, `ANALYZE messages`); err != nil {
		return nil, fmt.Errorf("analyze messages: %w", err)
	}
	path := "/v1/parties/" + url.PathEscape(party) + "/messages"
	read := func(token, p string) (time.Duration, error) {
		t0 := time.Now()
		_, err := c.get(ctx, p, token)
		return time.Since(t0), err
	}
	measure := func(token, p string) Latency {
		var ds []time.Duration
		for range o.Reads {
			d, err := read(token, p)
			if err != nil {
				rep.ListErrors++
				continue
			}
			ds = append(ds, d)
		}
		return summarize(ds)
	}
	fmt.Fprintf(progress, "list: first page x %d\n", o.Reads)
	rep.FirstPage = measure(o.Token, path)
	rep.ActiveFirstPage = measure(o.Token, path+"?active=true")
	if o.PatientToken != "" && o.PatientID != "" {
		rep.PatientPartyCheck = true
		rep.FirstPagePatient = measure(o.PatientToken, path)
	}
	for _, limit := range []int{500, 50} {
		fmt.Fprintf(progress, "list: every page, %d per page\n", limit)
		t0 := time.Now()
		pages, n, err := c.walk(ctx, path, limit, o.Token)
		if err != nil {
			return nil, err
		}
		ms := float64(time.Since(t0).Microseconds()) / 1000
		if limit == 500 {
			rep.AllPages500Ms, rep.AllPages500Count, rep.AllPagesListed = ms, pages, n
		} else {
			rep.AllPages50Ms, rep.AllPages50Count = ms, pages
		}
	}

	if !o.Keep {
		fmt.Fprintf(progress, "cleanup: deleting the run's messages\n")
		if _, err := o.DB.ExecContext(ctx, `DELETE FROM messages WHERE sender_id LIKE $1 OR receiver_id LIKE $1 OR sender_id = $2 OR receiver_id = $2`,
			run+"-%", party); err != nil {
			return nil, fmt.Errorf("delete benchmark messages: %w", err)
		}
	}
	return rep, nil
}

// walk reads every page of a message list and returns the page and
// message counts.
func (c *client) walk(ctx context.Context, path string, limit int, token string) (pages, n int, err error) {
	next := fmt.Sprintf("%s?limit=%d", path, limit)
	for {
		raw, err := c.get(ctx, next, token)
		if err != nil {
			return pages, n, err
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return pages, n, fmt.Errorf("decode page: %w", err)
		}
		pages++
		n += len(page.Items)
		if page.NextCursor == nil {
			return pages, n, nil
		}
		next = fmt.Sprintf("%s?limit=%d&cursor=%s", path, limit, url.QueryEscape(*page.NextCursor))
	}
}

// SystemToken logs a staff administrator in and exchanges the session for a
// one-hour system token (POST /v1/auth/system-token), for runs without the
// signing secret.
func SystemToken(ctx context.Context, baseURL, login, password string) (string, error) {
	c := newClient(baseURL, "", 0)
	staff, err := c.login(ctx, login, password)
	if err != nil {
		return "", err
	}
	raw, err := c.post(ctx, "/v1/auth/system-token", map[string]any{"system_id": "vigil-bench", "ttl_seconds": 3600}, staff)
	if err != nil {
		return "", fmt.Errorf("get a system token: %w", err)
	}
	var sys struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &sys); err != nil {
		return "", fmt.Errorf("decode system token: %w", err)
	}
	return sys.Token, nil
}
