package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"
)

// readinessTimeout bounds each dependency check of /readyz.
const readinessTimeout = 2 * time.Second

// healthz answers liveness: the process is up and serving.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readinessCheck is one dependency's state in the /readyz answer.
type readinessCheck struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// readyz answers readiness: Postgres and Temporal both answer. When one does
// not, the answer is 503 and names it.
func (s *Server) readyz(c *gin.Context) {
	ctx := c.Request.Context()
	checks := map[string]readinessCheck{
		"postgres": check(ctx, func(ctx context.Context) error { return s.Stores.Ping(ctx) }),
		"temporal": check(ctx, func(ctx context.Context) error {
			_, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}),
	}
	var failing []string
	for _, name := range []string{"postgres", "temporal"} {
		if checks[name].Status != "ok" {
			failing = append(failing, name)
		}
	}
	if len(failing) == 0 {
		c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": checks})
		return
	}
	msg := "not ready: " + failing[0]
	if len(failing) > 1 {
		msg += " and " + failing[1]
	}
	msg += " unreachable"
	c.JSON(http.StatusServiceUnavailable, gin.H{
		"status": "unavailable",
		"checks": checks,
		"error":  ErrorDetail{Code: CodeNotReady, Message: msg, RequestID: requestID(c)},
	})
}

func check(ctx context.Context, probe func(context.Context) error) readinessCheck {
	ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	defer cancel()
	if err := probe(ctx); err != nil {
		// The error text says which host refused; it holds no secrets
		// (passwords never appear in driver errors).
		return readinessCheck{Status: "unavailable", Error: err.Error()}
	}
	return readinessCheck{Status: "ok"}
}
