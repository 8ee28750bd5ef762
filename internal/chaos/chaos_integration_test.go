//go:build integration

package chaos

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/mail/mailsink"
	"github.com/vigil-health/vigil/internal/slacknotify/slackfake"
	"github.com/vigil-health/vigil/internal/sms/smsfake"
	"github.com/vigil-health/vigil/internal/watch/directory/directorysim"
	"github.com/vigil-health/vigil/workflows"
)

// profile sizes the suite: short runs in `make test` (under 3 minutes),
// full is `make chaos` (VIGIL_CHAOS=full, under 15 minutes on 2 cores).
type profile struct {
	name string
	// rate is the background alert rate (new incidents per second) while
	// processes are crashed and restarted.
	rate float64
	// workerKills kill -9 the worker under load, killEvery apart.
	workerKills int
	killEvery   time.Duration
	// escalationIncidents have their first escalation step due
	// escalationWait after their first page; the worker is down from just
	// after the first page until downPastDue after the step was due.
	escalationIncidents int
	escalationWait      time.Duration
	downPastDue         time.Duration
	// temporalDown is how long the Temporal server stays stopped.
	temporalDown time.Duration
	// dbBlock is how long the database refuses connections.
	dbBlock time.Duration
	// providerOutage is how long Slack and SMS fail.
	providerOutage time.Duration
	// storm sends stormAlerts over stormWindow on stormKeys dedup keys.
	stormAlerts, stormKeys int
	stormWindow            time.Duration
	// directoryLatency is how slowly the directory answers, for
	// directorySlowFor.
	directoryLatency, directorySlowFor time.Duration
	// smtpOutage is how long the SMTP server is down.
	smtpOutage time.Duration
	// settle bounds the wait for Postgres and the simulators to show
	// everything after a scenario.
	settle time.Duration
	// recoveryTarget is the most a due page may lag the worker's readiness.
	recoveryTarget time.Duration
}

var (
	shortProfile = profile{name: "short", rate: 4, workerKills: 2, killEvery: 4 * time.Second,
		escalationIncidents: 10, escalationWait: 6 * time.Second, downPastDue: 5 * time.Second,
		temporalDown: 3 * time.Second, dbBlock: 10 * time.Second, providerOutage: 10 * time.Second,
		stormAlerts: 1000, stormKeys: 10, stormWindow: 5 * time.Second, directoryLatency: 20 * time.Second, directorySlowFor: 12 * time.Second, smtpOutage: 5 * time.Second, settle: 60 * time.Second, recoveryTarget: 5 * time.Second}
	fullProfile = profile{name: "full", rate: 10, workerKills: 10, killEvery: 8 * time.Second,
		escalationIncidents: 50, escalationWait: 15 * time.Second, downPastDue: 70 * time.Second,
		temporalDown: 10 * time.Second, dbBlock: 30 * time.Second, providerOutage: 60 * time.Second,
		stormAlerts: 5000, stormKeys: 20, stormWindow: 10 * time.Second, directoryLatency: 20 * time.Second, directorySlowFor: 45 * time.Second, smtpOutage: 45 * time.Second, settle: 120 * time.Second, recoveryTarget: 5 * time.Second}
)

// row is one line of the reliability table.
type row struct {
	scenario, injected string
	ops                string
	lost, duplicated   int
	recovery           string
}

type report struct {
	mu   sync.Mutex
	rows []row
}

func (r *report) add(x row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, x)
}

func (r *report) markdown(p profile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Chaos suite, %s profile, %s\n\n", p.name, time.Now().UTC().Format(time.RFC3339))
	b.WriteString("| Scenario | Injected | Operations | Lost | Duplicated | Time to recover |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, x := range r.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s |\n", x.scenario, x.injected, x.ops, x.lost, x.duplicated, x.recovery)
	}
	return b.String()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// TestChaos runs every fault scenario against one stack, in order, and
// prints the reliability table.
func TestChaos(t *testing.T) {
	p := shortProfile
	if os.Getenv("VIGIL_CHAOS") == "full" {
		p = fullProfile
	}
	if testing.Short() {
		t.Skip("the chaos suite starts real processes")
	}
	start := time.Now()
	s := startStack(t, p)
	rep := &report{}
	t.Cleanup(func() {
		out := rep.markdown(p)
		t.Logf("reliability table (%s):\n%s", secs(time.Since(start)), out)
		if path := os.Getenv("VIGIL_CHAOS_REPORT"); path != "" {
			_ = os.WriteFile(path, []byte(out), 0o644)
		}
	})
	smsSeen := 0
	smsDup := func(t *testing.T) int {
		n, err := s.smsDuplicates(context.Background())
		require.NoError(t, err)
		d := max(n-smsSeen, 0)
		smsSeen = n
		if d > 0 {
			t.Logf("%d SMS duplicated at the simulator", d)
		}
		return d
	}

	t.Run("WorkerKilledUnderLoad", func(t *testing.T) {
		var slowest time.Duration
		var lastReady time.Time
		r := s.underLoad(t, p, "kill", p.rate, 0, smsDup, func(*monitor) {
			for k := range p.workerKills {
				time.Sleep(p.killEvery / 2)
				s.worker.kill(t)
				time.Sleep(500 * time.Millisecond)
				slowest = max(slowest, s.worker.restart(t))
				lastReady = time.Now()
				if k < p.workerKills-1 {
					time.Sleep(p.killEvery / 2)
				}
			}
		})
		rep.add(row{"Worker kill -9 under load", fmt.Sprintf("kill -9 of `vigil worker` ×%d, %s apart, alerts at %.0f/s", p.workerKills, p.killEvery, p.rate),
			fmt.Sprintf("%d alerts, %d incidents", r.sent, len(r.ids)), r.o.lost, r.o.duplicated,
			fmt.Sprintf("worker ready ≤ %s after restart; last page %s after the last restart", secs(slowest), secs(max(r.o.lastDelivery.Sub(lastReady), 0)))})
		r.requireClean(t)
	})

	t.Run("WorkerKilledAcrossEscalation", func(t *testing.T) {
		m := newMonitor(s.apiURL, s.apiKey)
		keys := make([]string, p.escalationIncidents)
		var wg sync.WaitGroup
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := range keys {
			keys[i] = fmt.Sprintf("escalate-%d", i)
			wg.Add(1)
			go func() { defer wg.Done(); m.send(ctx, keys[i], escalationType) }()
		}
		wg.Wait()
		require.Zero(t, m.rejected.Load(), "alerts refused")
		o, ids := s.checkAlerts(t, m, keys, p.settle)
		require.Len(t, ids, len(keys))
		first := s.checkPages(t, ids, pageCheck{steps: []string{"assign"}}, p.settle)
		require.Zero(t, first.lost, "first pages")
		s.worker.kill(t)
		// The last first page was at first.lastDelivery; its step is due
		// escalationWait later. Stay down until downPastDue after that.
		time.Sleep(time.Until(first.lastDelivery.Add(p.escalationWait + p.downPastDue)))
		s.worker.restart(t)
		ready := time.Now()
		esc := s.checkPages(t, ids, pageCheck{steps: []string{"escalation-1", "delayed-1"}, sms: true}, p.settle)
		o.add(esc)
		o.duplicated += smsDup(t)
		var onTime int
		require.NoError(t, s.db.Get(&onTime, `SELECT count(*) FROM notification_outbox WHERE incident_id = ANY($1::uuid[]) AND step = 'escalation-1'`, pqArray(ids)))
		lag := esc.lastDelivery.Sub(ready)
		rep.add(row{"Worker kill -9 across an escalation step", fmt.Sprintf("%d incidents' step 1 due while the worker was down; restarted %s after it was due", len(ids), p.downPastDue),
			fmt.Sprintf("%d delayed pages (in-app + SMS)", len(ids)), o.lost, o.duplicated,
			fmt.Sprintf("every delayed page out %s after the worker was ready", secs(max(lag, 0)))})
		m.requireHonest(t)
		require.Zero(t, o.lost, "lost")
		require.Zero(t, o.duplicated, "duplicated")
		if p.downPastDue > workflows.LateTimerGrace {
			require.Zero(t, onTime, "pages due while the worker was down past the grace are labelled delayed-1")
		} else {
			require.Equal(t, 2*len(ids), onTime, "pages late by less than the grace keep their step's name")
		}
		require.LessOrEqual(t, lag, p.recoveryTarget, "due pages out within %s of readiness", p.recoveryTarget)
	})

	t.Run("ProvidersFailThenRecover", func(t *testing.T) {
		var back time.Time
		r := s.underLoad(t, p, "provider", p.rate, 0, smsDup, func(*monitor) {
			s.slack.SetOutage(&slackfake.Failure{Status: http.StatusServiceUnavailable})
			s.sms.SetOutage(&smsfake.Failure{Status: http.StatusServiceUnavailable, Code: 20503, Message: "Service Unavailable"})
			time.Sleep(p.providerOutage / 2)
			s.worker.kill(t)
			s.worker.restart(t)
			time.Sleep(p.providerOutage / 2)
			s.slack.SetOutage(nil)
			s.sms.SetOutage(nil)
			back = time.Now()
		})
		rec := max(r.o.lastDelivery.Sub(back), r.checked.Sub(back), 0)
		rep.add(row{"Slack and SMS fail, then recover", fmt.Sprintf("both providers answer 503 for %s, with a worker kill -9 in the middle", p.providerOutage),
			fmt.Sprintf("%d alerts, %d pages by SMS, %d Slack messages", r.sent, len(r.ids), len(r.ids)), r.o.lost, r.o.duplicated,
			fmt.Sprintf("all delivered %s after the providers recovered", secs(rec))})
		r.requireClean(t)
	})

	t.Run("SMTPDownThenBack", func(t *testing.T) {
		token := s.login(t, "a01")
		settings := map[string]any{}
		for _, id := range s.mailNodes {
			settings[id] = map[string]any{"COMMON_NAME": "[" + id + "] Chaos Klinikum " + id}
		}
		require.Equal(t, http.StatusOK, s.call(t, http.MethodPost, "/v1/nodes/settings/import", token, settings, nil))
		for _, id := range s.mailNodes {
			for _, c := range []string{"ed", "it"} {
				require.Equal(t, http.StatusCreated, s.call(t, http.MethodPost, "/v1/nodes/"+id+"/contacts", token, map[string]any{
					"role": strings.ToUpper(c), "first_name": "Chaos", "last_name": c, "email": c + "@node" + id + ".example", "main_contact": true,
				}, nil))
			}
		}
		// The SMTP server is down (nothing listens on its port) when the
		// scan finds the offline nodes and their mails are due.
		require.Equal(t, http.StatusAccepted, s.call(t, http.MethodPost, "/v1/nodes/scan", token, nil, nil))
		time.Sleep(p.smtpOutage)
		sink, err := mailsink.Start(mailsink.Options{Addr: s.smtpAddr, TLS: "none"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = sink.Close() })
		back := time.Now()
		o, mails, done := s.checkNodeMails(t, sink, p.settle+2*time.Minute)
		rep.add(row{"SMTP server down, then back", fmt.Sprintf("nothing listens on the SMTP port for %s while %d offline nodes are due their mails", p.smtpOutage, len(s.mailNodes)),
			fmt.Sprintf("%d node e-mails", mails), o.lost, o.duplicated,
			fmt.Sprintf("all delivered %s after the server was back", secs(max(done.Sub(back), 0)))})
		require.NotZero(t, mails, "node mails were due")
		require.Zero(t, o.lost, "lost")
		require.Zero(t, o.duplicated, "duplicated")
	})

	t.Run("DatabaseBlocked", func(t *testing.T) {
		var back time.Time
		r := s.underLoad(t, p, "db", p.rate, 0, smsDup, func(m *monitor) {
			time.Sleep(2 * time.Second)
			unblock := s.blockDatabase(t)
			time.Sleep(p.dbBlock)
			m.watchRecovery()
			unblock()
			back = time.Now()
			time.Sleep(3 * time.Second)
		})
		rep.add(row{"Database unavailable", fmt.Sprintf("own database refuses connections for %s (ALLOW_CONNECTIONS false, backends terminated)", p.dbBlock),
			fmt.Sprintf("%d alerts; %d answers 503 with Retry-After, 0 × 500", r.sent, r.m.count(http.StatusServiceUnavailable)), r.o.lost, r.o.duplicated,
			fmt.Sprintf("first alert accepted %s after; backlog paged %s after", secs(max(r.m.firstOKAfter().Sub(back), 0)), secs(max(r.o.lastDelivery.Sub(back), 0)))})
		r.requireClean(t)
	})

	t.Run("TemporalRestart", func(t *testing.T) {
		var back time.Time
		r := s.underLoad(t, p, "temporal", p.rate, 0, smsDup, func(m *monitor) {
			time.Sleep(2 * time.Second)
			_, err := s.temporal.signal(t, syscall.SIGTERM, 30*time.Second)
			require.NoError(t, err, "vigil temporal exits cleanly on SIGTERM")
			time.Sleep(p.temporalDown)
			m.watchRecovery()
			s.temporal.restart(t)
			back = time.Now()
			time.Sleep(5 * time.Second)
		})
		rep.add(row{"Temporal server restart", fmt.Sprintf("SIGTERM to `vigil temporal` under load, down %s, started again", p.temporalDown),
			fmt.Sprintf("%d alerts; %d answers 503", r.sent, r.m.count(http.StatusServiceUnavailable)), r.o.lost, r.o.duplicated,
			fmt.Sprintf("first alert accepted %s after the server was back; backlog paged %s after", secs(max(r.m.firstOKAfter().Sub(back), 0)), secs(max(r.o.lastDelivery.Sub(back), 0)))})
		r.requireClean(t)
	})

	t.Run("APISIGTERMUnderLoad", func(t *testing.T) {
		var took, ready time.Duration
		r := s.underLoad(t, p, "sigterm", 4*p.rate, 25, smsDup, func(m *monitor) {
			time.Sleep(3 * time.Second)
			var err error
			took, err = s.api.signal(t, syscall.SIGTERM, 30*time.Second)
			require.NoError(t, err, "vigil api exits 0 on SIGTERM")
			m.watchRecovery()
			ready = s.api.restart(t)
			time.Sleep(3 * time.Second)
		})
		rep.add(row{"API SIGTERM under load", fmt.Sprintf("SIGTERM to `vigil api` at %.0f alerts/s, then started again", 4*p.rate),
			fmt.Sprintf("%d alerts; %d in-flight requests cut; exited in %s", r.sent, r.m.broken.Load(), secs(took)), r.o.lost, r.o.duplicated,
			fmt.Sprintf("API ready %s after restart", secs(ready))})
		require.Zero(t, r.m.broken.Load(), "requests in flight at SIGTERM are answered")
		r.requireClean(t)
	})

	t.Run("SlowDirectory", func(t *testing.T) {
		token := s.login(t, "c01")
		s.directory.SetLatency(p.directoryLatency)
		began := time.Now()
		var watch struct {
			ID string `json:"id"`
		}
		status := s.call(t, http.MethodPost, "/v1/watches", token, map[string]any{
			"kind": "service", "service_id": directorysim.DemoServices()[0].ID, "interval_seconds": 60,
		}, &watch)
		created := time.Since(began)
		require.Equal(t, http.StatusCreated, status)
		var back time.Time
		r := s.underLoad(t, p, "directory", p.rate, 0, smsDup, func(*monitor) {
			time.Sleep(p.directorySlowFor)
			s.directory.SetLatency(0)
			back = time.Now()
		})
		var paging struct {
			P99 float64 `db:"p99"`
		}
		require.NoError(t, s.db.Get(&paging, `SELECT COALESCE(percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM first_paged_at - opened_at)), 0) AS p99
			FROM incidents WHERE id = ANY($1::uuid[])`, pqArray(r.ids)))
		polled, failed := s.waitForPoll(t, watch.ID, back, p.settle+90*time.Second)
		rep.add(row{"Slow directory", fmt.Sprintf("the directory answers after %s (the client gives up at 10 s) for %s, with a watch polling it", p.directoryLatency, p.directorySlowFor),
			fmt.Sprintf("watch created in %s; %d alerts meanwhile, first page p99 %.2f s; watch announced degraded %d×", secs(created), r.sent, paging.P99, failed), r.o.lost, r.o.duplicated,
			fmt.Sprintf("next good poll %s after the directory recovered", secs(max(polled.Sub(back), 0)))})
		require.Less(t, created, 5*time.Second, "creating a watch does not wait on the directory")
		require.Less(t, paging.P99, 2.0, "incident pages are not held up by the directory")
		r.requireClean(t)
	})

	t.Run("AlertStorm", func(t *testing.T) {
		m := newMonitor(s.apiURL, s.apiKey)
		keys := make([]string, p.stormKeys)
		for i := range keys {
			keys[i] = fmt.Sprintf("storm-%d", i)
		}
		ctx, stop := context.WithTimeout(context.Background(), p.stormWindow)
		defer stop()
		began := time.Now()
		n := m.load(ctx, time.Now().Add(2*time.Minute), float64(p.stormAlerts)/p.stormWindow.Seconds(), func(i int) (string, string) {
			return keys[i%len(keys)], loadType
		})
		answered := time.Since(began)
		o, ids := s.checkAlerts(t, m, keys, p.settle)
		counted := time.Since(began)
		o.add(s.checkPages(t, ids, pageCheck{steps: []string{"assign"}, sms: true}, p.settle))
		o.duplicated += smsDup(t)
		apiRSS, workerRSS := s.api.peakRSS(), s.worker.peakRSS()
		rep.add(row{"Alert storm", fmt.Sprintf("%d alerts in %s on %d dedup keys", n, p.stormWindow, p.stormKeys),
			fmt.Sprintf("%d incidents, %d merges; %d × 5xx; peak RSS api %.0f MiB, worker %.0f MiB", len(ids), m.total(keys)-len(ids), m.count5xx(), apiRSS, workerRSS),
			o.lost, o.duplicated, fmt.Sprintf("all answered in %s, all counted in Postgres %s after the first", secs(answered), secs(counted))})
		require.Zero(t, m.rejected.Load(), "alerts refused")
		require.Len(t, ids, p.stormKeys, "one incident per key")
		require.Zero(t, m.count5xx(), "5xx answers")
		m.requireHonest(t)
		require.Zero(t, o.lost, "lost")
		require.Zero(t, o.duplicated, "duplicated")
		require.Less(t, apiRSS, 512.0, "API memory stays bounded (MiB)")
		require.Less(t, workerRSS, 1024.0, "worker memory stays bounded (MiB)")
	})
}

func (m *monitor) count5xx() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for code, c := range m.statuses {
		if code >= 500 {
			n += c
		}
	}
	return n
}

func dedupe(keys []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// requireHonest fails the scenario on any 500 answer, any 503 without
// Retry-After, any alert never answered and any valid alert refused.
func (m *monitor) requireHonest(t *testing.T) {
	t.Helper()
	require.Zero(t, m.count(http.StatusInternalServerError), "500 answers")
	require.Zero(t, m.missingRetryAfter, "503 without Retry-After")
	require.Zero(t, m.gaveUp.Load(), "alerts never answered")
	require.Zero(t, m.rejected.Load(), "alerts refused")
}
