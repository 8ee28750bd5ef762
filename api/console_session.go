package api

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/session"
)

// The console session of the Web pages under /ui (the broker node pages):
// browsers cannot send bearer tokens, so the pages (and the heatmap and exports they
// link to, mirrored under /ui) accept a session cookie set by the sign-in
// form at /ui/login: vigil_token holds a short-lived staff access token and
// vigil_refresh a refresh token that renews it (re-reading the staff
// record). Both are HttpOnly, SameSite=Strict, limited to /ui (the session
// cookie also to /codec, the Web UI's codec server, see codec.go), and
// Secure when the request came over TLS. The cookies are never accepted by
// /v1, so a cross-site request cannot use them against the API. A bearer token
// in the Authorization header works on the pages too (for tools and tests).

// Session cookie names.
const (
	pageAccessCookie  = "vigil_token"
	pageRefreshCookie = "vigil_refresh"
	pageCookiePath    = "/ui"
	pageHome          = "/ui/"
)

// requireStaffPage authenticates a page request: a bearer header as on
// /v1, else the session cookies, else a redirect to the sign-in form. The
// access cookie is a staff access token checked like a bearer one (its
// session live, the account active, the rights current); when it has
// expired, the session cookie (which is not rotated, so parallel page loads
// cannot race) mints a new one for the same session.
func (s *Server) requireStaffPage() gin.HandlerFunc {
	bearer := s.requireStaff()
	return func(c *gin.Context) {
		if c.GetHeader("Authorization") != "" {
			bearer(c)
			return
		}
		if s.Signer == nil {
			s.pageError(c, http.StatusServiceUnavailable, "Unavailable", "Authentication is not configured.")
			return
		}
		ctx := c.Request.Context()
		if tok, err := c.Cookie(pageAccessCookie); err == nil {
			claims, err := s.authenticate(ctx, tok)
			if err == nil && claims.SubjectType == auth.SubjectStaff {
				c.Set(principalKey, claims)
				c.Next()
				return
			}
			var refused *errSessionRefused
			if err != nil && !errors.As(err, &refused) {
				s.pageStoreError(c, err)
				return
			}
		}
		if cookie, err := c.Cookie(pageRefreshCookie); err == nil {
			claims, err := s.renewPageSession(c, cookie)
			if err != nil {
				s.pageStoreError(c, err)
				return
			}
			if claims != nil {
				c.Set(principalKey, claims)
				c.Next()
				return
			}
		}
		s.setPageCookie(c, pageAccessCookie, "", 0)
		s.setPageCookie(c, pageRefreshCookie, "", 0)
		c.Redirect(http.StatusSeeOther, "/ui/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
		c.Abort()
	}
}

// pageStoreError answers a page whose session could not be checked.
func (s *Server) pageStoreError(c *gin.Context, err error) {
	s.Logger.ErrorContext(c.Request.Context(), "check page session", "err", err, "request_id", requestID(c))
	c.Header("Retry-After", "5")
	s.pageError(c, http.StatusServiceUnavailable, "Unavailable", "Vigil cannot check your session just now; retry in a few seconds.")
}

// renewPageSession mints a new access cookie from a live console session
// cookie, with the staff member's current access level. It returns nil
// claims when the cookie is no (longer a) session.
func (s *Server) renewPageSession(c *gin.Context, cookie string) (*auth.Claims, error) {
	ctx := c.Request.Context()
	sid, subjectType, subjectID, rights, err := s.rightsChecker().CheckCookie(ctx, cookie)
	if err != nil || !rights.Live || subjectType != auth.SubjectStaff {
		return nil, err
	}
	info, err := s.staffByID(ctx, subjectID)
	if errors.Is(err, reference.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info.Access, info.Role = rights.Access, rights.Role
	access, err := s.staffAccessToken(info, sid)
	if err != nil {
		return nil, err
	}
	s.setPageCookie(c, pageAccessCookie, access, s.AccessTTL)
	return &auth.Claims{Subject: info.ID, SubjectType: auth.SubjectStaff, Access: info.Access, Role: info.Role,
		SessionID: sid, TokenType: auth.TokenAccess}, nil
}

// setPageCookie sets (ttl > 0) or clears (ttl 0) a session cookie. The
// session cookie is also set on /codec, for the codec server the Temporal
// Web UI calls with the browser's credentials (codec.go); no other path
// outside /ui gets either cookie.
func (s *Server) setPageCookie(c *gin.Context, name, value string, ttl time.Duration) {
	maxAge := int(ttl / time.Second)
	if ttl <= 0 {
		value, maxAge = "", -1
	}
	paths := []string{pageCookiePath}
	if name == pageRefreshCookie {
		paths = append(paths, codecCookiePath)
	}
	for _, path := range paths {
		http.SetCookie(c.Writer, &http.Cookie{
			Name: name, Value: value, Path: path, MaxAge: maxAge,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Request.TLS != nil,
		})
	}
}

// safeNext returns next when it is a path under /ui (no scheme, no host,
// no protocol-relative or backslash tricks), else My work.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || u.Scheme != "" || u.Host != "" || u.User != nil ||
		!strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(u.Path, "/ui/login") {
		return pageHome
	}
	return next
}

// sameOrigin refuses a cross-site form post (login CSRF): a present Origin
// header must name this host.
func sameOrigin(c *gin.Context) bool {
	origin := c.GetHeader("Origin")
	if origin == "" {
		// Without Origin, a browser's Fetch Metadata still tells a
		// cross-site request.
		return c.GetHeader("Sec-Fetch-Site") != "cross-site"
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == c.Request.Host
}

func (s *Server) nodeLoginPage(c *gin.Context) {
	s.renderPage(c, http.StatusOK, "nodes_login.html", pageData{Title: "Sign in", Next: safeNext(c.Query("next"))})
}

// nodeLogin checks the form's login and password like POST /v1/auth/login
// (the same limits on guessing) and opens a console session: an access
// cookie and a session cookie, both HttpOnly and SameSite=Strict.
func (s *Server) nodeLogin(c *gin.Context) {
	if !sameOrigin(c) {
		s.pageError(c, http.StatusForbidden, "Forbidden", "Cross-site sign-in is refused.")
		return
	}
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		s.pageError(c, http.StatusUnsupportedMediaType, "Unsupported form", "Send the sign-in form.")
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)
	login, password := strings.TrimSpace(c.PostForm("login")), c.PostForm("password")
	next := safeNext(c.PostForm("next"))
	retry := func(status int, msg string) {
		if !validText(login, false) || len(login) > maxLoginLength {
			login = ""
		}
		s.renderPage(c, status, "nodes_login.html", pageData{Title: "Sign in", Next: next, Login: login, Message: msg})
	}
	if login == "" || password == "" {
		retry(http.StatusBadRequest, "Enter your login and password.")
		return
	}
	if fe := checkLoginText(login, password); fe != nil {
		retry(http.StatusBadRequest, "The "+fe.Field+" "+fe.Message+".")
		return
	}
	if s.Signer == nil {
		s.pageError(c, http.StatusServiceUnavailable, "Unavailable", "Authentication is not configured.")
		return
	}
	if ok, wait := s.admitLogin(c, login); !ok {
		setRetryAfter(c, wait)
		retry(http.StatusTooManyRequests, "Too many sign-in attempts. Wait a little and try again.")
		return
	}
	info, ok, err := s.checkStaffPassword(c.Request.Context(), login, password)
	if err != nil {
		s.pageStoreError(c, err)
		return
	}
	s.loginResult(c, login, ok)
	if !ok {
		s.Logger.WarnContext(c.Request.Context(), "page login refused", "request_id", requestID(c))
		s.auditEvent(c, auditLoginRefused, auth.SubjectStaff, "", "console: unknown login or wrong password")
		retry(http.StatusUnauthorized, "Unknown login or wrong password.")
		return
	}
	if !info.Active {
		s.auditEvent(c, auditLoginRefused, auth.SubjectStaff, info.ID, "console: account deactivated")
		retry(http.StatusForbidden, "Your account is deactivated. Ask an admin.")
		return
	}
	opened, err := s.sessionStore().Open(c.Request.Context(), session.Open{
		SubjectType: auth.SubjectStaff, SubjectID: info.ID, Origin: session.OriginConsole, Lifetime: s.RefreshTTL,
		WithSecret: true, ClientIP: c.ClientIP(), UserAgent: c.Request.UserAgent(),
	})
	if err != nil {
		s.pageStoreError(c, err)
		return
	}
	access, err := s.staffAccessToken(info, opened.ID)
	if err != nil {
		s.abortInternal(c, "issue page token", err)
		return
	}
	s.auditEvent(c, auditLogin, auth.SubjectStaff, info.ID, "signed in to the console")
	s.setPageCookie(c, pageAccessCookie, access, s.AccessTTL)
	s.setPageCookie(c, pageRefreshCookie, opened.Cookie, s.RefreshTTL)
	c.Redirect(http.StatusSeeOther, next)
}

// nodeLogout ends the console session: its cookies are cleared and the
// session is revoked, so copies of the cookies stop working too. The form
// must carry the session's CSRF token.
func (s *Server) nodeLogout(c *gin.Context) {
	if !sameOrigin(c) {
		s.pageError(c, http.StatusForbidden, "Forbidden", "Cross-site sign-out is refused.")
		return
	}
	ctx := c.Request.Context()
	sid := ""
	if tok, err := c.Cookie(pageAccessCookie); err == nil {
		if claims, err := s.Signer.Verify(tok, auth.TokenAccess); err == nil {
			sid = claims.SessionID
		}
	}
	if cookie, err := c.Cookie(pageRefreshCookie); err == nil && sid == "" {
		if id, _, _, rights, err := s.rightsChecker().CheckCookie(ctx, cookie); err == nil && rights.Live {
			sid = id
		}
	}
	if sid != "" && !s.validCSRF(sid, c.PostForm(csrfField)) {
		// The sign-out form carries the session's CSRF token, like every
		// console form.
		s.pageError(c, http.StatusForbidden, "Forbidden", "This form has expired or came from another site. Reload the page and try again.")
		return
	}
	if sid != "" {
		if sess, err := s.sessionStore().Get(ctx, sid); err == nil {
			if _, err := s.sessionStore().Revoke(ctx, sid, session.ReasonLogout); err != nil {
				s.pageStoreError(c, err)
				return
			}
			s.rightsChecker().Forget(sid)
			s.auditEvent(c, auditLogout, sess.SubjectType, sess.SubjectID, "signed out of the console")
		}
	}
	s.setPageCookie(c, pageAccessCookie, "", 0)
	s.setPageCookie(c, pageRefreshCookie, "", 0)
	c.Redirect(http.StatusSeeOther, "/ui/login")
}
