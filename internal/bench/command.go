// Command-line front end of the benchmarks: `vigil bench` parses its flags
// here, runs a benchmark and prints its report.

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	temporalsdk "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/netport"
	"github.com/vigil-health/vigil/internal/node/brokersim"
	"github.com/vigil-health/vigil/internal/temporalclient"
)

// Command runs `vigil bench incidents|watches|messages|nodes`.
func Command(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	name := ""
	if len(args) > 0 {
		name = args[0]
	}
	var run func(context.Context, config.Config, *command, []string) int
	switch name {
	case "incidents":
		run = runIncidents
	case "watches":
		run = runWatches
	case "messages":
		run = runMessages
	case "nodes":
		run = runNodes
	default:
		fmt.Fprintln(stderr, "usage: vigil bench incidents|watches|messages|nodes [flags]")
		return 2
	}
	b := newCommand(name, stdout, stderr)
	defer b.closeDB()
	return run(ctx, cfg, b, args[1:])
}

// command is what the bench subcommands share: their flags (with -json),
// how they fail and how they print a report.
type command struct {
	*flag.FlagSet
	asJSON *bool
	// prefix starts error lines.
	prefix         string
	stdout, stderr io.Writer
	// db is the database of the Vigil under test, once opened.
	db *sqlx.DB
}

// openDB sets *db to the database of the Vigil under test (dsn), opened
// on first use; Command closes it when the benchmark ends.
func (b *command) openDB(ctx context.Context, dsn string, db **sqlx.DB) error {
	if b.db == nil {
		opened, err := database.Open(ctx, dsn)
		if err != nil {
			return err
		}
		b.db = opened
	}
	*db = b.db
	return nil
}

func (b *command) closeDB() {
	if b.db != nil {
		_ = b.db.Close()
	}
}

func newCommand(name string, stdout, stderr io.Writer) *command {
	fs := flag.NewFlagSet("vigil bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &command{FlagSet: fs, asJSON: fs.Bool("json", false, "print the report as JSON"),
		prefix: "vigil bench:", stdout: stdout, stderr: stderr}
}

// fail reports err and returns the exit code of a failed run.
func (b *command) fail(err error) int {
	fmt.Fprintln(b.stderr, b.prefix, err)
	return 1
}

// usageError reports a bad flag value and returns the exit code of a
// usage error.
func (b *command) usageError(msg string) int {
	fmt.Fprintln(b.stderr, b.prefix, msg)
	return 2
}

// report prints a benchmark's report, or the error that stopped it: as
// indented JSON with -json, else with text.
func report[R any](b *command, rep R, err error, text func(io.Writer, R)) int {
	if err != nil {
		return b.fail(err)
	}
	if *b.asJSON {
		return printJSON(b.stdout, rep)
	}
	text(b.stdout, rep)
	return 0
}

// dialTemporal connects a benchmark to Temporal with the data converter of
// the stack under test (its payloads are encrypted), logging only errors (to
// nowhere: the benchmark reports its own).
func dialTemporal(ctx context.Context, address, namespace string, dc converter.DataConverter) (temporalsdk.Client, error) {
	return temporalclient.Dial(ctx, address, namespace, app.NewLogger(io.Discard, "text", slog.LevelError),
		temporalclient.WithDataConverter(dc))
}

// devDataConverter is the data converter of the `vigil dev` a benchmark
// runs against: VIGIL_PAYLOAD_KEYS, else the dev key in VIGIL_DEV_DATA_DIR.
func devDataConverter(cfg config.Config) (converter.DataConverter, error) {
	codec, err := app.PayloadCodec(cfg, true, app.NewLogger(io.Discard, "text", slog.LevelError))
	if err != nil {
		return nil, err
	}
	return codec.DataConverter(), nil
}

// latencyRow is a Latency as the n, p50, p99 and max columns of a
// report table.
func latencyRow(l Latency) []any { return []any{l.N, l.P50, l.P99, l.Max} }

// runIncidents runs `vigil bench incidents`.
func runIncidents(ctx context.Context, cfg config.Config, b *command, args []string) int {
	var o IncidentsOptions
	b.StringVar(&o.BaseURL, "url", "http://localhost:8080", "the API under test")
	b.Float64Var(&o.Rate, "rate", 10, "alerts per second in the latency phase")
	b.Float64Var(&o.SustainRate, "sustain-rate", 25, "alerts per second in the throughput phase")
	b.StringVar(&o.Login, "login", "a01", "a staff login for the reference phase's system checks")
	b.StringVar(&o.Password, "password", config.DefaultDemoPassword, "their password")
	b.DurationVar(&o.Duration, "duration", 30*time.Second, "length of the latency and throughput phases")
	b.IntVar(&o.DupWorkers, "dup-workers", 32, "concurrent senders of duplicate alerts")
	b.IntVar(&o.DupKeys, "dup-keys", 4, "open incidents the duplicates merge into")
	b.DurationVar(&o.DupDuration, "dup-duration", 10*time.Second, "length of the duplicate phase")
	b.DurationVar(&o.Settle, "settle", 5*time.Second, "wait after a phase for workflows to catch up")
	b.IntVar(&o.EscalationIncidents, "escalation-incidents", 500, "unacknowledged incidents whose escalation step falls due at once (0 skips the phase)")
	b.DurationVar(&o.EscalationWait, "escalation-wait", 30*time.Second, "shortest wait before that step (whole seconds)")
	b.DurationVar(&o.CeilingDuration, "ceiling-duration", 10*time.Second, "length of each ceiling phase: the bare SystemCheck, then new incidents, each at its maximum (0 skips them)")
	b.IntVar(&o.CeilingConcurrency, "ceiling-concurrency", 50, "requests in flight in the ceiling phases")
	temporalAddr := b.String("temporal", cfg.TemporalAddress, "the stack's Temporal, to count the run's workflow-task time-outs (empty skips)")
	if err := b.Parse(args); err != nil {
		return 2
	}
	if o.CeilingDuration < 0 || o.CeilingConcurrency < 1 {
		return b.usageError("-ceiling-duration must be 0 or more and -ceiling-concurrency positive")
	}
	if *temporalAddr != "" {
		// Counting time-outs reads event types only, never payloads: without
		// the stack's payload key the default converter serves.
		dc, err := devDataConverter(cfg)
		if err != nil {
			dc = nil
		}
		tc, err := dialTemporal(ctx, *temporalAddr, cfg.TemporalNamespace, dc)
		if err != nil {
			fmt.Fprintf(b.stderr, "workflow tasks: %v (time-outs not counted)\n", err)
		} else {
			defer tc.Close()
			o.Temporal, o.Namespace = tc, cfg.TemporalNamespace
		}
	}
	if o.Rate <= 0 || o.SustainRate <= 0 || o.DupWorkers < 1 || o.DupKeys < 1 {
		return b.usageError("-rate, -sustain-rate, -dup-workers and -dup-keys must be positive")
	}
	if o.EscalationIncidents < 0 || o.EscalationWait < time.Second || o.EscalationWait > time.Hour {
		return b.usageError("-escalation-incidents must be 0 or more and -escalation-wait from 1s to 1h")
	}
	if err := b.openDB(ctx, cfg.DatabaseURL.Reveal(), &o.DB); err != nil {
		return b.fail(err)
	}
	rep, err := Incidents(ctx, o, b.stderr)
	return report(b, rep, err, func(w io.Writer, rep *IncidentsReport) {
		args := []any{rep.Rate}
		for _, l := range []Latency{rep.Accepted, rep.AlertToAssigned, rep.AlertToFirstNotify, rep.Reference, rep.MergeLatency} {
			args = append(args, latencyRow(l)...)
		}
		args = append(args, rep.SustainRate, rep.SustainCreated, rep.SustainAssigned, rep.SustainPerSecond,
			rep.Merged, o.DupDuration, rep.MergedPerSecond, rep.Errors)
		fmt.Fprintf(w, `
                                    n      p50 ms    p99 ms    max ms
alert accepted (HTTP) @%4.0f/s  %6d  %9.1f %9.1f %9.1f
alert -> assigned              %6d  %9.1f %9.1f %9.1f
alert -> first notification    %6d  %9.1f %9.1f %9.1f
reference: SystemCheck (HTTP)  %6d  %9.1f %9.1f %9.1f
duplicate merge (HTTP)         %6d  %9.1f %9.1f %9.1f

sustained: offered %.0f/s, created %d, assigned %d -> %.1f incidents/s
merged duplicates: %d in %s -> %.0f/s
errors: %d
`, args...)
		if e := rep.Escalation; e != nil {
			fmt.Fprintf(w, `
escalation page lateness       %6d  %9.1f %9.1f %9.1f
escalation: %d incidents opened in %.1f s, steps due within %.0f ms, %d of %d pages sent, %d new alerts at %.0f/s meanwhile, errors %d
`, append(latencyRow(e.Lateness), e.Incidents, e.OpenSeconds, e.DueSpreadMs, e.Sent, e.Due,
				e.BackgroundAlerts, e.BackgroundRate, e.Errors)...)
		}
		if cr := rep.Ceiling; cr != nil {
			fmt.Fprintf(w, `
ceiling (%d in flight, %.0f s each): bare SystemCheck %.1f/s (errors %d); incidents assigned and paged %.1f/s (%d of %d created, errors %d) -> %.0f %% of bare
`, cr.Concurrency, cr.Seconds, cr.SystemChecksPerSecond, cr.SystemCheckErrors, cr.IncidentsPerSecond,
				cr.IncidentsPaged, cr.IncidentsCreated, cr.IncidentErrors, 100*cr.Ratio)
		}
		if rep.WorkflowTaskTimeouts >= 0 {
			fmt.Fprintf(w, "workflow-task time-outs: %d in %d workflows\n", rep.WorkflowTaskTimeouts, rep.Workflows)
		}
	})
}

// runWatches runs `vigil bench watches`.
func runWatches(ctx context.Context, cfg config.Config, b *command, args []string) int {
	var o WatchesOptions
	b.StringVar(&o.BaseURL, "url", "http://localhost:8080", "the API under test")
	b.StringVar(&o.Login, "login", "c01", "a charge nurse's login")
	b.StringVar(&o.Password, "password", config.DefaultDemoPassword, "their password")
	b.IntVar(&o.Watches, "watches", 1000, "how many watches")
	b.DurationVar(&o.Interval, "interval", time.Minute, "each watch's interval")
	b.Float64Var(&o.CreateRate, "create-rate", 50, "watches created per second")
	b.DurationVar(&o.Measure, "measure", 2*time.Minute, "measurement window after one interval of settling")
	b.IntVar(&o.PID, "pid", 0, "the vigil process to sample (0: find `vigil dev`)")
	if err := b.Parse(args); err != nil {
		return 2
	}
	dc, err := devDataConverter(cfg)
	if err != nil {
		return b.fail(err)
	}
	tc, err := dialTemporal(ctx, cfg.TemporalAddress, cfg.TemporalNamespace, dc)
	if err != nil {
		return b.fail(err)
	}
	defer tc.Close()
	o.Temporal = tc
	if err := b.openDB(ctx, cfg.DatabaseURL.Reveal(), &o.DB); err != nil {
		return b.fail(err)
	}
	rep, err := Watches(ctx, o, b.stderr)
	return report(b, rep, err, func(w io.Writer, rep *WatchesReport) {
		fmt.Fprintf(w, `
watches %d at %s: created in %.1f s (%d errors)
polls measured %d (%.1f/s): lag p50 %.1f ms, p99 %.1f ms, max %.1f ms
snapshot rows %.1f/s
vigil process: %.0f%% of one core, RSS %.0f MiB
history: %.1f events per poll -> about %d events when a watch continues as new (every 500 polls)
`, rep.Watches, rep.Interval, rep.CreateSeconds, rep.CreateErrors, rep.Polls, rep.PollsPerSecond,
			rep.PollLag.P50, rep.PollLag.P99, rep.PollLag.Max, rep.SnapshotRowsPerS, rep.CPUPercent, rep.RSSMiB,
			rep.EventsPerPoll, rep.HistoryAtCAN)
	})
}

// runMessages runs `vigil bench messages`. Its tokens come from -token,
// else are minted with the configured signing secret (VIGIL_JWT_SECRET or
// VIGIL_JWT_RSA_KEY_FILE, the same as the running Vigil's), else from an
// administrator's login and POST /v1/auth/system-token.
func runMessages(ctx context.Context, cfg config.Config, b *command, args []string) int {
	var o MessagesOptions
	b.StringVar(&o.BaseURL, "url", "http://localhost:8080", "the API under test")
	b.StringVar(&o.Token, "token", "", "a system token (default: minted with VIGIL_JWT_SECRET, else from -login)")
	login := b.String("login", "a01", "an administrator's login, when there is neither -token nor a signing secret")
	password := b.String("password", config.DefaultDemoPassword, "their password")
	b.Float64Var(&o.Rate, "rate", 500, "messages created per second")
	b.DurationVar(&o.Duration, "duration", 20*time.Second, "length of the create phase")
	b.IntVar(&o.Messages, "messages", 10000, "messages of the listed party")
	b.IntVar(&o.Reads, "reads", 200, "first-page reads")
	b.BoolVar(&o.Keep, "keep", false, "keep the run's messages")
	if err := b.Parse(args); err != nil {
		return 2
	}
	if o.Rate <= 0 || o.Messages < 1 || o.Reads < 1 {
		return b.usageError("-rate, -messages and -reads must be positive")
	}
	if o.Token == "" {
		signer, err := signerOf(cfg)
		if err != nil {
			return b.fail(err)
		}
		if signer != nil {
			o.PatientID = "BENCH-PATIENT-" + strconv.FormatInt(time.Now().Unix(), 36)
			sys, _, err1 := signer.Issue(auth.Claims{Subject: "vigil-bench", SubjectType: auth.SubjectSystem, Scopes: []string{"*"}, TokenType: auth.TokenAccess}, time.Hour)
			pat, _, err2 := signer.Issue(auth.Claims{Subject: o.PatientID, SubjectType: auth.SubjectPatient,
				Scopes: []string{"read:message", "write:message"}, TokenType: auth.TokenAccess}, time.Hour)
			if err := errors.Join(err1, err2); err != nil {
				return b.fail(err)
			}
			o.Token, o.PatientToken = sys, pat
		} else if o.Token, err = SystemToken(ctx, o.BaseURL, *login, *password); err != nil {
			return b.fail(err)
		}
	}
	if err := b.openDB(ctx, cfg.DatabaseURL.Reveal(), &o.DB); err != nil {
		return b.fail(err)
	}
	rep, err := Messages(ctx, o, b.stderr)
	return report(b, rep, err, func(w io.Writer, rep *MessagesReport) {
		args := []any{rep.CreateOffered}
		for _, l := range []Latency{rep.Create, rep.FirstPage, rep.FirstPagePatient, rep.ActiveFirstPage} {
			args = append(args, latencyRow(l)...)
		}
		args = append(args, rep.CreateOffered, rep.CreateAchieved, rep.CreateErrors,
			rep.Messages, rep.AllPages500Ms, rep.AllPages500Count, rep.AllPagesListed, rep.AllPages50Ms, rep.AllPages50Count, rep.ListErrors)
		fmt.Fprintf(w, `
                                          n      p50 ms    p99 ms    max ms
create message (HTTP) @%4.0f/s       %6d  %9.1f %9.1f %9.1f
party first page (system)            %6d  %9.1f %9.1f %9.1f
party first page (the patient)       %6d  %9.1f %9.1f %9.1f
party active first page (system)     %6d  %9.1f %9.1f %9.1f

create: offered %.0f/s, achieved %.1f/s, errors %d
party of %d messages: every page at 500/page %.0f ms (%d pages, %d messages), at 50/page %.0f ms (%d pages); list errors %d
`, args...)
	})
}

// signerOf is the running Vigil's token signer when the configuration
// holds its key (nil otherwise).
func signerOf(cfg config.Config) (*auth.Signer, error) {
	sc, ok, err := app.SignerConfig(cfg)
	if err != nil || !ok {
		return nil, err
	}
	return auth.NewSigner(sc)
}

// printJSON prints a benchmark report as indented JSON.
func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

// runNodes runs `vigil bench nodes`: it starts its own stack (embedded
// Temporal, worker, API) on a scratch database, with a simulated broker
// fleet, and measures fleet scans and the heatmap.
func runNodes(ctx context.Context, cfg config.Config, b *command, args []string) int {
	b.prefix = "vigil bench nodes:"
	nodes := b.Int("nodes", 500, "simulated broker nodes")
	scans := b.Int("scans", 3, "fleet scans to measure (the first starts every node workflow)")
	dsn := b.String("database-url", "postgres://postgres@127.0.0.1:5432/vigil_bench_nodes?sslmode=disable", "a scratch database (dropped and re-created)")
	if err := b.Parse(args); err != nil {
		return 2
	}
	if *nodes < 1 || *scans < 1 {
		return b.usageError("-nodes and -scans must be positive")
	}

	sim := brokersim.New(brokersim.Options{})
	if _, err := sim.AddFleet(*nodes, 1); err != nil {
		return b.fail(err)
	}
	simURL, stopSim, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return b.fail(err)
	}
	defer stopSim()

	if err := database.Drop(ctx, *dsn); err != nil {
		return b.fail(err)
	}
	dataDir, err := os.MkdirTemp("", "vigil-bench-nodes-")
	if err != nil {
		return b.fail(err)
	}
	defer func() { _ = os.RemoveAll(dataDir) }()
	cfg.DatabaseURL = config.DSN(*dsn)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.TemporalAddress = "127.0.0.1:" + strconv.Itoa(freePort())
	cfg.Dev.UIPort = freePort()
	cfg.Dev.DataDir = dataDir
	cfg.Dev.Demo = false
	cfg.BrokerURL, cfg.BrokerAPIKey = simURL, config.Secret(brokersim.DefaultAdminKey)
	cfg.CurrentDWHVersion = brokersim.CurrentDWHVersion
	logger := app.NewLogger(b.stderr, "text", slog.LevelWarn)
	stack, err := app.StartDev(ctx, cfg, logger)
	if err != nil {
		return b.fail(err)
	}
	defer stack.Stop()
	var db *sqlx.DB
	if err := b.openDB(ctx, *dsn, &db); err != nil {
		return b.fail(err)
	}
	tc, err := dialTemporal(ctx, stack.TemporalAddress, stack.Namespace, stack.DataConverter)
	if err != nil {
		return b.fail(err)
	}
	defer tc.Close()

	rep, err := Nodes(ctx, NodesOptions{DB: db, Temporal: tc, TaskQueue: cfg.TaskQueue, Nodes: *nodes, Scans: *scans}, b.stderr)
	return report(b, rep, err, func(w io.Writer, rep *NodesReport) {
		fmt.Fprintf(w, "\nfleet of %d simulated nodes\n", rep.Nodes)
		fmt.Fprintln(w, "scan  fetch+signal s  recorded s  rows written  rows/s")
		for i, s := range rep.Scans {
			fmt.Fprintf(w, "%4d  %14.2f  %10.2f  %12d  %6.0f\n", i+1, s.FetchSeconds, s.Seconds, s.RowsWritten, s.RowsPerSec)
		}
		fmt.Fprintf(w, "heatmap %d nodes x 42 days: query %.0f ms, PNG %.0f ms, SVG %.0f ms\n", rep.HeatmapRows, rep.HeatmapQuery, rep.HeatmapPNG, rep.HeatmapSVG)
	})
}

// freePort is a free TCP port on the loopback interface (0 when there is
// none).
func freePort() int {
	port, _ := netport.Free("127.0.0.1")
	return port
}
