//go:build integration

package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/stores"
)

// startLoginStack is the API alone (sign-in needs no worker) with its own
// sign-in throttle, shaped by mutate.
func startLoginStack(t *testing.T, mutate func(*api.Deps)) *stack {
	t.Helper()
	seedOnce.Do(func() {
		_, err := demo.SeedStaff(context.Background(), env.DB, demoPassword)
		require.NoError(t, err)
	})
	signer, err := auth.NewSigner(auth.SignerConfig{Issuer: "vigil", HMACSecret: []byte("integration-test-secret-0123456789abcdef")})
	require.NoError(t, err)
	d := api.Deps{
		Stores: stores.New(env.DB), Temporal: env.Client, Logger: env.Logger, Metrics: metrics.New(),
		Namespace: env.Temporal.Namespace(), TaskQueue: "test-" + uuid.NewString(),
		Signer: signer, HospitalTZ: london, DatabaseURL: env.DatabaseURL,
	}
	if mutate != nil {
		mutate(&d)
	}
	srv := httptest.NewServer(api.NewRouter(d))
	t.Cleanup(srv.Close)
	return &stack{Server: srv, Signer: signer}
}

// throttleStaff adds a staff member of its own to the test (so no other
// test's lock or password change interferes) and returns login and password.
func throttleStaff(t *testing.T) (login, password string) {
	t.Helper()
	id := "LT" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	login, password = strings.ToLower(id), "right-"+uuid.NewString()
	hash, err := auth.HashPassword(password)
	require.NoError(t, err)
	_, err = env.DB.Exec(`INSERT INTO staff (id, login, name, role, access, password_hash)
		SELECT $1, $2, 'Throttle Test', role, 'staff', $3 FROM staff WHERE id = 'N01'`, id, login, hash)
	require.NoError(t, err)
	return login, password
}

// signIn tries a login through the API (page false) or the /ui sign-in form
// (page true), from client when it is not empty (sent as X-Forwarded-For),
// and returns the status and the Retry-After header.
func signIn(t *testing.T, s *stack, page bool, login, password, client string) (int, string) {
	t.Helper()
	var req *http.Request
	var err error
	if page {
		form := url.Values{"login": {login}, "password": {password}, "next": {"/ui/nodes"}}
		req, err = http.NewRequestWithContext(context.Background(), "POST", s.URL+"/ui/login", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", s.URL) // same-origin
	} else {
		body := fmt.Sprintf(`{"login":%q,"password":%q}`, login, password)
		req, err = http.NewRequestWithContext(context.Background(), "POST", s.URL+"/v1/auth/login", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
	}
	if client != "" {
		req.Header.Set("X-Forwarded-For", client)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if !page && resp.StatusCode == http.StatusTooManyRequests {
		var e api.ErrorBody
		require.NoError(t, jsonUnmarshal(raw, &e), string(raw))
		require.Equal(t, api.CodeRateLimited, e.Error.Code)
		require.Contains(t, e.Error.Message, "too many failed sign-ins")
	}
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// signedIn is the status of a successful sign-in.
func signedIn(page bool) int {
	if page {
		return http.StatusSeeOther
	}
	return http.StatusOK
}

// TestSecurity_Login_GuessingIsThrottled: 30 wrong passwords at about 20 a
// second, with the default limits, get 429 with Retry-After, through the API
// and the sign-in form alike; the right password is then refused too while
// the account is locked (it is refused before it is checked), and works once
// the lock has passed. Each lock is audited without the password. Before the
// limiter every attempt was checked: 30 times 401, then 200.
func TestSecurity_Login_GuessingIsThrottled(t *testing.T) {
	for _, page := range []bool{false, true} {
		name := map[bool]string{false: "api", true: "page"}[page]
		t.Run(name, func(t *testing.T) {
			s := startLoginStack(t, nil)
			login, password := throttleStaff(t)
			wrong := "wrong-" + uuid.NewString()
			statuses := map[int]int{}
			for range 30 {
				status, retryAfter := signIn(t, s, page, login, wrong, "")
				statuses[status]++
				if status == http.StatusTooManyRequests {
					n, err := strconv.Atoi(retryAfter)
					require.NoError(t, err, "Retry-After %q must be whole seconds", retryAfter)
					require.Positive(t, n)
				} else {
					require.Equal(t, http.StatusUnauthorized, status)
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("%s: statuses of 30 wrong passwords: %v", name, statuses)
			require.GreaterOrEqual(t, statuses[http.StatusUnauthorized], 5, "the first 5 failures are free")
			require.GreaterOrEqual(t, statuses[http.StatusTooManyRequests], 20, "most guesses are refused unchecked")

			status, retryAfter := signIn(t, s, page, login, password, "")
			require.Equal(t, http.StatusTooManyRequests, status, "the right password waits out the lock too")
			wait, err := strconv.Atoi(retryAfter)
			require.NoError(t, err)
			require.LessOrEqual(t, wait, 8, "the back-off after ~8 failures is a few seconds")

			time.Sleep(time.Duration(wait) * time.Second)
			status, _ = signIn(t, s, page, login, password, "")
			require.Equal(t, signedIn(page), status, "after the lock the right password works")

			var rows []struct {
				SubjectType string `db:"subject_type"`
				SubjectID   string `db:"subject_id"`
				Reason      string `db:"reason"`
				ClientIP    string `db:"client_ip"`
			}
			require.NoError(t, env.DB.Select(&rows, `SELECT subject_type, subject_id, reason, client_ip FROM auth_audit
				WHERE event = 'login_throttled' AND subject_id = $1 ORDER BY id`, "login:"+login))
			require.NotEmpty(t, rows)
			require.Less(t, len(rows), 20, "one row a lock, not one a refused attempt")
			var refused, locked bool
			for _, r := range rows {
				require.Equal(t, auth.SubjectStaff, r.SubjectType)
				require.Equal(t, "127.0.0.1", r.ClientIP)
				refused = refused || strings.HasPrefix(r.Reason, "refused:")
				locked = locked || strings.HasPrefix(r.Reason, "locked:")
			}
			require.True(t, refused && locked, "both the locks and the refusals are audited: %+v", rows)
			var leaks int
			require.NoError(t, env.DB.Get(&leaks, `SELECT count(*) FROM auth_audit a WHERE a::text LIKE '%' || $1 || '%' OR a::text LIKE '%' || $2 || '%'`,
				wrong, password))
			require.Zero(t, leaks, "no password is ever stored in the audit")
		})
	}
}

// TestSecurity_Login_AccountLockAppliesFromEveryClient: an account's lock
// holds whichever address the next attempt comes from (intended: spreading
// guesses over addresses must not help), while other accounts from the same
// addresses sign in as usual.
func TestSecurity_Login_AccountLockAppliesFromEveryClient(t *testing.T) {
	s := startLoginStack(t, func(d *api.Deps) {
		d.TrustedProxies = []string{"127.0.0.1"}
		d.LoginAccountFreeFailures, d.LoginClientFreeFailures = 3, 100
		d.LoginBaseBackoff, d.LoginMaxBackoff = 30*time.Second, time.Minute
	})
	victim, victimPassword := throttleStaff(t)
	other, otherPassword := throttleStaff(t)
	for i := range 4 {
		status, _ := signIn(t, s, false, victim, "wrong", fmt.Sprintf("198.51.100.%d", i+1))
		require.Equal(t, http.StatusUnauthorized, status, "failure %d from its own address is checked", i+1)
	}
	for _, page := range []bool{false, true} {
		status, retryAfter := signIn(t, s, page, victim, victimPassword, "203.0.113.77")
		require.Equal(t, http.StatusTooManyRequests, status, "the locked account is refused from a fresh address (page %v)", page)
		require.NotEmpty(t, retryAfter)
	}
	status, _ := signIn(t, s, false, other, otherPassword, "198.51.100.1")
	require.Equal(t, http.StatusOK, status, "another account is not locked by the victim's failures")
}

// TestSecurity_Login_ClientLockSpansAccounts: one address guessing across
// many logins is locked for every login, including a right password; another
// address is not.
func TestSecurity_Login_ClientLockSpansAccounts(t *testing.T) {
	s := startLoginStack(t, func(d *api.Deps) {
		d.TrustedProxies = []string{"127.0.0.1"}
		d.LoginAccountFreeFailures, d.LoginClientFreeFailures = 100, 5
		d.LoginBaseBackoff, d.LoginMaxBackoff = 30*time.Second, time.Minute
	})
	login, password := throttleStaff(t)
	const sprayer = "203.0.113.10"
	statuses := map[int]int{}
	for i := range 10 {
		status, _ := signIn(t, s, false, fmt.Sprintf("nobody%d", i), "wrong", sprayer)
		statuses[status]++
	}
	require.Equal(t, map[int]int{http.StatusUnauthorized: 6, http.StatusTooManyRequests: 4}, statuses)
	status, _ := signIn(t, s, false, login, password, sprayer)
	require.Equal(t, http.StatusTooManyRequests, status, "the locked address is refused for any login")
	status, _ = signIn(t, s, true, login, password, sprayer)
	require.Equal(t, http.StatusTooManyRequests, status, "the sign-in form shares the limit")
	status, _ = signIn(t, s, false, login, password, "203.0.113.11")
	require.Equal(t, http.StatusOK, status, "another address is not blocked")

	var n int
	require.NoError(t, env.DB.Get(&n, `SELECT count(*) FROM auth_audit
		WHERE event = 'login_throttled' AND subject_type = 'client' AND subject_id = $1 AND client_ip = $1`, sprayer))
	require.Positive(t, n, "the client lock is audited with the forwarded address")
}

// TestSecurity_Login_ForwardedForNeedsTrustedProxy: X-Forwarded-For is
// ignored unless the request comes through a configured trusted proxy, so a
// guesser cannot dodge the client limit by making up addresses; behind a
// trusted proxy it tells clients apart, for sign-in and for the activation
// limiter alike.
func TestSecurity_Login_ForwardedForNeedsTrustedProxy(t *testing.T) {
	limits := func(d *api.Deps) {
		d.LoginAccountFreeFailures, d.LoginClientFreeFailures = 100, 5
		d.LoginBaseBackoff, d.LoginMaxBackoff = 30*time.Second, time.Minute
		d.ActivationRatePerMinute = 2
	}
	tests := []struct {
		name    string
		trusted []string
		// refused is the number of the 10 sign-ins from made-up addresses
		// that get 429.
		refused int
	}{
		{"no trusted proxy: the header is ignored", nil, 4},
		{"trusted proxy: the header names the client", []string{"127.0.0.0/8"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startLoginStack(t, func(d *api.Deps) { limits(d); d.TrustedProxies = tt.trusted })
			refused := 0
			for i := range 10 {
				status, _ := signIn(t, s, false, fmt.Sprintf("nobody%d", i), "wrong", fmt.Sprintf("192.0.2.%d", i+1))
				if status == http.StatusTooManyRequests {
					refused++
				}
			}
			require.Equal(t, tt.refused, refused)

			// The activation limiter (2 a minute per client) sees the
			// same client address.
			activationRefused := 0
			for i := range 4 {
				req, err := http.NewRequestWithContext(context.Background(), "GET", s.URL+"/v1/devices/d1/token", nil)
				require.NoError(t, err)
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", 100+i))
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests {
					activationRefused++
				}
			}
			if tt.trusted == nil {
				require.Equal(t, 2, activationRefused, "one client, whatever the header says")
			} else {
				require.Zero(t, activationRefused, "four patients behind one NAT-ing proxy")
			}
		})
	}
}
