// Command vigil is Vigil's single binary:
//
//	vigil dev                 the whole stack in one process (embedded Temporal + Web UI, worker, API)
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

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/bench"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/temporalclient"
)

const usage = `usage: vigil <command>

commands:
  dev                  run API, worker, embedded Temporal server and Web UI in one process
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
	case "dev", "api", "worker", "migrate", "bench":
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

	// SIGINT and SIGTERM cancel the context; every command then stops its
	// parts in order. A second signal kills the process the default way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	switch args[0] {
	case "dev":
		err = app.Dev(ctx, cfg, logger, stdout)
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

// benchCommand runs `vigil bench incidents`.
func benchCommand(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "nodes" {
		return benchNodes(ctx, cfg, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "watches" {
		return benchWatches(ctx, cfg, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "messages" {
		return benchMessages(ctx, cfg, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "incidents" {
		fmt.Fprintln(stderr, "usage: vigil bench incidents|watches|messages|nodes [flags]")
		return 2
	}
	fs := flag.NewFlagSet("vigil bench incidents", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := bench.IncidentsOptions{DatabaseURL: cfg.DatabaseURL.Reveal()}
	fs.StringVar(&o.BaseURL, "url", "http://localhost:8080", "the API under test")
	fs.Float64Var(&o.Rate, "rate", 10, "alerts per second in the latency phase")
	fs.Float64Var(&o.SustainRate, "sustain-rate", 25, "alerts per second in the throughput phase")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "length of the latency and throughput phases")
	fs.IntVar(&o.DupWorkers, "dup-workers", 32, "concurrent senders of duplicate alerts")
	fs.IntVar(&o.DupKeys, "dup-keys", 4, "open incidents the duplicates merge into")
	fs.DurationVar(&o.DupDuration, "dup-duration", 10*time.Second, "length of the duplicate phase")
	fs.DurationVar(&o.Settle, "settle", 5*time.Second, "wait after a phase for workflows to catch up")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if o.Rate <= 0 || o.SustainRate <= 0 || o.DupWorkers < 1 || o.DupKeys < 1 {
		fmt.Fprintln(stderr, "vigil bench: -rate, -sustain-rate, -dup-workers and -dup-keys must be positive")
		return 2
	}
	rep, err := bench.Incidents(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vigil bench:", err)
		return 1
	}
	if *asJSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, `
                                    n      p50 ms    p99 ms    max ms
alert accepted (HTTP) @%4.0f/s  %6d  %9.1f %9.1f %9.1f
alert -> assigned              %6d  %9.1f %9.1f %9.1f
alert -> first notification    %6d  %9.1f %9.1f %9.1f
reference: SystemCheck (HTTP)  %6d  %9.1f %9.1f %9.1f
duplicate merge (HTTP)         %6d  %9.1f %9.1f %9.1f

sustained: offered %.0f/s, created %d, assigned %d -> %.1f incidents/s
merged duplicates: %d in %s -> %.0f/s
errors: %d
`, rep.Rate,
		rep.Accepted.N, rep.Accepted.P50, rep.Accepted.P99, rep.Accepted.Max,
		rep.AlertToAssigned.N, rep.AlertToAssigned.P50, rep.AlertToAssigned.P99, rep.AlertToAssigned.Max,
		rep.AlertToFirstNotify.N, rep.AlertToFirstNotify.P50, rep.AlertToFirstNotify.P99, rep.AlertToFirstNotify.Max,
		rep.Reference.N, rep.Reference.P50, rep.Reference.P99, rep.Reference.Max,
		rep.MergeLatency.N, rep.MergeLatency.P50, rep.MergeLatency.P99, rep.MergeLatency.Max,
		rep.SustainRate, rep.SustainCreated, rep.SustainAssigned, rep.SustainPerSecond,
		rep.Merged, o.DupDuration, rep.MergedPerSecond, rep.Errors)
	return 0
}

// benchWatches runs `vigil bench watches`.
func benchWatches(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil bench watches", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := bench.WatchesOptions{DatabaseURL: cfg.DatabaseURL.Reveal()}
	fs.StringVar(&o.BaseURL, "url", "http://localhost:8080", "the API under test")
	fs.StringVar(&o.Login, "login", "c01", "a charge nurse's login")
	fs.StringVar(&o.Password, "password", config.DefaultDemoPassword, "their password")
	fs.IntVar(&o.Watches, "watches", 1000, "how many watches")
	fs.DurationVar(&o.Interval, "interval", time.Minute, "each watch's interval")
	fs.Float64Var(&o.CreateRate, "create-rate", 50, "watches created per second")
	fs.DurationVar(&o.Measure, "measure", 2*time.Minute, "measurement window after one interval of settling")
	fs.IntVar(&o.PID, "pid", 0, "the vigil process to sample (0: find `vigil dev`)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	tc, err := temporalclient.Dial(ctx, cfg.TemporalAddress, cfg.TemporalNamespace, app.NewLogger(io.Discard, "text", slog.LevelError))
	if err != nil {
		fmt.Fprintln(stderr, "vigil bench:", err)
		return 1
	}
	defer tc.Close()
	o.Temporal = tc
	rep, err := bench.Watches(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vigil bench:", err)
		return 1
	}
	if *asJSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, `
watches %d at %s: created in %.1f s (%d errors)
polls measured %d (%.1f/s): lag p50 %.1f ms, p99 %.1f ms, max %.1f ms
snapshot rows %.1f/s
vigil process: %.0f%% of one core, RSS %.0f MiB
history: %.1f events per poll -> about %d events when a watch continues as new (every 500 polls)
`, rep.Watches, rep.Interval, rep.CreateSeconds, rep.CreateErrors, rep.Polls, rep.PollsPerSecond,
		rep.PollLag.P50, rep.PollLag.P99, rep.PollLag.Max, rep.SnapshotRowsPerS, rep.CPUPercent, rep.RSSMiB,
		rep.EventsPerPoll, rep.HistoryAtCAN)
	return 0
}

// benchMessages runs `vigil bench messages`. Its tokens come from -token,
// else are minted with the configured signing secret (VIGIL_JWT_SECRET or
// VIGIL_JWT_RSA_KEY_FILE, the same as the running Vigil's), else from an
// administrator's login and POST /v1/auth/system-token.
func benchMessages(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil bench messages", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := bench.MessagesOptions{DatabaseURL: cfg.DatabaseURL.Reveal()}
	fs.StringVar(&o.BaseURL, "url", "http://localhost:8080", "the API under test")
	fs.StringVar(&o.Token, "token", "", "a system token (default: minted with VIGIL_JWT_SECRET, else from -login)")
	login := fs.String("login", "a01", "an administrator's login, when there is neither -token nor a signing secret")
	password := fs.String("password", config.DefaultDemoPassword, "their password")
	fs.Float64Var(&o.Rate, "rate", 500, "messages created per second")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "length of the create phase")
	fs.IntVar(&o.Messages, "messages", 10000, "messages of the listed party")
	fs.IntVar(&o.Reads, "reads", 200, "first-page reads")
	fs.BoolVar(&o.Keep, "keep", false, "keep the run's messages")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.Rate <= 0 || o.Messages < 1 || o.Reads < 1 {
		fmt.Fprintln(stderr, "vigil bench: -rate, -messages and -reads must be positive")
		return 2
	}
	if o.Token == "" {
		signer, err := benchSigner(cfg)
		if err != nil {
			fmt.Fprintln(stderr, "vigil bench:", err)
			return 1
		}
		if signer != nil {
			o.PatientID = "BENCH-PATIENT-" + strconv.FormatInt(time.Now().Unix(), 36)
			sys, _, err1 := signer.Issue(auth.Claims{Subject: "vigil-bench", SubjectType: auth.SubjectSystem, Scopes: []string{"*"}, TokenType: auth.TokenAccess}, time.Hour)
			pat, _, err2 := signer.Issue(auth.Claims{Subject: o.PatientID, SubjectType: auth.SubjectPatient,
				Scopes: []string{"read:message", "write:message"}, TokenType: auth.TokenAccess}, time.Hour)
			if err := errors.Join(err1, err2); err != nil {
				fmt.Fprintln(stderr, "vigil bench:", err)
				return 1
			}
			o.Token, o.PatientToken = sys, pat
		} else if o.Token, err = bench.SystemToken(ctx, o.BaseURL, *login, *password); err != nil {
			fmt.Fprintln(stderr, "vigil bench:", err)
			return 1
		}
	}
	rep, err := bench.Messages(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vigil bench:", err)
		return 1
	}
	if *asJSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, `
                                          n      p50 ms    p99 ms    max ms
create message (HTTP) @%4.0f/s       %6d  %9.1f %9.1f %9.1f
party first page (system)            %6d  %9.1f %9.1f %9.1f
party first page (the patient)       %6d  %9.1f %9.1f %9.1f
party active first page (system)     %6d  %9.1f %9.1f %9.1f

create: offered %.0f/s, achieved %.1f/s, errors %d
party of %d messages: every page at 500/page %.0f ms (%d pages, %d messages), at 50/page %.0f ms (%d pages); list errors %d
`, rep.CreateOffered,
		rep.Create.N, rep.Create.P50, rep.Create.P99, rep.Create.Max,
		rep.FirstPage.N, rep.FirstPage.P50, rep.FirstPage.P99, rep.FirstPage.Max,
		rep.FirstPagePatient.N, rep.FirstPagePatient.P50, rep.FirstPagePatient.P99, rep.FirstPagePatient.Max,
		rep.ActiveFirstPage.N, rep.ActiveFirstPage.P50, rep.ActiveFirstPage.P99, rep.ActiveFirstPage.Max,
		rep.CreateOffered, rep.CreateAchieved, rep.CreateErrors,
		rep.Messages, rep.AllPages500Ms, rep.AllPages500Count, rep.AllPagesListed, rep.AllPages50Ms, rep.AllPages50Count, rep.ListErrors)
	return 0
}

// benchSigner is the running Vigil's token signer when the configuration
// holds its key (nil otherwise).
func benchSigner(cfg config.Config) (*auth.Signer, error) {
	sc := auth.SignerConfig{Issuer: "vigil", HMACSecret: []byte(cfg.JWTSecret.Reveal())}
	if cfg.JWTRSAKeyFile != "" {
		pem, err := os.ReadFile(cfg.JWTRSAKeyFile)
		if err != nil {
			return nil, fmt.Errorf("VIGIL_JWT_RSA_KEY_FILE: %w", err)
		}
		sc.RSAPrivateKeyPEM = pem
	} else if len(sc.HMACSecret) == 0 {
		return nil, nil
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
