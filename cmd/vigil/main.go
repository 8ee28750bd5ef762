// Command vigil is Vigil's single binary:
//
//	vigil dev                 the whole stack in one process (embedded Temporal + Web UI, worker, API)
//	vigil temporal            the embedded Temporal server and Web UI alone (for api and worker run apart)
//	vigil api                 the REST API
//	vigil worker              the Temporal worker
//	vigil migrate [up|status] apply or list database migrations
//	vigil healthcheck URL     exit 0 when URL answers 2xx (for container healthchecks)
//	vigil bench incidents     load-test a running Vigil (see -h)
//	vigil bench messages      load-test the messages API of a running Vigil (see -h)
//
// Configuration comes from environment variables; see the README.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/bench"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/temporalclient"
)

const usage = `usage: vigil <command>

commands:
  dev                  run API, worker, embedded Temporal server and Web UI in one process
  temporal             run the embedded Temporal server and Web UI alone (vigil api and vigil worker run beside it)
  api                  run the REST API
  worker               run the Temporal worker
  migrate [up|status]  apply or list database migrations
  healthcheck URL      exit 0 when URL answers 2xx
  bench incidents      drive alerts through a running Vigil's API and report latencies (-h for flags)
  bench messages       create and list messages through a running Vigil's API (-h for flags)
`

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is main with its environment and output passed in, for tests.
func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "healthcheck" {
		return healthcheck(args[1:], stderr)
	}
	switch args[0] {
	case "dev", "temporal", "api", "worker", "migrate", "bench":
	default:
		fmt.Fprintf(stderr, "vigil: unknown command %q\n\n%s", args[0], usage)
		return 2
	}

	cfg, err := config.Load(lookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, "vigil:", err)
		return 2
	}
	logger := app.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)

	// The first SIGINT or SIGTERM cancels the context; every command then
	// stops its parts in order (a start-up step in progress is abandoned). A
	// second signal exits at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	done := make(chan struct{})
	defer close(done)
	go stopOnSignals(sigc, done, cancel, logger, os.Exit)
	if cfg.PprofAddr != "" && args[0] != "migrate" && args[0] != "bench" {
		if err := app.StartProfiler(ctx, cfg.PprofAddr, logger); err != nil {
			logger.Error("vigil "+args[0]+" failed", "err", err)
			return 1
		}
	}

	switch args[0] {
	case "dev":
		err = app.Dev(ctx, cfg, logger, stdout)
	case "temporal":
		err = app.Temporal(ctx, cfg, logger, stdout)
	case "api":
		err = app.API(ctx, cfg, logger)
	case "worker":
		err = app.Worker(ctx, cfg, logger)
	case "migrate":
		err = app.Migrate(ctx, cfg, logger, args[1:], stdout)
	case "bench":
		return benchCommand(ctx, cfg, args[1:], stdout, stderr)
	}
	if err != nil {
		logger.Error("vigil "+args[0]+" failed", "err", err)
		return 1
	}
	return 0
}

// stopOnSignals cancels the process's context on the first signal and calls
// exit with 128+signal on the second; it returns when done closes.
func stopOnSignals(sigc <-chan os.Signal, done <-chan struct{}, cancel context.CancelFunc, logger *slog.Logger, exit func(int)) {
	for n := 0; ; n++ {
		var sig os.Signal
		select {
		case sig = <-sigc:
		case <-done:
			return
		}
		if n == 0 {
			logger.Info("stopping; send the signal again to exit at once", "signal", sig.String())
			cancel()
			continue
		}
		logger.Warn("second signal: exiting at once", "signal", sig.String())
		code := 1
		if s, ok := sig.(syscall.Signal); ok {
			code = 128 + int(s)
		}
		exit(code)
		return
	}
}

// healthcheck GETs a URL and succeeds on 2xx: container images built FROM
// scratch have no curl.
func healthcheck(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: vigil healthcheck URL")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		fmt.Fprintln(stderr, "vigil healthcheck:", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "vigil healthcheck:", err)
		return 1
	}
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintln(stderr, "vigil healthcheck:", resp.Status)
		return 1
	}
	return 0
}

// benchCommand runs `vigil bench incidents|watches|messages|nodes`.
func benchCommand(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	name := ""
	if len(args) > 0 {
		name = args[0]
	}
	var run func(context.Context, config.Config, *benchCmd, []string) int
	switch name {
	case "incidents":
		run = benchIncidents
	case "watches":
		run = benchWatches
	case "messages":
		run = benchMessages
	case "nodes":
		run = benchNodes
	default:
		fmt.Fprintln(stderr, "usage: vigil bench incidents|watches|messages|nodes [flags]")
		return 2
	}
	return run(ctx, cfg, newBenchCmd(name, stdout, stderr), args[1:])
}

// benchCmd is what the bench subcommands share: their flags (with -json),
// how they fail and how they print a report.
type benchCmd struct {
	*flag.FlagSet
	asJSON *bool
	// prefix starts error lines.
	prefix         string
	stdout, stderr io.Writer
}

func newBenchCmd(name string, stdout, stderr io.Writer) *benchCmd {
	fs := flag.NewFlagSet("vigil bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &benchCmd{FlagSet: fs, asJSON: fs.Bool("json", false, "print the report as JSON"),
		prefix: "vigil bench:", stdout: stdout, stderr: stderr}
}

// fail reports err and returns the exit code of a failed run.
func (b *benchCmd) fail(err error) int {
	fmt.Fprintln(b.stderr, b.prefix, err)
	return 1
}

// usageError reports a bad flag value and returns the exit code of a
// usage error.
func (b *benchCmd) usageError(msg string) int {
	fmt.Fprintln(b.stderr, b.prefix, msg)
	return 2
}

// report prints a benchmark's report, or the error that stopped it: as
// indented JSON with -json, else with text.
func report[R any](b *benchCmd, rep R, err error, text func(io.Writer, R)) int {
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
func dialTemporal(ctx context.Context, address, namespace string, dc converter.DataConverter) (client.Client, error) {
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

// latencyRow is a bench.Latency as the n, p50, p99 and max columns of a
// report table.
func latencyRow(l bench.Latency) []any { return []any{l.N, l.P50, l.P99, l.Max} }

// benchIncidents runs `vigil bench incidents`.
func benchIncidents(ctx context.Context, cfg config.Config, b *benchCmd, args []string) int {
	o := bench.IncidentsOptions{DatabaseURL: cfg.DatabaseURL.Reveal()}
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
	if err := b.Parse(args); err != nil {
		return 2
	}
	if o.Rate <= 0 || o.SustainRate <= 0 || o.DupWorkers < 1 || o.DupKeys < 1 {
		return b.usageError("-rate, -sustain-rate, -dup-workers and -dup-keys must be positive")
	}
	if o.EscalationIncidents < 0 || o.EscalationWait < time.Second || o.EscalationWait > time.Hour {
		return b.usageError("-escalation-incidents must be 0 or more and -escalation-wait from 1s to 1h")
	}
	rep, err := bench.Incidents(ctx, o, b.stderr)
	return report(b, rep, err, func(w io.Writer, rep *bench.IncidentsReport) {
		args := []any{rep.Rate}
		for _, l := range []bench.Latency{rep.Accepted, rep.AlertToAssigned, rep.AlertToFirstNotify, rep.Reference, rep.MergeLatency} {
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
	})
}

// benchWatches runs `vigil bench watches`.
func benchWatches(ctx context.Context, cfg config.Config, b *benchCmd, args []string) int {
	o := bench.WatchesOptions{DatabaseURL: cfg.DatabaseURL.Reveal()}
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
	rep, err := bench.Watches(ctx, o, b.stderr)
	return report(b, rep, err, func(w io.Writer, rep *bench.WatchesReport) {
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

// benchMessages runs `vigil bench messages`. Its tokens come from -token,
// else are minted with the configured signing secret (VIGIL_JWT_SECRET or
// VIGIL_JWT_RSA_KEY_FILE, the same as the running Vigil's), else from an
// administrator's login and POST /v1/auth/system-token.
func benchMessages(ctx context.Context, cfg config.Config, b *benchCmd, args []string) int {
	o := bench.MessagesOptions{DatabaseURL: cfg.DatabaseURL.Reveal()}
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
		signer, err := benchSigner(cfg)
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
		} else if o.Token, err = bench.SystemToken(ctx, o.BaseURL, *login, *password); err != nil {
			return b.fail(err)
		}
	}
	rep, err := bench.Messages(ctx, o, b.stderr)
	return report(b, rep, err, func(w io.Writer, rep *bench.MessagesReport) {
		args := []any{rep.CreateOffered}
		for _, l := range []bench.Latency{rep.Create, rep.FirstPage, rep.FirstPagePatient, rep.ActiveFirstPage} {
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

// benchSigner is the running Vigil's token signer when the configuration
// holds its key (nil otherwise).
func benchSigner(cfg config.Config) (*auth.Signer, error) {
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
