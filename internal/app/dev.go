package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/mail"
	"github.com/vigil-health/vigil/internal/mail/mailsink"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/node/brokersim"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/watch/directory/directorysim"
	"github.com/vigil-health/vigil/workflows"
)

// DevStack is a running `vigil dev`: an embedded Temporal server and Web UI,
// the worker and the API in one process, on a migrated Postgres database.
type DevStack struct {
	// APIURL is the REST API's base URL.
	APIURL string
	// TemporalAddress is the embedded frontend's host:port.
	TemporalAddress string
	// TemporalUIURL is the Web UI's base URL.
	TemporalUIURL string
	// Namespace is the Temporal namespace.
	Namespace string
	// DirectoryURL is the service directory (the simulator unless
	// VIGIL_DIRECTORY_URL is set).
	DirectoryURL string
	// BrokerURL is the data broker (the simulator unless VIGIL_BROKER_URL is
	// set); Mail is the local mail catcher, nil when VIGIL_SMTP_HOST is set.
	BrokerURL string
	Mail      *mailsink.Sink
	// MetricsURL is the base URL of /metrics: APIURL unless
	// VIGIL_METRICS_ADDR is set.
	MetricsURL string
	// CodecEndpoint is the API's codec server as the Web UI reaches it
	// (on the UI's host name, so the browser sends the console cookie).
	CodecEndpoint string
	// DataConverter encrypts payloads as the stack's own client does: a
	// client dialled with it reads and writes the stack's workflows.
	DataConverter converter.DataConverter

	parts   lifecycle
	errc    <-chan error
	timeout func() // stops the stack with the configured timeout
}

// StartDev starts the development stack and returns once every part answers.
// The Temporal frontend binds to the port of cfg.TemporalAddress (a free one
// when it is 0) on cfg.Dev.BindIP; the Web UI to cfg.Dev.UIPort (a free one
// when it is embeddedtemporal.AnyPort).
func StartDev(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *DevStack, err error) {
	d := &DevStack{}
	d.timeout = func() { d.parts.stopAll(cfg.ShutdownTimeout, logger) }
	defer func() {
		if err != nil {
			d.timeout()
		}
	}()

	// The API's port is bound first: the Web UI starts knowing the URL of
	// the codec server on the API, and a taken port fails at once.
	apiLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	d.parts.add("api listener", func(context.Context) error { _ = apiLn.Close(); return nil })
	apiBase := apiBaseURL(cfg, apiLn.Addr().String())
	d.CodecEndpoint = apiBase + "/codec"

	codec, err := PayloadCodec(cfg, true, logger)
	if err != nil {
		return nil, err
	}
	d.DataConverter = codec.DataConverter()

	srv, err := startEmbeddedTemporal(ctx, cfg, apiBase, logger)
	if err != nil {
		return nil, err
	}
	d.parts.add("temporal server", func(context.Context) error { return srv.Stop() })
	d.TemporalAddress, d.TemporalUIURL, d.Namespace = srv.FrontendAddress(), srv.UIURL(), srv.Namespace()
	logger.InfoContext(ctx, "embedded temporal server started", "address", d.TemporalAddress, "ui", d.TemporalUIURL)

	db, err := openDatabase(ctx, cfg, logger, true, true)
	if err != nil {
		return nil, err
	}
	d.parts.add("postgres", func(context.Context) error { return db.Close() })

	if cfg.Dev.Demo {
		n, err := demo.SeedStaff(ctx, db, cfg.Dev.DemoPassword.Reveal())
		if err != nil {
			return nil, fmt.Errorf("seed demo staff: %w", err)
		}
		if n > 0 {
			logger.InfoContext(ctx, "demo staff seeded", "staff", n)
		}
	}

	simulated := cfg.DirectoryURL == ""
	if simulated {
		// No directory configured: run the simulator, with the demo's
		// services changing now and then.
		sim := directorysim.New(directorysim.Options{Accounts: directorysim.DefaultAccounts(), RatePerSecond: 200})
		url, stopSim, err := sim.Start(net.JoinHostPort(cfg.Dev.BindIP, "0"))
		if err != nil {
			return nil, fmt.Errorf("start directory simulator: %w", err)
		}
		d.parts.add("directory simulator", func(context.Context) error { stopSim(); return nil })
		simCtx, cancelSim := context.WithCancel(context.WithoutCancel(ctx))
		go sim.RandomChanges(simCtx, time.Minute, 0.05)
		d.parts.add("directory simulator changes", func(context.Context) error { cancelSim(); return nil })
		cfg.DirectoryURL = url
		cfg.DirectoryAccounts = config.Secret("CAPMON=capmon:capmon-demo,PATHWAYS_REFERRAL=pathways:pathways-demo,DIGITAL_REFERRAL=digital:digital-demo")
		d.DirectoryURL = url
		logger.InfoContext(ctx, "directory simulator started", "url", url)
	}

	if err := d.startBrokerAndMail(ctx, &cfg, db, logger); err != nil {
		return nil, err
	}

	reg := metrics.New()
	tc, err := dialTemporal(ctx, d.TemporalAddress, d.Namespace, reg, codec, logger)
	if err != nil {
		return nil, err
	}
	d.parts.add("temporal client", func(context.Context) error { tc.Close(); return nil })

	cfg.RegisterSearchAttributes = true
	keys, err := TransitionKeys(cfg, true, logger)
	if err != nil {
		return nil, err
	}
	if err := startWorker(ctx, cfg, db, tc, reg, keys, &d.parts, logger); err != nil {
		return nil, err
	}
	// The demo scans the broker fleet once now rather than a scan period
	// from now.
	if cfg.Dev.Demo {
		if err := tc.ScheduleClient().GetHandle(ctx, workflows.FleetScanScheduleID).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
			logger.WarnContext(ctx, "first fleet scan not triggered", "error", err)
		}
	}

	deps := apiDeps(cfg, db, tc, reg, logger, d.TemporalUIURL)
	deps.PayloadCodec = codec
	deps.TransitionKeys = keys
	if err := addSecrets(&deps, cfg, true, logger); err != nil {
		return nil, err
	}
	h := serveHTTP(apiLn, api.NewRouter(deps), make(chan error, 2))
	d.parts.add("http server", h.shutdown)
	logger.InfoContext(ctx, "listening", "url", h.url())
	d.APIURL, d.MetricsURL = h.url(), h.url()
	d.errc = h.errc
	if m, err := startMetrics(cfg, deps, h.errc, &d.parts); err != nil {
		return nil, err
	} else if m != nil {
		d.MetricsURL = m.url()
	}

	if cfg.Dev.Demo && simulated {
		// The demo's capacity watches, on the simulator's services, made
		// through the API as the charge nurse C01.
		if n, err := demo.SeedWatches(ctx, d.APIURL, "c01", cfg.Dev.DemoPassword.Reveal()); err != nil {
			logger.WarnContext(ctx, "demo watches not seeded", "err", err)
		} else if n > 0 {
			logger.InfoContext(ctx, "demo watches seeded", "watches", n)
		}
	}
	if cfg.Dev.Demo && cfg.Dev.DemoAlertsPerMinute > 0 {
		key, err := demoAPIKey(ctx, db)
		if err != nil {
			return nil, err
		}
		genCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		gen := &demo.AlertGenerator{BaseURL: d.APIURL, APIKey: key, PerMinute: cfg.Dev.DemoAlertsPerMinute, Logger: logger}
		go func() { defer close(done); gen.Run(genCtx) }()
		d.parts.add("demo alert generator", func(context.Context) error { cancel(); <-done; return nil })
	}
	return d, nil
}

// startBrokerAndMail starts the broker simulator (its demo fleet, moving
// with the wall clock) when no broker is configured, and a local mail
// catcher that logs every node e-mail when no SMTP server is configured. With
// the demo on, the demo fleet gets names and contacts.
func (d *DevStack) startBrokerAndMail(ctx context.Context, cfg *config.Config, db *sqlx.DB, logger *slog.Logger) error {
	if cfg.BrokerURL == "" {
		sim := brokersim.New(brokersim.Options{})
		if _, err := sim.AddDemoFleet(); err != nil {
			return fmt.Errorf("broker simulator fleet: %w", err)
		}
		url, stop, err := sim.Start(net.JoinHostPort(cfg.Dev.BindIP, "0"))
		if err != nil {
			return fmt.Errorf("start broker simulator: %w", err)
		}
		d.parts.add("broker simulator", func(context.Context) error { stop(); return nil })
		simCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		go sim.Run(simCtx, 10*time.Second)
		d.parts.add("broker simulator clock", func(context.Context) error { cancel(); return nil })
		cfg.BrokerURL, cfg.BrokerAPIKey = url, config.Secret(brokersim.DefaultAdminKey)
		if cfg.CurrentDWHVersion == "" {
			cfg.CurrentDWHVersion = brokersim.CurrentDWHVersion
		}
		d.BrokerURL = url
		logger.InfoContext(ctx, "broker simulator started", "url", url, "nodes", len(sim.NodeIDs()))
		if cfg.Dev.Demo {
			if err := demo.SeedNodes(ctx, db, brokersim.DemoFleet(time.Now())); err != nil {
				return fmt.Errorf("seed demo nodes: %w", err)
			}
		}
	} else {
		d.BrokerURL = cfg.BrokerURL
	}
	if cfg.SMTPHost == "" {
		sink, err := mailsink.Start(mailsink.Options{Addr: net.JoinHostPort(cfg.Dev.BindIP, "0"), TLS: "none", Logger: logger})
		if err != nil {
			return fmt.Errorf("start mail catcher: %w", err)
		}
		d.parts.add("mail catcher", func(context.Context) error { return sink.Close() })
		cfg.SMTPHost, cfg.SMTPPort, cfg.SMTPTLS = sink.Host(), sink.Port(), string(mail.TLSNone)
		if cfg.MailFrom == "" {
			cfg.MailFrom = "vigil@localhost"
		}
		d.Mail = sink
		logger.InfoContext(ctx, "mail catcher started (node e-mails are logged, not delivered)", "addr", sink.Addr())
	}
	return nil
}

// demoAPIKey makes a fresh API key for the demo generator, revoking the
// previous run's.
func demoAPIKey(ctx context.Context, db *sqlx.DB) (string, error) {
	k, err := (&reference.Store{DB: db}).ReplaceAPIKey(ctx, "demo-generator")
	if err != nil {
		return "", fmt.Errorf("demo api key: %w", err)
	}
	return k.Reveal(), nil
}

// Err reports a part that failed after start.
func (d *DevStack) Err() <-chan error { return d.errc }

// Stop stops every part in reverse order of start.
func (d *DevStack) Stop() { d.timeout() }

// Dev runs the development stack until ctx ends, printing where to find it.
func Dev(ctx context.Context, cfg config.Config, logger *slog.Logger, out io.Writer) error {
	d, err := StartDev(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer d.Stop()
	_, _ = fmt.Fprintf(out, `
Vigil dev stack is up.
  API             %[1]s
  Staff console   %[1]s/ (sign in with a staff login; the demo's are below)
  Temporal Web UI %[2]s/namespaces/%[4]s/workflows
  Temporal gRPC   %[3]s (namespace %[4]s)
  Postgres        %[5]s
  Directory       %[7]s

Try:  curl -s -XPOST '%[1]s/v1/system/check?wait=true'
%[6]s
Workflow payloads are encrypted; the Web UI decodes them through %[8]s
once an admin has signed in at %[9]s/ui/login (same host name as the Web UI).

Press Ctrl-C to stop.

`, d.APIURL, d.TemporalUIURL, d.TemporalAddress, d.Namespace, cfg.DatabaseURL, demoBanner(cfg), d.DirectoryURL,
		d.CodecEndpoint, strings.TrimSuffix(d.CodecEndpoint, "/codec"))
	if err := waitForStop(ctx, d.Err()); err != nil {
		return err
	}
	_, _ = fmt.Fprintln(out, "Stopping Vigil dev stack...")
	return nil
}

func demoBanner(cfg config.Config) string {
	if !cfg.Dev.Demo {
		return ""
	}
	return fmt.Sprintf(`
Demo hospital: %.0f alerts a minute from the demo generator. Staff logins:
  n01..n06 nurses, d01..d04 emergency doctors, c01..c03 charge nurses, a01 admin
  password: $VIGIL_DEMO_PASSWORD (default %q)
  TOKEN=$(curl -s localhost:8080/v1/auth/login -H 'Content-Type: application/json' -d '{"login":"c01","password":"%s"}' | jq -r .access_token)
  curl -s -H "Authorization: Bearer $TOKEN" 'localhost:8080/v1/incidents?status=ASSIGNED'

`, cfg.Dev.DemoAlertsPerMinute, config.DefaultDemoPassword, config.DefaultDemoPassword)
}
