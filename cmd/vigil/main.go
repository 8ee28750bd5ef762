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
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/bench"
	"github.com/vigil-health/vigil/internal/config"
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
		return bench.Command(ctx, cfg, args[1:], stdout, stderr)
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
