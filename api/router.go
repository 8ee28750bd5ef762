// Package api is Vigil's REST API: a Gin router whose handlers start
// workflows, send them updates and signals, and read the Postgres query
// model. It imports package workflows for their contracts and never package
// activities.
package api

import (
	"cmp"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/vigil-health/vigil/internal/actionproof"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/loginguard"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/stores"
	"github.com/vigil-health/vigil/workflows"
)

// Deps are the API's dependencies, shared by every handler.
type Deps struct {
	// Stores are the capability stores the handlers call.
	Stores    *stores.Set
	Temporal  client.Client
	Logger    *slog.Logger
	Metrics   *metrics.Registry
	Namespace string
	TaskQueue string
	// TemporalUIURL is the Web UI's base URL, for links to workflow runs.
	TemporalUIURL string
	// Signer issues and verifies staff tokens.
	Signer *auth.Signer
	// TransitionKeys sign the staff transitions the API authorised, which
	// the worker refuses without that proof; nil makes them answer 503.
	TransitionKeys *actionproof.Keyring
	// AccessTTL and RefreshTTL bound the tokens login issues.
	AccessTTL, RefreshTTL time.Duration
	// HospitalTZ is the zone of on-call shifts.
	HospitalTZ *time.Location
	// SlackSigningSecret verifies Slack's interaction callbacks; empty
	// disables them (503).
	SlackSigningSecret string
	// DatabaseURL lets the notification stream LISTEN for new pages; empty
	// makes it poll.
	DatabaseURL string
	// AutoResolveWait is how long a source must report OK before its
	// incident auto-resolves; zero means the workflow's default (2 min).
	AutoResolveWait time.Duration
	// AlertWait is how long an alert request waits for its incident
	// workflow before it answers 202 (accepted) or 504 (may have been
	// applied); zero means DefaultAlertWait (30 s).
	AlertWait time.Duration
	// ActivationSecret (32+ bytes) derives patient activation codes and keys
	// the lookup of activation codes; empty makes the activation endpoints
	// answer 503.
	ActivationSecret []byte
	// PayloadCodec encrypts the payloads Vigil sends to Temporal; the codec
	// server (/codec/decode, /codec/encode) applies it for the Temporal Web
	// UI, whose origin (TemporalUIURL) may call it. Nil makes those routes
	// answer 503.
	PayloadCodec converter.PayloadCodec
	// Activation shapes activations and the tokens minted for patients,
	// devices and clinicians. Zero fields take config's defaults: PINs of
	// 4, expiry at the end of the 5th day in HospitalTZ, 10 wrong PINs
	// lock, tokens of 15m (patients, clinicians) and 24h (devices), and the
	// groups "send clinician" and "send superclinician".
	config.Activation
	// ActivationRatePerMinute bounds activation-code and token requests per
	// client IP (burst the same); zero means 10.
	ActivationRatePerMinute int
	// Rights checks each request's session and its holder's current rights;
	// nil means a session.Checker on DB (unit tests that must not touch the
	// database give their own).
	Rights RightsChecker
	// TrustedProxies are the IPs and CIDRs of reverse proxies whose
	// X-Forwarded-For and X-Real-IP headers name the client; empty trusts
	// none, and the client is the socket's peer.
	TrustedProxies []string
	// SeparateMetrics leaves /metrics out of NewRouter and
	// NewOperationsRouter: the process serves NewMetricsRouter on its own
	// address instead.
	SeparateMetrics bool
	// LoginThrottle throttles sign-ins (per process); zero fields take
	// loginguard's defaults (5 account and 20 client failures within 15m,
	// back-off up to 15m).
	config.LoginThrottle
	// LoginBaseBackoff is the first lock of the sign-in back-off (default
	// 1s), doubling up to LoginMaxBackoff.
	LoginBaseBackoff time.Duration
	// MapTileURL is the capacity map's tile URL template; empty shows the
	// map without tiles.
	MapTileURL string
}

// Server holds the dependencies; its methods are the handlers.
type Server struct {
	// Deps are the dependencies it was built with, the defaults applied
	// (buildServer).
	Deps
	// alerts coalesces alert storms per dedup key.
	alerts *coalescer[*alert, workflows.AlertResult]
	// catalogue caches alert type severities.
	catalogue *alertCatalogue
	// busOnce and notifyBus serve the notification streams (DatabaseURL).
	busOnce   sync.Once
	notifyBus *notificationBus
	// act holds the activation keys, rate limit and caches (the settings
	// are Deps.Activation).
	act *activationSettings
	// anonChecks limits anonymous system checks per client IP (system.go).
	anonChecks anonCheckLimiter
	// loginGuard throttles password guessing per account and client.
	loginGuard *loginguard.Guard
	// codecOrigins are the browser origins the codec server (codec.go)
	// answers: those of the Temporal Web UI.
	codecOrigins map[string]bool
	// rightsOnce creates Rights when none was given (see rightsChecker).
	rightsOnce sync.Once
}

func newServer(d Deps) *Server {
	s := buildServer(d)
	s.alerts = newCoalescer(alertAnswerMargin, s.sendAlerts)
	s.catalogue = &alertCatalogue{}
	return s
}

func buildServer(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	if d.AccessTTL <= 0 {
		d.AccessTTL = config.DefaultAccessTokenTTL
	}
	if d.RefreshTTL <= 0 {
		d.RefreshTTL = config.DefaultRefreshTokenTTL
	}
	if d.HospitalTZ == nil {
		d.HospitalTZ = time.UTC
	}
	d.AlertWait = cmp.Or(d.AlertWait, DefaultAlertWait)
	d.Activation = activationDefaults(d.Activation)
	return &Server{
		Deps:         d,
		act:          newActivationSettings(d),
		codecOrigins: uiOrigins(d.TemporalUIURL),
		loginGuard: loginguard.New(loginguard.Config{
			AccountFreeFailures: d.LoginAccountFreeFailures,
			ClientFreeFailures:  d.LoginClientFreeFailures,
			Window:              d.LoginFailureWindow,
			BaseBackoff:         d.LoginBaseBackoff,
			MaxBackoff:          d.LoginMaxBackoff,
		}),
	}
}

// NewRouter returns the full API.
func NewRouter(d Deps) *gin.Engine {
	s := newServer(d)
	r := s.engine()
	s.operationsRoutes(r)
	r.GET("/openapi.json", s.openAPI)

	v1 := r.Group("/v1")
	v1.POST("/system/check", s.startSystemCheck)
	v1.GET("/system/checks/:id", s.getSystemCheck)

	v1.POST("/auth/login", s.login)
	v1.POST("/auth/refresh", s.refresh)
	v1.GET("/me", s.requireStaff(), s.me)
	s.sessionRoutes(v1)

	v1.POST("/alerts", s.requireAlertSource(false), s.postAlert)
	v1.POST("/alerts/alertmanager", s.requireAlertSource(false), s.postAlertmanager)
	v1.POST("/alerts/pagerduty", s.requireAlertSource(true), s.postPagerDuty)
	v1.POST("/alerts/pagerduty/v2/enqueue", pagerDutyErrorShape(), s.requireAlertSource(true), s.postPagerDuty)
	s.incidentActionRoutes(v1)
	s.notificationRoutes(v1)
	s.watchReadRoutes(v1)
	s.watchRoutes(v1)
	s.referenceRoutes(v1)
	s.incidentReadRoutes(v1)
	s.slackRoutes(v1)
	s.activationRoutes(v1)
	s.messageRoutes(v1)
	s.nodeRoutes(r)
	s.codecRoutes(r)
	return r
}

// NewOperationsRouter returns only the health and metrics endpoints, for the
// worker process.
func NewOperationsRouter(d Deps) *gin.Engine {
	s := newServer(d)
	r := s.engine()
	s.operationsRoutes(r)
	return r
}

// NewMetricsRouter returns only /metrics, for a process that serves it on its
// own address (Deps.SeparateMetrics).
func NewMetricsRouter(d Deps) *gin.Engine {
	s := buildServer(d)
	r := s.engine()
	r.GET("/metrics", gin.WrapH(s.Metrics.Handler()))
	return r
}

func (s *Server) engine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Vigil is reached directly or through a proxy that sets
	// X-Forwarded-For. Only the configured proxies may name the client;
	// trusting none (the default) keeps client_ip the socket's peer.
	r.ForwardedByClientIP = true
	r.RemoteIPHeaders = []string{"X-Forwarded-For", "X-Real-IP"}
	if err := r.SetTrustedProxies(s.TrustedProxies); err != nil {
		s.Logger.Error("invalid trusted proxies: trusting none", "trusted_proxies", s.TrustedProxies, "err", err)
		_ = r.SetTrustedProxies(nil)
	}
	r.Use(requestIDMiddleware(), s.accessLogMiddleware(), s.recoveryMiddleware(), textGuard())
	r.NoRoute(func(c *gin.Context) {
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no such route: "+c.Request.Method+" "+c.Request.URL.Path, "")
	})
	r.NoMethod(func(c *gin.Context) {
		abortWithError(c, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method "+c.Request.Method+" is not allowed here", "")
	})
	return r
}

func (s *Server) operationsRoutes(r *gin.Engine) {
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	if !s.SeparateMetrics {
		r.GET("/metrics", gin.WrapH(s.Metrics.Handler()))
	}
}

// workflowURL links to a workflow's page in the Temporal Web UI.
func (s *Server) workflowURL(workflowID string) string {
	if s.TemporalUIURL == "" {
		return ""
	}
	return s.TemporalUIURL + "/namespaces/" + url.PathEscape(s.Namespace) + "/workflows/" + url.PathEscape(workflowID)
}
