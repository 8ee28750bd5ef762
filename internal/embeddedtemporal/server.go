// Package embeddedtemporal runs a complete Temporal server, and optionally the
// Temporal Web UI, inside the current process, persisted in SQLite.
//
// `vigil dev` uses it so a laptop needs nothing but Postgres, and the
// integration tests use it (in memory) so every test package talks to a real
// Temporal server without a separately installed CLI.
package embeddedtemporal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/vigil-health/vigil/internal/netport"
)

// Options configures the embedded server.
type Options struct {
	// DataDir holds the SQLite file (temporal.db). Empty means in memory:
	// nothing survives Stop, which is what tests want.
	DataDir string
	// IP is the address every listener binds to. Defaults to 127.0.0.1.
	IP string
	// FrontendPort is the gRPC port clients dial. Zero picks a free port.
	FrontendPort int
	// UIPort serves the Temporal Web UI when positive, or on a free port
	// picked just before it binds when AnyPort; zero serves no UI.
	UIPort int
	// CodecEndpoint, when set, is the codec server the Web UI decodes and
	// encodes payloads with (Temporal's remote codec protocol: POST
	// <endpoint>/decode and /encode, from the browser). The browser sends
	// its cookies with those requests (include credentials), so a signed-in
	// operator's session is what authorises a decode. CodecSignInURL is
	// linked from the UI's message when decoding fails.
	CodecEndpoint  string
	CodecSignInURL string
	// Namespace is created at start if missing. Defaults to "default".
	Namespace string
	// Logger receives the server's own log lines (at LogLevel and above).
	Logger *slog.Logger
	// LogLevel filters the server's log lines; the server is chatty at info,
	// so the default is warn.
	LogLevel slog.Level
}

// AnyPort as Options.UIPort serves the Web UI on a free port. Tests use it
// (and FrontendPort 0) so they never race another server for a fixed port.
const AnyPort = -1

// bindAttempts is how many times Start tries to bind the server, each time
// with freshly picked ports.
const bindAttempts = 5

// pickPort returns a port that is free now on ip. A variable so tests can
// hand out a port that another listener holds, as a lost race does.
var pickPort = freePort

// Server is a running embedded Temporal server.
type Server struct {
	server       temporal.Server
	logger       serverLogger
	ui           *uiserver.Server
	uiDone       chan struct{}
	frontendAddr string
	uiAddr       string
	namespace    string
	stopOnce     sync.Once
}

// dynamicConfig tunes the server for a single-process, low-latency stack.
//
// Task queues get one partition instead of four: with a handful of pollers
// in one process, a task that misses a sync match could otherwise wait in a
// partition nobody is polling (measured: one system check in 40 stalled 14 s
// with four partitions).
//
// The transfer and timer queue processors poll at most 20 times a second per
// shard by default, which adds up to 50 ms to every workflow step at low load;
// raised to 1000, a one-activity workflow went from about 100 ms to 23 ms
// median on a 2-core machine. Search-attribute cache refresh on read lets a
// newly registered attribute be used at once.
func dynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		dynamicconfig.MakeKey("history.transferProcessorMaxPollRPS"):            1000,
		dynamicconfig.MakeKey("history.timerProcessorMaxPollRPS"):               1000,
		dynamicconfig.MakeKey("system.forceSearchAttributesCacheRefreshOnRead"): true,
		dynamicconfig.MakeKey("matching.numTaskqueueReadPartitions"):            1,
		dynamicconfig.MakeKey("matching.numTaskqueueWritePartitions"):           1,
	}
}

// Start starts the server and, when asked, the Web UI, and returns once the
// frontend answers health checks.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LogLevel == 0 {
		opts.LogLevel = slog.LevelWarn
	}
	pickFrontend := opts.FrontendPort == 0
	if !pickFrontend {
		if err := checkPortFree(opts.IP, opts.FrontendPort); err != nil {
			return nil, fmt.Errorf("temporal frontend: %w", err)
		}
	}
	if opts.UIPort > 0 {
		if err := checkPortFree(opts.IP, opts.UIPort); err != nil {
			return nil, fmt.Errorf("temporal web ui: %w", err)
		}
	}
	sqlCfg, err := sqliteConfig(opts.DataDir)
	if err != nil {
		return nil, err
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("build namespace %q: %w", opts.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("create namespace %q: %w", opts.Namespace, err)
	}

	// Every port the server binds (each service's gRPC and membership port,
	// and the frontend's when asked for any) is picked free just before the
	// server binds it; another process can take one in between (parallel
	// test packages and other Temporal servers on the machine do), so a
	// failed bind is retried with freshly picked ports for all of them. A
	// frontend port the caller fixed is never changed: when it is the port
	// taken, Start fails at once naming it.
	var (
		srv    temporal.Server
		logger serverLogger
	)
	for attempt := 1; ; attempt++ {
		if pickFrontend {
			if opts.FrontendPort, err = pickPort(opts.IP); err != nil {
				return nil, err
			}
		}
		srv, logger, err = launch(opts, sqlCfg)
		if err == nil {
			break
		}
		if !pickFrontend {
			// A server that failed half-built can keep the frontend's
			// listener open (it is never handed back to be closed): then
			// the fixed port cannot be tried again, and the first failure
			// is the one to report.
			if perr := checkPortFree(opts.IP, opts.FrontendPort); perr != nil {
				return nil, fmt.Errorf("temporal frontend on port %d: %w (then the port stayed held: %v)", opts.FrontendPort, err, perr)
			}
		}
		if attempt == bindAttempts {
			return nil, err
		}
		opts.Logger.Warn("temporal server did not start; retrying with other ports", "attempt", attempt, "err", err)
	}
	s := &Server{
		server:       srv,
		logger:       logger,
		frontendAddr: net.JoinHostPort(opts.IP, strconv.Itoa(opts.FrontendPort)),
		namespace:    opts.Namespace,
	}
	if err := s.waitHealthy(ctx); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	if opts.UIPort > 0 || opts.UIPort == AnyPort {
		if err := s.startUI(ctx, opts); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// launch builds and starts one server. The server reports a failed bind
// through its logger's Fatal, which panics; that panic is returned as an
// error (after stopping what did start).
func launch(opts Options, sqlCfg *config.SQL) (srv temporal.Server, logger serverLogger, err error) {
	cfg, err := serverConfig(opts, sqlCfg)
	if err != nil {
		return nil, logger, err
	}
	logger = newServerLogger(opts.Logger.With("component", "temporal-server"), opts.LogLevel)
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, logger, fmt.Errorf("temporal authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, logger, fmt.Errorf("temporal claim mapper: %w", err)
	}
	// Some listeners are bound while the server is built: a lost bind race
	// panics there too.
	func() {
		defer func() {
			if r := recover(); r != nil {
				logger.stopping.Store(true)
				srv, err = nil, fmt.Errorf("create temporal server: %v", r)
			}
		}()
		srv, err = newServer(cfg, logger, authorizer, claimMapper)
	}()
	if err != nil {
		return nil, logger, err
	}
	defer func() {
		if r := recover(); r != nil {
			logger.stopping.Store(true)
			func() {
				defer func() { _ = recover() }()
				_ = srv.Stop()
			}()
			srv, err = nil, fmt.Errorf("start temporal server: %v", r)
		}
	}()
	if err := srv.Start(); err != nil {
		return nil, logger, fmt.Errorf("start temporal server: %w", err)
	}
	return srv, logger, nil
}

// newServer builds the server with Vigil's options.
func newServer(cfg *config.Config, logger serverLogger, authorizer authorization.Authorizer, claimMapper authorization.ClaimMapper) (temporal.Server, error) {
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicConfig()),
		// Vigil exports its own metrics; the embedded server's would need
		// another port and add nothing for development.
		temporal.WithCustomMetricsHandler(metrics.NoopMetricsHandler),
	)
	if err != nil {
		return nil, fmt.Errorf("create temporal server: %w", err)
	}
	return srv, nil
}

// FrontendAddress is the host:port Temporal clients dial.
func (s *Server) FrontendAddress() string { return s.frontendAddr }

// Namespace is the namespace created at start.
func (s *Server) Namespace() string { return s.namespace }

// UIURL is the Web UI's base URL, or "" when no UI runs.
func (s *Server) UIURL() string {
	if s.uiAddr == "" {
		return ""
	}
	return "http://" + s.uiAddr
}

// Stop stops the Web UI and the server. It is safe to call more than once.
func (s *Server) Stop() error {
	var err error
	s.stopOnce.Do(func() {
		if s.ui != nil {
			s.ui.Stop()
			<-s.uiDone
		}
		s.logger.stopping.Store(true)
		err = s.server.Stop()
	})
	return err
}

func (s *Server) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var lastErr error
	for {
		c, err := client.DialContext(ctx, client.Options{
			HostPort:  s.frontendAddr,
			Namespace: s.namespace,
			Logger:    quietSDKLogger{},
		})
		if err == nil {
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			if err == nil {
				// A namespace written straight into SQLite is visible to the
				// frontend once its namespace cache has loaded it.
				_, err = c.WorkflowService().DescribeNamespace(ctx, describeNamespaceRequest(s.namespace))
			}
			if err == nil {
				// The frontend answers before matching does: after a restart
				// on an existing file, matching waits out the previous
				// process's membership (measured: about 20-30 s), and a
				// workflow started meanwhile sits unpolled.
				_, err = c.WorkflowService().DescribeTaskQueue(ctx, describeTaskQueueRequest(s.namespace))
			}
			c.Close()
			if err == nil {
				return nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal server did not become healthy: %w", errors.Join(ctx.Err(), lastErr))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startUI starts the Web UI. The UI server exits the process when it cannot
// bind, so its port is checked (or, with AnyPort, picked) free right before
// it binds.
func (s *Server) startUI(ctx context.Context, opts Options) error {
	for attempt := 1; opts.UIPort == AnyPort; attempt++ {
		p, err := pickPort(opts.IP)
		if err != nil {
			return fmt.Errorf("temporal web ui: %w", err)
		}
		if err := checkPortFree(opts.IP, p); err == nil {
			opts.UIPort = p
		} else if attempt == bindAttempts {
			return fmt.Errorf("temporal web ui: %w", err)
		}
	}
	if err := checkPortFree(opts.IP, opts.UIPort); err != nil {
		return fmt.Errorf("temporal web ui: %w", err)
	}
	cfg := &uiconfig.Config{
		Host:                opts.IP,
		Port:                opts.UIPort,
		TemporalGRPCAddress: s.frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    opts.Namespace,
		HideLogs:            true,
		DisableNewsFetch:    true,
		RefreshInterval:     0,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		Codec:               uiCodec(opts),
	}
	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(cfg))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		_ = s.ui.Start()
	}()
	s.uiAddr = net.JoinHostPort(opts.IP, strconv.Itoa(opts.UIPort))

	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.UIURL()+"/healthz", nil)
		if err != nil {
			return fmt.Errorf("temporal web ui: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal web ui did not start on %s: %w", s.uiAddr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// uiCodec is the Web UI's codec setting: none without an endpoint.
func uiCodec(opts Options) uiconfig.Codec {
	if opts.CodecEndpoint == "" {
		return uiconfig.Codec{}
	}
	return uiconfig.Codec{
		Endpoint:            opts.CodecEndpoint,
		IncludeCredentials:  true,
		DefaultErrorMessage: "Vigil encrypts workflow payloads. Sign in to Vigil as an admin, on the same host name as this page, to read them.",
		DefaultErrorLink:    opts.CodecSignInURL,
	}
}

// sqliteConfig returns the persistence settings: a WAL-journaled file with a
// single connection (measured about twice as fast as a plain journal, while
// more connections halved throughput), or a shared in-memory database.
func sqliteConfig(dataDir string) (*config.SQL, error) {
	sqlCfg := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{},
		MaxConns:          1,
		MaxIdleConns:      1,
	}
	if dataDir == "" {
		sqlCfg.ConnectAttributes["mode"] = "memory"
		sqlCfg.ConnectAttributes["cache"] = "shared"
		// Shared-cache in-memory databases are process-wide by name, so each
		// server in one process (one per test package) needs its own name.
		sqlCfg.DatabaseName = fmt.Sprintf("vigil-%d-%d", os.Getpid(), time.Now().UnixNano())
		return sqlCfg, nil
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create temporal data dir: %w", err)
	}
	sqlCfg.DatabaseName = filepath.Join(dataDir, "temporal.db")
	sqlCfg.ConnectAttributes["mode"] = "rwc"
	sqlCfg.ConnectAttributes["journal_mode"] = "wal"
	sqlCfg.ConnectAttributes["synchronous"] = "normal"
	if _, err := os.Stat(sqlCfg.DatabaseName); errors.Is(err, os.ErrNotExist) {
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			return nil, fmt.Errorf("create temporal schema: %w", err)
		}
	} else if err := forgetPreviousMembers(sqlCfg.DatabaseName); err != nil {
		return nil, err
	}
	return sqlCfg, nil
}

// forgetPreviousMembers removes the cluster membership rows a previous
// process left in the file. Only one process uses it (the frontend port is
// checked first), so every row is stale; left in place, matching waits for
// them to expire and a restarted `vigil dev` took 50 s to be ready instead
// of a few.
func forgetPreviousMembers(path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("open temporal database: %w", err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.Exec(`DELETE FROM cluster_membership`); err != nil {
		return fmt.Errorf("clear stale temporal membership: %w", err)
	}
	return nil
}

// clusterName is the embedded server's one cluster.
const clusterName = "active"

func serverConfig(opts Options, sqlCfg *config.SQL) (*config.Config, error) {
	services := map[string]config.Service{}
	// Each port is picked free, and different from the others picked here.
	used := map[int]bool{opts.FrontendPort: true}
	pick := func() (int, error) {
		for {
			p, err := pickPort(opts.IP)
			if err != nil {
				return 0, err
			}
			if !used[p] {
				used[p] = true
				return p, nil
			}
		}
	}
	for _, name := range []string{"frontend", "history", "matching", "worker"} {
		grpcPort := opts.FrontendPort
		if name != "frontend" {
			p, err := pick()
			if err != nil {
				return nil, err
			}
			grpcPort = p
		}
		membershipPort, err := pick()
		if err != nil {
			return nil, err
		}
		services[name] = config.Service{RPC: config.RPC{
			GRPCPort:       grpcPort,
			MembershipPort: membershipPort,
			BindOnIP:       opts.IP,
		}}
	}
	frontend := net.JoinHostPort(opts.IP, strconv.Itoa(opts.FrontendPort))
	return &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: opts.IP},
		},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            services,
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: frontend},
	}, nil
}

// freePort picks a port below the kernel's ephemeral range (see netport),
// so no other process's "port 0" listener or connection takes it before the
// server binds it.
func freePort(ip string) (int, error) { return netport.Free(ip) }

func checkPortFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on %s is taken (is another Temporal server or `vigil dev` running?): %w", port, ip, err)
	}
	return l.Close()
}
