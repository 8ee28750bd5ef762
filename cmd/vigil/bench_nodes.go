package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/bench"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/node/brokersim"
)

// benchNodes runs `vigil bench nodes`: it starts its own stack (embedded
// Temporal, worker, API) on a scratch database, with a simulated broker
// fleet, and measures fleet scans and the heatmap.
func benchNodes(ctx context.Context, cfg config.Config, b *benchCmd, args []string) int {
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
	db, err := database.Open(ctx, *dsn)
	if err != nil {
		return b.fail(err)
	}
	defer func() { _ = db.Close() }()
	tc, err := dialTemporal(ctx, stack.TemporalAddress, stack.Namespace, stack.DataConverter)
	if err != nil {
		return b.fail(err)
	}
	defer tc.Close()

	rep, err := bench.Nodes(ctx, bench.NodesOptions{DB: db, Temporal: tc, TaskQueue: cfg.TaskQueue, Nodes: *nodes, Scans: *scans}, b.stderr)
	return report(b, rep, err, func(w io.Writer, rep *bench.NodesReport) {
		fmt.Fprintf(w, "\nfleet of %d simulated nodes\n", rep.Nodes)
		fmt.Fprintln(w, "scan  fetch+signal s  recorded s  rows written  rows/s")
		for i, s := range rep.Scans {
			fmt.Fprintf(w, "%4d  %14.2f  %10.2f  %12d  %6.0f\n", i+1, s.FetchSeconds, s.Seconds, s.RowsWritten, s.RowsPerSec)
		}
		fmt.Fprintf(w, "heatmap %d nodes x 42 days: query %.0f ms, PNG %.0f ms, SVG %.0f ms\n", rep.HeatmapRows, rep.HeatmapQuery, rep.HeatmapPNG, rep.HeatmapSVG)
	})
}

// freePort asks the kernel for a free TCP port on the loopback interface.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
