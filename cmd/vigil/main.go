// Command vigil is Vigil's single binary:
//
//	vigil dev                 the whole stack in one process (embedded Temporal + Web UI, worker, API)
//	vigil api                 the REST API
//	vigil worker              the Temporal worker
//	vigil migrate [up|status] apply or list database migrations
//	vigil healthcheck URL     exit 0 when URL answers 2xx (for container healthchecks)
//
// Configuration comes from environment variables; see the README.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/config"
)

const usage = `usage: vigil <command>

commands:
  dev                  run API, worker, embedded Temporal server and Web UI in one process
  api                  run the REST API
  worker               run the Temporal worker
  migrate [up|status]  apply or list database migrations
  healthcheck URL      exit 0 when URL answers 2xx
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
	case "dev", "api", "worker", "migrate":
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
