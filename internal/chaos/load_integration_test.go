//go:build integration

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// monitor sends alerts as a well-behaved monitoring system does: each alert
// has an Idempotency-Key, and an alert without a definite answer (no
// connection, 502/503/504, 429) is sent again with the same key, after
// Retry-After when the API gives one, until it is answered or the deadline
// passes. It records every answer, so scenarios can prove there was never a
// 500 and that no answer was a lie.
type monitor struct {
	baseURL, apiKey string
	client          *http.Client

	mu sync.Mutex
	// accepted are the alerts answered 2xx, by dedup key.
	accepted map[string]int
	// incidents are the incident ids the answers named, by dedup key.
	incidents map[string]map[string]bool
	// statuses counts every HTTP answer by status code (retries included).
	statuses map[int]int
	// missingRetryAfter counts 503 answers without Retry-After.
	missingRetryAfter int
	// refused counts connections refused (the request never reached the
	// API: safe to retry); broken counts requests cut after they were sent
	// (an in-flight request the API dropped).
	refused, broken atomic.Int64
	// gaveUp are alerts never answered 2xx before their deadline.
	gaveUp atomic.Int64
	// rejected are alerts answered with a final 4xx (the suite sends only
	// valid alerts, so any is a failure).
	rejected atomic.Int64
	// firstOK is when the first 2xx answer after markOK was reset arrived.
	okSince time.Time
	firstOK time.Time
}

func newMonitor(baseURL, apiKey string) *monitor {
	return &monitor{
		baseURL: baseURL, apiKey: apiKey,
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second,
			DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		}},
		accepted: map[string]int{}, incidents: map[string]map[string]bool{}, statuses: map[int]int{},
	}
}

// watchRecovery makes firstOKAfter report the first 2xx answered after now.
func (m *monitor) watchRecovery() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.okSince, m.firstOK = time.Now(), time.Time{}
}

// firstOKAfter is the first 2xx answer since watchRecovery (zero if none).
func (m *monitor) firstOKAfter() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.firstOK
}

type alertAnswer struct {
	Result     string `json:"result"`
	IncidentID string `json:"incident_id"`
}

// send delivers one alert, retrying as described on monitor; it returns
// the final status (0 when it gave up).
func (m *monitor) send(ctx context.Context, dedupKey, alertType string) int {
	body, _ := json.Marshal(map[string]any{
		"alert_type": alertType, "dedup_key": dedupKey, "room": "ICU-" + strconv.Itoa(len(dedupKey)%9+1),
		"source": "chaos-monitor", "value": 1, "patient_id": "P-CHAOS-" + strconv.Itoa(len(dedupKey)),
		"observed_at": time.Now().UTC().Format(time.RFC3339Nano),
	})
	idem := uuid.NewString()
	backoff := 200 * time.Millisecond
	for {
		status, retryAfter, ans := m.post(ctx, body, idem)
		if status >= 200 && status < 300 {
			m.mu.Lock()
			m.accepted[dedupKey]++
			if ans.IncidentID != "" {
				if m.incidents[dedupKey] == nil {
					m.incidents[dedupKey] = map[string]bool{}
				}
				m.incidents[dedupKey][ans.IncidentID] = true
			}
			if !m.okSince.IsZero() && m.firstOK.IsZero() {
				m.firstOK = time.Now()
			}
			m.mu.Unlock()
			return status
		}
		retry := status == 0 || status == http.StatusTooManyRequests || status == http.StatusBadGateway ||
			status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
		if !retry {
			m.rejected.Add(1)
			return status
		}
		wait := backoff
		if retryAfter > 0 {
			wait = retryAfter
		}
		backoff = min(backoff*2, 2*time.Second)
		select {
		case <-ctx.Done():
			m.gaveUp.Add(1)
			return 0
		case <-time.After(wait):
		}
	}
}

func (m *monitor) post(ctx context.Context, body []byte, idem string) (int, time.Duration, alertAnswer) {
	var ans alertAnswer
	rctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, m.baseURL+"/v1/alerts", bytes.NewReader(body))
	if err != nil {
		return 0, 0, ans
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+m.apiKey)
	req.Header.Set("Idempotency-Key", idem)
	resp, err := m.client.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			m.refused.Add(1)
		} else if ctx.Err() == nil {
			m.broken.Add(1)
		}
		return 0, 0, ans
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &ans)
	var retryAfter time.Duration
	if v := resp.Header.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			retryAfter = time.Duration(n) * time.Second
		}
	}
	m.mu.Lock()
	m.statuses[resp.StatusCode]++
	if resp.StatusCode == http.StatusServiceUnavailable && retryAfter == 0 {
		m.missingRetryAfter++
	}
	m.mu.Unlock()
	return resp.StatusCode, retryAfter, ans
}

// count returns the number of answers with status code.
func (m *monitor) count(code int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statuses[code]
}

// total is how many alerts were accepted over keys.
func (m *monitor) total(keys []string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, k := range keys {
		n += m.accepted[k]
	}
	return n
}

// load sends alerts at rate per second until ctx ends, each from next();
// sends run concurrently so a slow answer never slows the arrival rate, and
// a tick the sender missed is made up at once, so rate×duration alerts go
// out. It returns once every send has finished (each has until finish).
func (m *monitor) load(ctx context.Context, finish time.Time, rate float64, next func(i int) (key, alertType string)) int {
	sendCtx, cancel := context.WithDeadline(context.Background(), finish)
	defer cancel()
	var wg sync.WaitGroup
	tick := time.NewTicker(min(time.Duration(float64(time.Second)/rate), 20*time.Millisecond))
	defer tick.Stop()
	began := time.Now()
	n := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			for due := int(time.Since(began).Seconds() * rate); n < due; n++ {
				key, typ := next(n)
				wg.Add(1)
				go func() { defer wg.Done(); m.send(sendCtx, key, typ) }()
			}
		}
	}
	wg.Wait()
	return n
}

// loadRun is what one scenario under load sent and what the checks found.
type loadRun struct {
	m    *monitor
	sent int
	ids  []string
	// o sums the alert, page, Slack and SMS checks; o.lastDelivery is the
	// last first page's sent_at.
	o outcome
	// checked is when every check had passed (or given up).
	checked time.Time
}

// underLoad sends alerts on keys "<prefix>-N" (N modulo distinct when it is
// positive, so alerts merge) at rate while inject runs, then waits for and
// checks every alert, first page (in-app and SMS), Slack message and SMS
// duplicate (smsDup).
func (s *stack) underLoad(t *testing.T, p profile, prefix string, rate float64, distinct int, smsDup func(*testing.T) int, inject func(*monitor)) loadRun {
	t.Helper()
	m := newMonitor(s.apiURL, s.apiKey)
	var keys []string
	ctx, stop := context.WithCancel(context.Background())
	sent := make(chan int, 1)
	go func() {
		sent <- m.load(ctx, time.Now().Add(3*time.Minute), rate, func(i int) (string, string) {
			if distinct > 0 {
				i %= distinct
			}
			k := prefix + "-" + strconv.Itoa(i)
			keys = append(keys, k)
			return k, loadType
		})
	}()
	inject(m)
	stop()
	r := loadRun{m: m, sent: <-sent}
	r.o, r.ids = s.checkAlerts(t, m, dedupe(keys), p.settle)
	r.o.add(s.checkPages(t, r.ids, pageCheck{steps: []string{"assign"}, sms: true}, p.settle))
	r.o.add(s.checkSlack(r.ids, p.settle))
	r.checked = time.Now()
	r.o.duplicated += smsDup(t)
	return r
}

// requireClean fails the scenario on a dishonest answer, a lost alert or
// page, or a duplicated one.
func (r loadRun) requireClean(t *testing.T) {
	t.Helper()
	r.m.requireHonest(t)
	require.Zero(t, r.o.lost, "lost")
	require.Zero(t, r.o.duplicated, "duplicated")
}
