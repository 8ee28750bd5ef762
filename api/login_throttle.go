package api

import (
	"time"

	"github.com/gin-gonic/gin"
)

// admitLogin decides, before any password is checked, whether a sign-in
// attempt for login from this client may proceed. When it may not, it
// returns false and how long the caller must wait; the caller answers 429
// with Retry-After (or the sign-in page with the same status).
//
// STUB: always admits; replaced by the per-account and per-client limiter.
func (s *Server) admitLogin(c *gin.Context, login string) (bool, time.Duration) {
	return true, 0
}

// loginResult records the outcome of a checked sign-in attempt for login
// from this client: failures grow the back-off, a success clears the
// account's failures.
//
// STUB: records nothing yet.
func (s *Server) loginResult(c *gin.Context, login string, ok bool) {}
