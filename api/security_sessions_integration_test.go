//go:build integration

package api_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/session"
)

// Holes 3 to 6 of the security review: a stolen access token must not
// become a takeover, sessions must be revocable, rights must be current, and
// streams must not outlive their tokens.

// secLogin signs a staff member in through the API and returns both tokens.
func secLogin(t *testing.T, s *stack, login, password string) api.TokenResponse {
	t.Helper()
	var tok api.TokenResponse
	resp := s.call(t, "POST", "/v1/auth/login", "", `{"login":"`+login+`","password":"`+password+`"}`, &tok)
	require.Equal(t, http.StatusOK, resp.StatusCode, "login %s", login)
	require.True(t, strings.HasPrefix(tok.RefreshToken, session.RefreshTokenPrefix), "refresh tokens are opaque")
	return tok
}

func secRefresh(t *testing.T, s *stack, refresh string) (int, api.TokenResponse) {
	t.Helper()
	var tok api.TokenResponse
	resp := s.call(t, "POST", "/v1/auth/refresh", "", `{"refresh_token":"`+refresh+`"}`, &tok)
	return resp.StatusCode, tok
}

// secAudit counts auth_audit rows of an event about a subject.
func secAudit(t *testing.T, event, subjectID string) int {
	t.Helper()
	var n int
	require.NoError(t, env.DB.Get(&n, `SELECT count(*) FROM auth_audit WHERE event = $1 AND subject_id = $2`, event, subjectID))
	return n
}

func secStatus(t *testing.T, s *stack, method, path, token, body string) int {
	t.Helper()
	return s.call(t, method, path, token, body, nil).StatusCode
}

func TestSecurity_Sessions_PasswordChangeNeedsTheCurrentPasswordAndEndsEverySession(t *testing.T) {
	s := startStack(t)
	admin := s.login(t, "a01")
	refStaff(t, s, admin, "T-SEC-P1", "NURSE", false)
	phone := secLogin(t, s, "t-sec-p1", demoPassword)
	stolen := secLogin(t, s, "t-sec-p1", demoPassword)

	// Before the fix a stolen access token alone changed the password (200).
	require.Equal(t, http.StatusBadRequest, secStatus(t, s, "PATCH", "/v1/staff/T-SEC-P1", stolen.AccessToken,
		`{"password":"attacker-password"}`), "no current password")
	var e api.ErrorBody
	s.call(t, "PATCH", "/v1/staff/T-SEC-P1", stolen.AccessToken, `{"password":"attacker-password","current_password":"a-wrong-guess"}`, &e)
	require.Equal(t, "current_password", e.Error.Field)
	require.Equal(t, 1, secAudit(t, "login_refused", "T-SEC-P1"), "a wrong current password is audited")

	require.Equal(t, http.StatusOK, secStatus(t, s, "PATCH", "/v1/staff/T-SEC-P1", phone.AccessToken,
		`{"password":"a-brand-new-password","current_password":"`+demoPassword+`"}`))
	require.Equal(t, 1, secAudit(t, "password_changed", "T-SEC-P1"))
	for name, tok := range map[string]api.TokenResponse{"phone": phone, "stolen": stolen} {
		require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/me", tok.AccessToken, ""), name+" access token")
		code, _ := secRefresh(t, s, tok.RefreshToken)
		require.Equal(t, http.StatusUnauthorized, code, name+" refresh token")
	}
	secLogin(t, s, "t-sec-p1", "a-brand-new-password")
}

func TestSecurity_Sessions_AdminResetIsSeparateAndAudited(t *testing.T) {
	s := startStack(t)
	admin, nurse := s.login(t, "a01"), s.login(t, "n01")
	refStaff(t, s, admin, "T-SEC-R1", "NURSE", false)
	victim := secLogin(t, s, "t-sec-r1", demoPassword)

	var e api.ErrorBody
	s.call(t, "PATCH", "/v1/staff/T-SEC-R1", admin, `{"password":"admin-chosen-pw","current_password":"x"}`, &e)
	require.Equal(t, "password", e.Error.Field, "an admin does not set another person's password by PATCH")
	require.Equal(t, http.StatusForbidden, secStatus(t, s, "POST", "/v1/staff/T-SEC-R1/password-reset", nurse, `{"new_password":"nurse-chosen-pw"}`))
	require.Equal(t, http.StatusBadRequest, secStatus(t, s, "POST", "/v1/staff/T-SEC-R1/password-reset", admin, `{"new_password":"short"}`))
	require.Equal(t, http.StatusNotFound, secStatus(t, s, "POST", "/v1/staff/T-SEC-NOBODY/password-reset", admin, `{"new_password":"a-long-enough-pw"}`))

	require.Equal(t, http.StatusNoContent, secStatus(t, s, "POST", "/v1/staff/T-SEC-R1/password-reset", admin, `{"new_password":"a-temporary-pw"}`))
	require.Equal(t, 1, secAudit(t, "password_reset", "T-SEC-R1"))
	require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/me", victim.AccessToken, ""))
	code, _ := secRefresh(t, s, victim.RefreshToken)
	require.Equal(t, http.StatusUnauthorized, code)
	secLogin(t, s, "t-sec-r1", "a-temporary-pw")
}

func TestSecurity_Sessions_RefreshTokensRotateAndReuseEndsTheFamily(t *testing.T) {
	s := startStack(t)
	tok := secLogin(t, s, "n02", demoPassword)

	code, next := secRefresh(t, s, tok.RefreshToken)
	require.Equal(t, http.StatusOK, code)
	require.NotEqual(t, tok.RefreshToken, next.RefreshToken, "rotated")
	require.Equal(t, http.StatusOK, secStatus(t, s, "GET", "/v1/me", next.AccessToken, ""))

	// Before the fix the same refresh token worked twice (200, 200).
	code, _ = secRefresh(t, s, tok.RefreshToken)
	require.Equal(t, http.StatusUnauthorized, code, "a used refresh token is refused")
	require.GreaterOrEqual(t, secAudit(t, "refresh_reused", "N02"), 1)
	// …and the whole family ends: the rotated refresh token and every
	// access token of the session.
	code, _ = secRefresh(t, s, next.RefreshToken)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/me", next.AccessToken, ""))
	require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/me", tok.AccessToken, ""))

	var hashes int
	require.NoError(t, env.DB.Get(&hashes, `SELECT count(*) FROM refresh_tokens WHERE token_hash = convert_to($1, 'UTF8')`, tok.RefreshToken))
	require.Zero(t, hashes, "refresh tokens are stored only as hashes")
}

func TestSecurity_Sessions_LogoutAndSessionList(t *testing.T) {
	s := startStack(t)
	ward := secLogin(t, s, "n03", demoPassword)
	phone := secLogin(t, s, "n03", demoPassword)

	var list api.SessionList
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/auth/sessions", phone.AccessToken, "", &list).StatusCode)
	require.GreaterOrEqual(t, len(list.Items), 2)
	current := 0
	for _, it := range list.Items {
		if it.Current {
			current++
		}
	}
	require.Equal(t, 1, current)

	require.Equal(t, http.StatusNoContent, secStatus(t, s, "POST", "/v1/auth/logout", ward.AccessToken, ""))
	require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/me", ward.AccessToken, ""), "logged out")
	code, _ := secRefresh(t, s, ward.RefreshToken)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, http.StatusOK, secStatus(t, s, "GET", "/v1/me", phone.AccessToken, ""), "the other session lives")

	other := secLogin(t, s, "n03", demoPassword)
	require.Equal(t, http.StatusNoContent, secStatus(t, s, "POST", "/v1/auth/logout", phone.AccessToken, `{"everywhere":true}`))
	require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/me", other.AccessToken, ""), "everywhere")
	require.GreaterOrEqual(t, secAudit(t, "logout", "N03"), 2)

	// A nurse cannot see or end someone else's session; an admin can.
	victim := secLogin(t, s, "n04", demoPassword)
	nurse := secLogin(t, s, "n03", demoPassword)
	require.Equal(t, http.StatusForbidden, secStatus(t, s, "GET", "/v1/auth/sessions?staff_id=N04", nurse.AccessToken, ""))
	admin := s.login(t, "a01")
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/auth/sessions?staff_id=N04", admin, "", &list).StatusCode)
	require.NotEmpty(t, list.Items)
	require.Equal(t, http.StatusNotFound, secStatus(t, s, "DELETE", "/v1/auth/sessions/"+list.Items[0].ID, nurse.AccessToken, ""))
	require.Equal(t, http.StatusNoContent, secStatus(t, s, "DELETE", "/v1/auth/sessions/"+list.Items[0].ID, admin, ""))
	require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/me", victim.AccessToken, ""))
}

func TestSecurity_Sessions_ConsoleCookiesDieWithTheSession(t *testing.T) {
	s := startStack(t)
	form := url.Values{"login": {"n05"}, "password": {demoPassword}, "next": {"/ui/nodes"}}.Encode()
	resp, _ := ndRaw(t, s, "POST", "/ui/login", "", "application/x-www-form-urlencoded", form)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var jar []string
	for _, c := range resp.Cookies() {
		jar = append(jar, c.Name+"="+c.Value)
	}
	cookies := strings.Join(jar, "; ")
	resp, page := ndRaw(t, s, "GET", "/ui/nodes", "", "", "", "Cookie", cookies)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, _ = ndRaw(t, s, "POST", "/ui/logout", "", "application/x-www-form-urlencoded", "", "Cookie", cookies)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "the sign-out form needs the session's CSRF token")
	resp, _ = ndRaw(t, s, "POST", "/ui/logout", "", "application/x-www-form-urlencoded", url.Values{"csrf": {consoleCSRF(t, page)}}.Encode(), "Cookie", cookies)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	// Before the fix a copy of the cookies still worked after logout (200).
	resp, _ = ndRaw(t, s, "GET", "/ui/nodes", "", "", "", "Cookie", cookies)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "copied cookies no longer work")
	require.Contains(t, resp.Header.Get("Location"), "/ui/login")
	for _, c := range jar {
		resp, _ = ndRaw(t, s, "GET", "/ui/nodes", "", "", "", "Cookie", c)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "cookie %s alone", strings.SplitN(c, "=", 2)[0])
	}
}

func TestSecurity_Sessions_RightsAreCurrentWithinSeconds(t *testing.T) {
	s := startStack(t)
	admin := s.login(t, "a01")
	refStaff(t, s, admin, "T-SEC-A1", "NURSE", false)
	require.Equal(t, http.StatusOK, secStatus(t, s, "PATCH", "/v1/staff/T-SEC-A1", admin, `{"access":"admin"}`))
	demoted := secLogin(t, s, "t-sec-a1", demoPassword)
	require.Equal(t, http.StatusCreated, secStatus(t, s, "POST", "/v1/api-keys", demoted.AccessToken, `{"name":"sec-before"}`))

	// Demoted behind the API's back (another process, or SQL): the token is
	// unchanged, but within the check's cache time it may no longer mint.
	_, err := env.DB.Exec(`UPDATE staff SET access = 'staff' WHERE id = 'T-SEC-A1'`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return secStatus(t, s, "POST", "/v1/api-keys", demoted.AccessToken, `{"name":"sec-after"}`) == http.StatusForbidden
	}, 3*session.DefaultCheckTTL, 100*time.Millisecond, "a demoted admin's token stops minting API keys")
	require.Equal(t, http.StatusForbidden, secStatus(t, s, "POST", "/v1/auth/system-token", demoted.AccessToken, `{"system_id":"sec-sys"}`))

	// Deleted: the token no longer lists incidents.
	refStaff(t, s, admin, "T-SEC-D1", "NURSE", false)
	gone := secLogin(t, s, "t-sec-d1", demoPassword)
	require.Equal(t, http.StatusOK, secStatus(t, s, "GET", "/v1/incidents", gone.AccessToken, ""))
	require.Equal(t, http.StatusNoContent, secStatus(t, s, "DELETE", "/v1/staff/T-SEC-D1", admin, ""))
	require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/incidents", gone.AccessToken, ""), "deleted: at once in this process")

	// Deactivated: sessions end, sign-in is refused, reactivation allows it again.
	refStaff(t, s, admin, "T-SEC-X1", "NURSE", false)
	off := secLogin(t, s, "t-sec-x1", demoPassword)
	require.Equal(t, http.StatusOK, secStatus(t, s, "PATCH", "/v1/staff/T-SEC-X1", admin, `{"active":false}`))
	require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/incidents", off.AccessToken, ""))
	code, _ := secRefresh(t, s, off.RefreshToken)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, http.StatusForbidden, secStatus(t, s, "POST", "/v1/auth/login", "", `{"login":"t-sec-x1","password":"`+demoPassword+`"}`))
	require.Equal(t, http.StatusOK, secStatus(t, s, "PATCH", "/v1/staff/T-SEC-X1", admin, `{"active":true}`))
	secLogin(t, s, "t-sec-x1", demoPassword)

	// A role change ends the sessions too.
	moved := secLogin(t, s, "t-sec-x1", demoPassword)
	require.Equal(t, http.StatusOK, secStatus(t, s, "PATCH", "/v1/staff/T-SEC-X1", admin, `{"role":"SURGEON"}`))
	require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/me", moved.AccessToken, ""))

	// A staff token without a session (minted outside a sign-in) is refused.
	bare, _, err := s.Signer.Issue(auth.Claims{Subject: "A01", SubjectType: auth.SubjectStaff, Access: auth.AccessAdmin, TokenType: auth.TokenAccess}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, secStatus(t, s, "GET", "/v1/me", bare, ""))
}

// secStream opens an SSE stream and returns its event names as they come.
func secStream(t *testing.T, ctx context.Context, url string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := make(chan string, 64)
	go func() {
		defer close(events)
		defer func() { _ = resp.Body.Close() }()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events <- name
			}
		}
	}()
	return events
}

// secAwaitReauth waits for a stream's reauthenticate event and its end.
func secAwaitReauth(t *testing.T, events <-chan string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case name, ok := <-events:
			require.True(t, ok, "the stream ended without a reauthenticate event")
			if name != api.EventReauthenticate {
				continue
			}
			select {
			case _, ok := <-events:
				require.False(t, ok, "the stream ends after reauthenticate")
			case <-time.After(5 * time.Second):
				t.Fatal("the stream stayed open after reauthenticate")
			}
			return
		case <-deadline:
			t.Fatalf("no reauthenticate event within %s", within)
		}
	}
}

func TestSecurity_Sessions_StreamsEndWithTheirTokens(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("revoked session", func(t *testing.T) {
		tok := secLogin(t, s, "n06", demoPassword)
		events := secStream(t, ctx, s.URL+"/v1/me/notifications/stream?access_token="+tok.AccessToken)
		require.Equal(t, http.StatusNoContent, secStatus(t, s, "POST", "/v1/auth/logout", tok.AccessToken, ""))
		secAwaitReauth(t, events, 15*time.Second)
	})
	t.Run("expired token", func(t *testing.T) {
		tok := secLogin(t, s, "n06", demoPassword)
		claims, err := s.Signer.Verify(tok.AccessToken, auth.TokenAccess)
		require.NoError(t, err)
		// The same session, with a token that lives two seconds.
		short, _, err := s.Signer.Issue(auth.Claims{Subject: claims.Subject, SubjectType: auth.SubjectStaff, Access: claims.Access,
			Role: claims.Role, SessionID: claims.SessionID, TokenType: auth.TokenAccess}, 2*time.Second)
		require.NoError(t, err)
		start := time.Now()
		events := secStream(t, ctx, s.URL+"/v1/me/notifications/stream?access_token="+short)
		secAwaitReauth(t, events, 10*time.Second)
		require.Less(t, time.Since(start), 8*time.Second)
	})
	t.Run("message stream of a revoked system token", func(t *testing.T) {
		admin := s.login(t, "a01")
		var sys api.SubjectToken
		require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/auth/system-token", admin, `{"system_id":"sec-stream"}`, &sys).StatusCode)
		claims, err := s.Signer.Verify(sys.Token, auth.TokenAccess)
		require.NoError(t, err)
		require.NotEmpty(t, claims.SessionID, "system tokens minted through the API belong to a session")
		events := secStream(t, ctx, s.URL+"/v1/receivers/SEC-P1/messages/stream?access_token="+sys.Token)
		require.Equal(t, http.StatusNoContent, secStatus(t, s, "DELETE", "/v1/auth/sessions/"+claims.SessionID, admin, ""))
		secAwaitReauth(t, events, 15*time.Second)
	})
}
