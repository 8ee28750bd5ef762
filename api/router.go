// Package api is Vigil's REST API: a Gin router whose handlers start
// workflows, send them updates and signals, and read the Postgres query
// model. It imports package workflows for their contracts and never package
// activities.
package api

import (
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/messagestore"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/workflows"
)

// Deps are the API's dependencies, shared by every handler.
type Deps struct {
	DB        *sqlx.DB
	Temporal  client.Client
	Logger    *slog.Logger
	Metrics   *metrics.Registry
	Namespace string
	TaskQueue string
	// TemporalUIURL is the Web UI's base URL, for links to workflow runs.
	TemporalUIURL string
	// Signer issues and verifies staff tokens.
	Signer *auth.Signer
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
	// ActivationSecret (32+ bytes) derives patient activation codes and keys
	// the lookup of activation codes; empty makes the activation endpoints
	// answer 503.
	ActivationSecret []byte
	// ActivationPINLength (default 4), ActivationExpiryDays (5: to the end
	// of the 5th day in HospitalTZ) and ActivationMaxAttempts (10 wrong PINs
	// lock) shape activations.
	ActivationPINLength   int
	ActivationExpiryDays  int
	ActivationMaxAttempts int
	// PatientTokenTTL (default 15m), DeviceTokenTTL (24h) and
	// ClinicianTokenTTL (15m) bound the tokens minted for those subjects.
	PatientTokenTTL   time.Duration
	DeviceTokenTTL    time.Duration
	ClinicianTokenTTL time.Duration
	// ClinicianLoginGroups may log in through a device (case-insensitive);
	// empty means "send clinician" and "send superclinician".
	ClinicianLoginGroups []string
	// ActivationRatePerMinute bounds activation-code and token requests per
	// client IP (burst the same); zero means 10.
	ActivationRatePerMinute int
}

// Server holds the dependencies; its methods are the handlers.
type Server struct {
	db        *sqlx.DB
	temporal  client.Client
	logger    *slog.Logger
	metrics   *metrics.Registry
	namespace string
	taskQueue string
	uiURL     string
	signer    *auth.Signer
	accessTTL time.Duration
	// refreshTTL bounds refresh tokens.
	refreshTTL time.Duration
	hospitalTZ *time.Location
	// slackSigningSecret verifies Slack's interaction callbacks.
	slackSigningSecret string
	// alerts coalesces alert storms per dedup key.
	alerts *coalescer[*alert, workflows.AlertResult]
	// catalogue caches alert type severities.
	catalogue *alertCatalogue
	// databaseURL, busOnce and notifyBus serve the notification streams.
	databaseURL string
	busOnce     sync.Once
	notifyBus   *notificationBus
	// messageBatcher groups concurrent message creates into shared commits.
	messageBatcher *messagestore.Batcher
	// autoResolveWait is passed to new incidents.
	autoResolveWait time.Duration
	// act holds the activation and subject-token settings.
	act *activationSettings
}

func newServer(d Deps) *Server {
	s := buildServer(d)
	s.alerts = newCoalescer(s.sendAlerts)
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
		d.AccessTTL = 15 * time.Minute
	}
	if d.RefreshTTL <= 0 {
		d.RefreshTTL = 12 * time.Hour
	}
	if d.HospitalTZ == nil {
		d.HospitalTZ = time.UTC
	}
	return &Server{
		db:             d.DB,
		messageBatcher: &messagestore.Batcher{DB: d.DB},
		temporal:       d.Temporal,
		logger:         d.Logger,
		metrics:        d.Metrics,
		namespace:      d.Namespace,
		taskQueue:      d.TaskQueue,
		uiURL:          d.TemporalUIURL,
		signer:         d.Signer,
		accessTTL:      d.AccessTTL,
		refreshTTL:     d.RefreshTTL,
		hospitalTZ:     d.HospitalTZ,

		slackSigningSecret: d.SlackSigningSecret,
		databaseURL:        d.DatabaseURL,
		autoResolveWait:    d.AutoResolveWait,
		act:                newActivationSettings(d),
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

	v1.POST("/alerts", s.requireAlertSource(false), s.postAlert)
	v1.POST("/alerts/alertmanager", s.requireAlertSource(false), s.postAlertmanager)
	v1.POST("/alerts/pagerduty", s.requireAlertSource(true), s.postPagerDuty)
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

func (s *Server) engine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Vigil is reached directly or through a proxy that sets X-Forwarded-For;
	// trusting no proxies by default keeps client_ip honest.
	_ = r.SetTrustedProxies(nil)
	r.Use(requestIDMiddleware(), s.accessLogMiddleware(), s.recoveryMiddleware())
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
	r.GET("/metrics", gin.WrapH(s.metrics.Handler()))
}

// workflowURL links to a workflow's page in the Temporal Web UI.
func (s *Server) workflowURL(workflowID string) string {
	if s.uiURL == "" {
		return ""
	}
	return s.uiURL + "/namespaces/" + url.PathEscape(s.namespace) + "/workflows/" + url.PathEscape(workflowID)
}
