// Package app is the lifecycle of Vigil's processes: `vigil api`,
// `vigil worker`, `vigil migrate` and the all-in-one `vigil dev`. It is
// separate from package main so tests can run a whole process in-process.
//
// Every entry point blocks until its context is cancelled (Ctrl-C or SIGTERM
// in main), then stops its parts in reverse order of start.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/actionproof"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/mail"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/broker"
	"github.com/vigil-health/vigil/internal/payloadcodec"
	"github.com/vigil-health/vigil/internal/schedules"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/sms"
	"github.com/vigil-health/vigil/internal/stores"
	"github.com/vigil-health/vigil/internal/temporalclient"
	"github.com/vigil-health/vigil/internal/watch/directory"
	"github.com/vigil-health/vigil/worker"
	"github.com/vigil-health/vigil/workflows"
)

// NewLogger returns the process's root logger writing to w.
func NewLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// API runs the REST API until ctx ends.
func API(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	return runServer(ctx, cfg, logger, func(conns connections, _ *lifecycle) (api.Deps, http.Handler, error) {
		deps := apiDeps(cfg, conns.db, conns.tc, conns.reg, logger, cfg.TemporalUIURL)
		deps.PayloadCodec = conns.codec
		var err error
		if deps.TransitionKeys, err = TransitionKeys(cfg, false, logger); err != nil {
			return deps, nil, err
		}
		if err := addSecrets(&deps, cfg, false, logger); err != nil {
			return deps, nil, err
		}
		return deps, api.NewRouter(deps), nil
	}, func(url string) {
		logger.InfoContext(ctx, "vigil api started", "url", url, "config", cfg)
	})
}

// Worker runs the Temporal worker, plus health and metrics endpoints, until
// ctx ends.
func Worker(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	return runServer(ctx, cfg, logger, func(conns connections, parts *lifecycle) (api.Deps, http.Handler, error) {
		keys, err := TransitionKeys(cfg, false, logger)
		if err != nil {
			return api.Deps{}, nil, err
		}
		if err := startWorker(ctx, cfg, conns.db, conns.tc, conns.reg, keys, parts, logger); err != nil {
			return api.Deps{}, nil, err
		}
		deps := apiDeps(cfg, conns.db, conns.tc, conns.reg, logger, cfg.TemporalUIURL)
		return deps, api.NewOperationsRouter(deps), nil
	}, func(url string) {
		logger.InfoContext(ctx, "vigil worker started", "task_queue", cfg.TaskQueue, "health_url", url, "config", cfg)
	})
}

// runServer is the start-up path `vigil api` and `vigil worker` share: it
// connects, has start add the process's own parts and build the handler to
// serve, serves it, calls started with the server's URL and blocks until ctx
// ends; then it stops every part in reverse order of start.
func runServer(ctx context.Context, cfg config.Config, logger *slog.Logger,
	start func(conns connections, parts *lifecycle) (api.Deps, http.Handler, error), started func(url string)) error {
	var parts lifecycle
	defer parts.stopAll(cfg.ShutdownTimeout, logger)

	conns, err := connect(ctx, cfg, logger, &parts)
	if err != nil {
		return err
	}
	deps, h, err := start(conns, &parts)
	if err != nil {
		return err
	}
	srv, err := serve(ctx, cfg, deps, h, &parts, logger)
	if err != nil {
		return err
	}
	started(srv.url())
	return waitForStop(ctx, srv.errc)
}

// connections are what `vigil api` and `vigil worker` open first: the
// database, and a Temporal client reporting to the process's metrics
// registry and encrypting payloads with its codec.
type connections struct {
	db    *sqlx.DB
	reg   *metrics.Registry
	codec *payloadcodec.Codec
	tc    client.Client
}

// connect opens the database (migrating it when VIGIL_AUTO_MIGRATE is set)
// and dials Temporal, adding both to parts to be closed at stop.
func connect(ctx context.Context, cfg config.Config, logger *slog.Logger, parts *lifecycle) (connections, error) {
	db, err := openDatabase(ctx, cfg, logger, false, cfg.AutoMigrate)
	if err != nil {
		return connections{}, err
	}
	parts.add("postgres", func(context.Context) error { return db.Close() })

	reg := metrics.New()
	codec, err := PayloadCodec(cfg, false, logger)
	if err != nil {
		return connections{}, err
	}
	tc, err := dialTemporal(ctx, cfg.TemporalAddress, cfg.TemporalNamespace, reg, codec, logger)
	if err != nil {
		return connections{}, err
	}
	parts.add("temporal client", func(context.Context) error { tc.Close(); return nil })
	return connections{db: db, reg: reg, codec: codec, tc: tc}, nil
}

// serve starts the process's HTTP server with h on VIGIL_HTTP_ADDR, and
// the metrics server when VIGIL_METRICS_ADDR is set, adding both to parts.
func serve(ctx context.Context, cfg config.Config, deps api.Deps, h http.Handler, parts *lifecycle, logger *slog.Logger) (*httpServer, error) {
	srv, err := startHTTP(cfg.HTTPAddr, h)
	if err != nil {
		return nil, err
	}
	parts.add("http server", srv.shutdown)
	logger.InfoContext(ctx, "listening", "url", srv.url())
	if _, err := startMetrics(cfg, deps, srv.errc, parts); err != nil {
		return nil, err
	}
	return srv, nil
}

// Migrate applies pending migrations, or with args ["status"] prints which
// are applied.
func Migrate(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, out io.Writer) error {
	if len(args) > 1 || (len(args) == 1 && args[0] != "up" && args[0] != "status") {
		return errors.New("usage: vigil migrate [up|status]")
	}
	db, err := openDatabase(ctx, cfg, logger, true, false)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if len(args) == 1 && args[0] == "status" {
		st, err := database.Status(ctx, db.DB)
		if err != nil {
			return err
		}
		for _, s := range st {
			state := "pending"
			if s.Applied {
				state = "applied"
			}
			_, _ = fmt.Fprintf(out, "%05d  %-8s %s\n", s.Version, state, s.File)
		}
		return nil
	}
	return database.Migrate(ctx, db.DB, logger)
}

// openDatabase optionally creates the database, opens it and optionally
// migrates it, logging each step. Each step returns as soon as ctx ends, even
// while a Postgres that accepts TCP but never answers holds the handshake.
func openDatabase(ctx context.Context, cfg config.Config, logger *slog.Logger, ensure, migrate bool) (*sqlx.DB, error) {
	dsn := cfg.DatabaseURL.Reveal()
	db, err := startStep(ctx, logger, "connecting to postgres", postgresConnectTimeout, func(ctx context.Context) (*sqlx.DB, error) {
		if ensure {
			created, err := database.EnsureExists(ctx, dsn)
			if err != nil {
				return nil, err
			}
			if created {
				logger.InfoContext(ctx, "database created", "database_url", cfg.DatabaseURL)
			}
		}
		return database.Open(ctx, dsn)
	}, func(db *sqlx.DB) { _ = db.Close() }, "database_url", cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	logger.InfoContext(ctx, "connected to postgres")
	if migrate {
		if _, err := startStep(ctx, logger, "applying migrations", 0, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, database.Migrate(ctx, db.DB, logger)
		}, nil); err != nil {
			_ = db.Close()
			return nil, err
		}
		logger.InfoContext(ctx, "migrations applied")
	}
	return db, nil
}

// dialTemporal connects to the Temporal frontend as a logged start-up step
// that returns as soon as ctx ends; the SDK's metrics go to reg, and every
// payload the client (and the worker made from it) sends goes through codec.
func dialTemporal(ctx context.Context, address, namespace string, reg *metrics.Registry, codec *payloadcodec.Codec, logger *slog.Logger) (client.Client, error) {
	tc, err := startStep(ctx, logger, "connecting to temporal", 0, func(ctx context.Context) (client.Client, error) {
		return temporalclient.Dial(ctx, address, namespace, logger,
			temporalclient.WithMetrics(reg.TemporalSDK()), temporalclient.WithDataConverter(codec.DataConverter()))
	}, func(tc client.Client) { tc.Close() }, "address", address, "namespace", namespace)
	if err != nil {
		return nil, err
	}
	logger.InfoContext(ctx, "connected to temporal", "address", address)
	return tc, nil
}

// startWorker registers search attributes when configured and starts the
// Temporal worker.
func startWorker(ctx context.Context, cfg config.Config, db *sqlx.DB, tc client.Client, reg *metrics.Registry,
	keys *actionproof.Keyring, parts *lifecycle, logger *slog.Logger) error {
	if cfg.RegisterSearchAttributes {
		if err := temporalclient.EnsureSearchAttributes(ctx, tc, cfg.TemporalNamespace, workflows.SearchAttributes); err != nil {
			return err
		}
	}
	deps := worker.Dependencies{DB: db, HospitalTZ: cfg.HospitalTZ, Metrics: reg, SlackChannel: cfg.SlackChannel, TransitionKeys: keys}
	if cfg.SlackBotToken != "" {
		deps.Slack = slacknotify.New(slacknotify.Config{Token: cfg.SlackBotToken.Reveal(), APIURL: cfg.SlackAPIURL, DefaultChannel: cfg.SlackChannel})
	}
	if cfg.SMSAccountSID != "" {
		deps.SMS = &sms.Client{BaseURL: cfg.SMSURL, AccountSID: cfg.SMSAccountSID, AuthToken: cfg.SMSAuthToken.Reveal(), From: cfg.SMSFrom}
	}
	if cfg.DirectoryURL != "" {
		dir, err := newDirectory(cfg)
		if err != nil {
			return err
		}
		deps.Directory, deps.DirectoryRate = dir, cfg.DirectoryRate
	}
	if cfg.BrokerURL != "" {
		bc, err := broker.NewClient(broker.Options{BaseURL: cfg.BrokerURL, APIKey: cfg.BrokerAPIKey.Reveal()})
		if err != nil {
			return fmt.Errorf("broker client: %w", err)
		}
		deps.Broker, deps.BrokerConcurrency = bc, cfg.BrokerConcurrency
	}
	deps.CurrentDWHVersion, deps.CurrentI2B2Version, deps.MailCC = cfg.CurrentDWHVersion, cfg.CurrentI2B2Version, cfg.MailCC
	if cfg.SMTPHost != "" {
		m, err := mail.NewSender(mailConfig(cfg))
		if err != nil {
			return fmt.Errorf("smtp: %w", err)
		}
		deps.Mailer = m
	}
	// The outbox backlog and the node count by status are read from
	// Postgres at each scrape of this worker's /metrics.
	if err := reg.RegisterState(metrics.StateSources{
		Outbox: (&incident.Store{DB: db}).Backlog,
		NodeStatuses: func(ctx context.Context) (map[string]int, error) {
			return (&node.Store{DB: db}).CountByStatus(ctx, time.Now())
		},
		Logger: logger,
	}); err != nil {
		return err
	}
	w := worker.New(tc, cfg.TaskQueue, deps)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start temporal worker: %w", err)
	}
	parts.add("temporal worker", func(context.Context) error { w.Stop(); return nil })
	logger.InfoContext(ctx, "worker started", "task_queue", cfg.TaskQueue)
	// The capacity schedules (snapshot retention, Slack summary) are created
	// or brought up to date; an operator's pause is kept.
	summaryChannel := ""
	if cfg.SlackBotToken != "" {
		summaryChannel = cfg.CapacitySummaryChannel
	}
	if err := schedules.Ensure(ctx, tc, cfg.TaskQueue, schedules.Options{
		Retention:           cfg.SnapshotRetention,
		SummaryEvery:        cfg.CapacitySummaryEvery,
		SummarySlackChannel: summaryChannel,
		BrokerScanEvery:     brokerScanEvery(cfg),
	}); err != nil {
		return fmt.Errorf("ensure capacity schedules: %w", err)
	}
	return nil
}

// brokerScanEvery is the fleet scan period, or zero (no schedule) when no
// broker is configured.
func brokerScanEvery(cfg config.Config) time.Duration {
	if cfg.BrokerURL == "" {
		return 0
	}
	return cfg.BrokerScanEvery
}

// mailConfig is the SMTP sender's configuration.
func mailConfig(cfg config.Config) mail.Config {
	return mail.Config{
		Host: cfg.SMTPHost, Port: cfg.SMTPPort, TLS: mail.TLSMode(cfg.SMTPTLS),
		Username: cfg.SMTPUsername, Password: cfg.SMTPPassword.Reveal(), From: cfg.MailFrom,
	}
}

// SignerConfig is the configured token signer's: RS256 with
// VIGIL_JWT_RSA_KEY_FILE, else HS512 with VIGIL_JWT_SECRET; ok is false
// when neither is set.
func SignerConfig(cfg config.Config) (sc auth.SignerConfig, ok bool, err error) {
	sc = auth.SignerConfig{Issuer: "vigil", HMACSecret: []byte(cfg.JWTSecret.Reveal())}
	if cfg.JWTRSAKeyFile != "" {
		pem, err := os.ReadFile(cfg.JWTRSAKeyFile)
		if err != nil {
			return sc, false, fmt.Errorf("VIGIL_JWT_RSA_KEY_FILE: %w", err)
		}
		sc.RSAPrivateKeyPEM = pem
	}
	return sc, cfg.JWTRSAKeyFile != "" || len(sc.HMACSecret) > 0, nil
}

// newSigner builds the token signer: RS256 with the configured key file,
// else HS512 with the configured secret. Without either, `vigil dev` makes a
// random secret (tokens do not survive a restart) and `vigil api` refuses to
// start.
func newSigner(cfg config.Config, dev bool, logger *slog.Logger) (*auth.Signer, error) {
	sc, ok, err := SignerConfig(cfg)
	if err != nil {
		return nil, err
	}
	if !ok {
		if !dev {
			return nil, errors.New("VIGIL_JWT_SECRET (32+ bytes) or VIGIL_JWT_RSA_KEY_FILE must be set")
		}
		sc.HMACSecret = make([]byte, 64)
		if _, err := rand.Read(sc.HMACSecret); err != nil {
			return nil, fmt.Errorf("make a dev token secret: %w", err)
		}
		logger.Info("no VIGIL_JWT_SECRET: using a random one; tokens will not survive a restart")
	}
	s, err := auth.NewSigner(sc)
	if err != nil {
		return nil, fmt.Errorf("token signer: %w", err)
	}
	return s, nil
}

// newDirectory builds the DoS REST client from the configuration.
func newDirectory(cfg config.Config) (directory.Directory, error) {
	accounts, err := config.ParseAccounts(cfg.DirectoryAccounts.Reveal())
	if err != nil {
		return nil, err
	}
	dos := directory.DoSConfig{
		BaseURL: cfg.DirectoryURL, Accounts: map[string]directory.Account{},
		DefaultRole: cfg.DirectoryDefaultRole, FallbackRole: cfg.DirectoryFallbackRole,
		// Each process also limits itself; the task-queue limit holds the
		// total across processes.
		RatePerSecond: cfg.DirectoryRate,
	}
	for role, a := range accounts {
		dos.Accounts[role] = directory.Account{Username: a.Username, Password: a.Password}
	}
	c, err := directory.NewDoSClient(dos)
	if err != nil {
		return nil, fmt.Errorf("directory client: %w", err)
	}
	return c, nil
}

func apiDeps(cfg config.Config, db *sqlx.DB, tc client.Client, reg *metrics.Registry, logger *slog.Logger, uiURL string) api.Deps {
	return api.Deps{
		Stores:             stores.New(db),
		Temporal:           tc,
		Logger:             logger,
		Metrics:            reg,
		Namespace:          cfg.TemporalNamespace,
		TaskQueue:          cfg.TaskQueue,
		TemporalUIURL:      uiURL,
		AccessTTL:          cfg.AccessTokenTTL,
		RefreshTTL:         cfg.RefreshTokenTTL,
		HospitalTZ:         cfg.HospitalTZ,
		DatabaseURL:        cfg.DatabaseURL.Reveal(),
		AutoResolveWait:    cfg.AutoResolveWait,
		SlackSigningSecret: cfg.SlackSigningSecret.Reveal(),

		Activation: cfg.Activation,

		TrustedProxies:  cfg.TrustedProxies,
		SeparateMetrics: cfg.MetricsAddr != "",
		LoginThrottle:   cfg.LoginThrottle,
		MapTileURL:      cfg.MapTileURL,
	}
}

// startMetrics serves /metrics on VIGIL_METRICS_ADDR when it is set (deps
// then has SeparateMetrics, so the other routers leave it out); a failure
// after start goes to errc. It returns nil when no address is set.
func startMetrics(cfg config.Config, deps api.Deps, errc chan error, parts *lifecycle) (*httpServer, error) {
	if cfg.MetricsAddr == "" {
		return nil, nil
	}
	srv, err := startHTTPErrc(cfg.MetricsAddr, api.NewMetricsRouter(deps), errc)
	if err != nil {
		return nil, fmt.Errorf("VIGIL_METRICS_ADDR: %w", err)
	}
	parts.add("metrics server", srv.shutdown)
	return srv, nil
}

// addSecrets gives the API its token signer and activation-code secret.
func addSecrets(deps *api.Deps, cfg config.Config, dev bool, logger *slog.Logger) error {
	signer, err := newSigner(cfg, dev, logger)
	if err != nil {
		return err
	}
	secret, err := activationSecret(cfg, dev, logger)
	if err != nil {
		return err
	}
	deps.Signer, deps.ActivationSecret = signer, secret
	return nil
}

// activationSecret keys activation codes (their lookup digests and the
// derivation of patient codes). Without VIGIL_ACTIVATION_SECRET, `vigil dev`
// makes a random one (codes do not survive a restart) and `vigil api`
// refuses to start.
func activationSecret(cfg config.Config, dev bool, logger *slog.Logger) ([]byte, error) {
	if cfg.ActivationSecret != "" {
		return []byte(cfg.ActivationSecret.Reveal()), nil
	}
	if !dev {
		return nil, errors.New("VIGIL_ACTIVATION_SECRET (32+ bytes) must be set")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("make a dev activation secret: %w", err)
	}
	logger.Info("no VIGIL_ACTIVATION_SECRET: using a random one; activation codes will not survive a restart")
	return b, nil
}

// waitForStop blocks until ctx ends (a clean stop) or a server fails.
func waitForStop(ctx context.Context, errc <-chan error) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// lifecycle stops what was started, in reverse order.
type lifecycle struct {
	parts []part
}

type part struct {
	name string
	stop func(context.Context) error
}

func (l *lifecycle) add(name string, stop func(context.Context) error) {
	l.parts = append(l.parts, part{name: name, stop: stop})
}

func (l *lifecycle) stopAll(timeout time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i := len(l.parts) - 1; i >= 0; i-- {
		p := l.parts[i]
		if err := p.stop(ctx); err != nil {
			logger.Warn("stop failed", "part", p.name, "err", err)
		} else {
			logger.Debug("stopped", "part", p.name)
		}
	}
	l.parts = nil
}

// httpServer is a started HTTP server.
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	errc chan error
}

// startHTTP listens at once, so a taken port fails the start, then serves in
// the background.
func startHTTP(addr string, h http.Handler) (*httpServer, error) {
	// Room for this server's failure and a metrics server's sharing errc.
	return startHTTPErrc(addr, h, make(chan error, 2))
}

// startHTTPErrc is startHTTP reporting a failure after start to errc.
func startHTTPErrc(addr string, h http.Handler, errc chan error) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return serveHTTP(ln, h, errc), nil
}

// serveHTTP serves h on ln, which the caller bound, in the background; a
// failure after start goes to errc.
func serveHTTP(ln net.Listener, h http.Handler, errc chan error) *httpServer {
	addr := ln.Addr().String()
	s := &httpServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		ln:   ln,
		errc: errc,
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case s.errc <- fmt.Errorf("http server %s: %w", addr, err):
			default: // another failure is already reported
			}
		}
	}()
	return s
}

// url is the server's base URL, with an unspecified host shown as localhost.
func (s *httpServer) url() string {
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

func (s *httpServer) shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}
