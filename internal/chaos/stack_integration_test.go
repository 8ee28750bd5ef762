//go:build integration

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/netport"
	"github.com/vigil-health/vigil/internal/node/brokersim"
	"github.com/vigil-health/vigil/internal/slacknotify/slackfake"
	"github.com/vigil-health/vigil/internal/sms/smsfake"
	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/internal/watch/directory/directorysim"
	"github.com/vigil-health/vigil/workflows"
)

// proc is one vigil process: started, killed, stopped and restarted by the
// suite. Its output goes to a log file kept in the test's temporary
// directory (printed when the test fails).
type proc struct {
	name string
	bin  string
	args []string
	env  []string
	log  string
	// readyURL answers 200 once the process serves (empty: a TCP address to
	// dial instead, in readyAddr).
	readyURL, readyAddr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func (p *proc) start(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	_, _ = fmt.Fprintf(f, "\n=== %s: start %s\n", time.Now().Format(time.RFC3339Nano), p.name)
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, f, f
	// The process dies with the suite, whatever happens to the suite.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start(), "start %s", p.name)
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig and waits up to wait for the process to exit; it returns
// how long the exit took and the process's exit error.
func (p *proc) signal(t testing.TB, sig syscall.Signal, wait time.Duration) (time.Duration, error) {
	t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	require.NotNil(t, cmd, "%s never started", p.name)
	start := time.Now()
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-exited
		t.Errorf("%s did not exit within %s of %s", p.name, wait, sig)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Since(start), p.err
}

// kill is kill -9.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	_, _ = p.signal(t, syscall.SIGKILL, 10*time.Second)
}

// waitReady waits until the process serves; it returns how long that took.
func (p *proc) waitReady(t testing.TB, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		if !p.running() {
			t.Fatalf("%s exited while starting; see %s", p.name, p.log)
		}
		if p.readyURL != "" {
			resp, err := client.Get(p.readyURL)
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return time.Since(start)
				}
			}
		} else if c, err := net.DialTimeout("tcp", p.readyAddr, time.Second); err == nil {
			_ = c.Close()
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %s; see %s", p.name, timeout, p.log)
	return 0
}

// restart starts the process again and waits for it to be ready.
func (p *proc) restart(t testing.TB) time.Duration {
	t.Helper()
	p.start(t)
	return p.waitReady(t, 90*time.Second)
}

// peakRSS is the process's peak resident set (VmHWM) in MiB.
func (p *proc) peakRSS() float64 {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// stack is Vigil run as separate processes on a database of its own.
type stack struct {
	dir      string
	dbURL    string
	dbName   string
	db       *sqlx.DB
	admin    *sqlx.DB
	apiURL   string
	apiKey   string
	apiKeyID int64
	// integration scopes the suite's dedup keys.
	integration string
	slack       *slackfake.Server
	sms         *smsfake.Server
	directory   *directorysim.Simulator
	// smtpAddr is where the SMTP server listens once the SMTP scenario
	// starts it (until then, connections are refused: the server is down).
	smtpAddr string
	// mailNodes are broker nodes that are offline: each scan mails them.
	mailNodes []string

	temporal, worker, api *proc
}

const (
	slackChannel = "CCHAOS0001"
	smsAccount   = "ACchaos00000000000000000000000001"
	smsToken     = "chaos-sms-token"
	// escalationType is an alert type whose first escalation step is due
	// after escalationWait (set per profile).
	escalationType = "CHAOS_ESCALATION"
	// loadType is the alert type of ordinary load: its escalation steps are
	// an hour apart, so load scenarios page once per incident and one
	// scenario's incidents never escalate during the next.
	loadType = "CHAOS_LOAD"
)

// startStack builds vigil (unless VIGIL_CHAOS_BIN names a binary), creates a
// database, and starts `vigil temporal`, `vigil worker` and `vigil api`.
func startStack(t *testing.T, p profile) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := &stack{dir: t.TempDir()}
	var err error

	bin := os.Getenv("VIGIL_CHAOS_BIN")
	if bin == "" {
		bin = filepath.Join(s.dir, "vigil")
		// The same settings as the test binary's build, so the build cache
		// serves every package already compiled for the tests.
		bctx, cancelBuild := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancelBuild()
		out, err := exec.CommandContext(bctx, "go", "build", "-o", bin, "github.com/vigil-health/vigil/cmd/vigil").CombinedOutput()
		require.NoError(t, err, "go build: %s", out)
	} else if !filepath.IsAbs(bin) {
		abs, err := filepath.Abs(filepath.Join(repoRoot(t), bin))
		require.NoError(t, err)
		bin = abs
	}

	s.dbURL, err = testenv.NewDatabase(ctx, "chaos")
	require.NoError(t, err)
	s.dbName = databaseName(t, s.dbURL)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = database.Drop(ctx, s.dbURL)
	})
	admin := os.Getenv("VIGIL_TEST_DATABASE_URL")
	if admin == "" {
		admin = testenv.DefaultAdminURL
	}
	s.admin, err = sqlx.Open("postgres", admin)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.admin.Close() })

	s.slack = slackfake.New(t)
	s.sms = smsfake.New(t, smsAccount, smsToken)
	s.directory = directorysim.New(directorysim.Options{Accounts: directorysim.DefaultAccounts()})
	dirURL, stopDir, err := s.directory.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stopDir)
	broker := brokersim.New(brokersim.Options{})
	for i := range 3 {
		id := strconv.Itoa(101 + i)
		_, err := broker.AddNode(brokersim.NodeSpec{ID: id, Name: "Chaos Klinikum " + id, Behaviour: brokersim.Offline, At: time.Now().Add(-100 * time.Hour)})
		require.NoError(t, err)
		s.mailNodes = append(s.mailNodes, id)
	}
	brokerURL, stopBroker, err := broker.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stopBroker)
	s.smtpAddr = freeAddr(t)

	temporalAddr, uiPort, apiAddr, workerAddr := freeAddr(t), freePort(t), freeAddr(t), freeAddr(t)
	base := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir, "TZ=UTC",
		"DATABASE_URL=" + s.dbURL,
		"TEMPORAL_ADDRESS=" + temporalAddr,
		"TEMPORAL_NAMESPACE=default",
		"VIGIL_TASK_QUEUE=chaos",
		"VIGIL_LOG_FORMAT=text", "VIGIL_LOG_LEVEL=info",
		"VIGIL_SHUTDOWN_TIMEOUT=15s",
		"VIGIL_JWT_SECRET=chaos-jwt-secret-0123456789abcdefghijklmnop",
		"VIGIL_ACTIVATION_SECRET=chaos-activation-secret-0123456789abcdefgh",
		// Payloads are encrypted as in production (32 bytes, base64).
		"VIGIL_PAYLOAD_KEYS=chaos=Y2hhb3MtcGF5bG9hZC1rZXktMDEyMzQ1Njc4OWFiY2Q=",
		"VIGIL_SLACK_BOT_TOKEN=xoxb-chaos", "VIGIL_SLACK_CHANNEL=" + slackChannel, "VIGIL_SLACK_API_URL=" + s.slack.APIURL(),
		"VIGIL_SMS_URL=" + s.sms.URL, "VIGIL_SMS_ACCOUNT_SID=" + smsAccount, "VIGIL_SMS_AUTH_TOKEN=" + smsToken, "VIGIL_SMS_FROM=+447700900999",
		"VIGIL_DIRECTORY_URL=" + dirURL,
		"VIGIL_DIRECTORY_ACCOUNTS=CAPMON=capmon:capmon-demo,PATHWAYS_REFERRAL=pathways:pathways-demo,DIGITAL_REFERRAL=digital:digital-demo",
		"VIGIL_BROKER_URL=" + brokerURL, "VIGIL_BROKER_API_KEY=" + brokersim.DefaultAdminKey,
		"VIGIL_DWH_CURRENT_VERSION=" + brokersim.CurrentDWHVersion,
		"VIGIL_SMTP_HOST=127.0.0.1", "VIGIL_SMTP_PORT=" + s.smtpAddr[strings.LastIndexByte(s.smtpAddr, ':')+1:], "VIGIL_SMTP_TLS=none",
		"VIGIL_MAIL_FROM=monitor@vigil.example",
		"VIGIL_DEV_DATA_DIR=" + filepath.Join(s.dir, "temporal"),
		"VIGIL_DEV_BIND_IP=127.0.0.1",
		"VIGIL_DEV_UI_PORT=" + strconv.Itoa(uiPort),
		"VIGIL_TEMPORAL_UI_URL=http://127.0.0.1:" + strconv.Itoa(uiPort),
	}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	logs := filepath.Join(s.dir, "logs")
	require.NoError(t, os.MkdirAll(logs, 0o700))
	// VIGIL_HTTP_ADDR tells vigil temporal where its Web UI finds the API's
	// codec server.
	s.temporal = &proc{name: "vigil temporal", bin: bin, args: []string{"temporal"}, env: with("VIGIL_HTTP_ADDR=" + apiAddr), log: filepath.Join(logs, "temporal.log"), readyAddr: temporalAddr}
	s.worker = &proc{name: "vigil worker", bin: bin, args: []string{"worker"}, env: with("VIGIL_HTTP_ADDR=" + workerAddr),
		log: filepath.Join(logs, "worker.log"), readyURL: "http://" + workerAddr + "/readyz"}
	s.api = &proc{name: "vigil api", bin: bin, args: []string{"api"}, env: with("VIGIL_HTTP_ADDR="+apiAddr, "VIGIL_AUTO_MIGRATE=false"),
		log: filepath.Join(logs, "api.log"), readyURL: "http://" + apiAddr + "/readyz"}
	s.apiURL = "http://" + apiAddr
	t.Cleanup(func() {
		for _, p := range []*proc{s.api, s.worker, s.temporal} {
			if p.running() {
				_, _ = p.signal(t, syscall.SIGTERM, 20*time.Second)
			}
		}
		if t.Failed() {
			for _, p := range []*proc{s.temporal, s.worker, s.api} {
				if b, err := os.ReadFile(p.log); err == nil {
					t.Logf("--- %s log (last 4 KiB):\n%s", p.name, tail(b, 4096))
				}
			}
		}
	})

	s.temporal.start(t)
	s.temporal.waitReady(t, 60*time.Second)
	// The worker migrates the database; the API starts once it has.
	s.worker.start(t)
	s.worker.waitReady(t, 90*time.Second)
	s.api.start(t)
	s.api.waitReady(t, 60*time.Second)

	s.db, err = sqlx.Open("postgres", s.dbURL)
	require.NoError(t, err)
	s.db.SetMaxOpenConns(8)
	t.Cleanup(func() { _ = s.db.Close() })
	s.seed(t, ctx, p)
	return s
}

// seed adds the demo hospital's staff and rotas, an API key for the
// monitors, and the escalation alert type.
func (s *stack) seed(t *testing.T, ctx context.Context, p profile) {
	t.Helper()
	_, err := demo.SeedStaff(ctx, s.db, "chaos-password-1")
	require.NoError(t, err)
	k, err := auth.NewAPIKey()
	require.NoError(t, err)
	require.NoError(t, s.db.GetContext(ctx, &s.apiKeyID,
		`INSERT INTO api_keys (name, prefix, key_hash) VALUES ('chaos-monitor', $1, $2) RETURNING id`, k.Prefix, k.Hash))
	s.apiKey = k.Plaintext.Reveal()
	s.integration = workflows.IntegrationAPIKey(s.apiKeyID)
	_, err = s.db.ExecContext(ctx, `
		INSERT INTO alert_types (alert_type, severity, category, description, requires_immediate_response, roles)
		VALUES ($1, 'HIGH', 'TECHNICAL', 'Chaos suite: escalates after a short wait', true, '{EMERGENCY_DOCTOR}')`, escalationType)
	require.NoError(t, err)
	_, err = s.db.ExecContext(ctx, `
		INSERT INTO alert_types (alert_type, severity, category, description, requires_immediate_response, roles)
		VALUES ($1, 'CRITICAL', 'TECHNICAL', 'Chaos suite: load that escalates only after an hour', true, '{EMERGENCY_DOCTOR,NURSE}')`, loadType)
	require.NoError(t, err)
	_, err = s.db.ExecContext(ctx, `INSERT INTO escalation_policies (id, alert_type, steps, start_reminder_seconds)
		VALUES ('type:'||$1, $1, '[{"wait_seconds": 3600, "target": "next_in_role"}, {"wait_seconds": 3600, "target": "failsafe"}]'::jsonb, 3600)`, loadType)
	require.NoError(t, err)
	steps := fmt.Sprintf(`[{"wait_seconds": %d, "target": "next_in_role"}, {"wait_seconds": 3600, "target": "failsafe"}]`, int(p.escalationWait/time.Second))
	_, err = s.db.ExecContext(ctx, `INSERT INTO escalation_policies (id, alert_type, steps, start_reminder_seconds)
		VALUES ('type:'||$1, $1, $2::jsonb, 3600)`, escalationType, steps)
	require.NoError(t, err)
}

// blockDatabase refuses new connections to the suite's database and ends the
// open ones (never touching the shared server); the returned func lifts it.
func (s *stack) blockDatabase(t testing.TB) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.admin.ExecContext(ctx, `ALTER DATABASE `+quoteIdent(s.dbName)+` ALLOW_CONNECTIONS false`)
	require.NoError(t, err)
	_, err = s.admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, s.dbName)
	require.NoError(t, err)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := s.admin.ExecContext(ctx, `ALTER DATABASE `+quoteIdent(s.dbName)+` ALLOW_CONNECTIONS true`)
		require.NoError(t, err)
	}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func databaseName(t testing.TB, url string) string {
	t.Helper()
	i := strings.LastIndex(url, "/")
	name := url[i+1:]
	if j := strings.IndexByte(name, '?'); j >= 0 {
		name = name[:j]
	}
	require.NotEmpty(t, name)
	return name
}

// freePort picks a port below the ephemeral range: the suite stops and
// starts its processes on the same addresses, and a port from the ephemeral
// range can be handed to another process's listener or connection while
// its owner is down.
func freePort(t testing.TB) int {
	t.Helper()
	port, err := netport.Free("127.0.0.1")
	require.NoError(t, err)
	return port
}

func freeAddr(t testing.TB) string { return "127.0.0.1:" + strconv.Itoa(freePort(t)) }

func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// login signs a demo staff member in and returns the access token.
func (s *stack) login(t *testing.T, login string) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(t, http.StatusOK, s.call(t, http.MethodPost, "/v1/auth/login", "", map[string]string{"login": login, "password": "chaos-password-1"}, &tok))
	return tok.AccessToken
}

// call sends a JSON request to the API and decodes the answer into out.
func (s *stack) call(t *testing.T, method, path, token string, body, out any) int {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, s.apiURL+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(raw) > 0 {
		_ = json.Unmarshal(raw, out)
	}
	return resp.StatusCode
}

// waitForPoll waits for the watch's first successful poll after since and
// returns when it was, with the number of times the watch was announced
// degraded (a poll that failed all its attempts).
func (s *stack) waitForPoll(t *testing.T, watchID string, since time.Time, timeout time.Duration) (time.Time, int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var r struct {
			Polled   *time.Time `db:"polled"`
			Degraded int        `db:"degraded"`
		}
		err := s.db.Get(&r, `SELECT (SELECT min(polled_at) FROM watch_polls WHERE watch_id = $1 AND error = '' AND polled_at >= $2) AS polled,
			(SELECT count(*) FROM status_changes WHERE watch_id = $1 AND kind = 'degraded') AS degraded`, watchID, since)
		if err == nil && r.Polled != nil {
			return *r.Polled, r.Degraded
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch %s: no good poll within %s of the directory recovering (err %v)", watchID, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
