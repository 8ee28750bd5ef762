package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	temporalclient "go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/internal/watch/directory/directorysim"
	"github.com/vigil-health/vigil/workflows"
)

// WatchesOptions configures `vigil bench watches`.
type WatchesOptions struct {
	BaseURL string
	// DB is its Postgres (for poll lags and snapshot counts).
	DB *sqlx.DB
	// Temporal is a client of the same server, to read history lengths.
	Temporal temporalclient.Client
	// Login and Password are a charge nurse's (watches need charge access).
	Login, Password string
	Watches         int
	Interval        time.Duration
	// CreateRate is how many watches a second are created.
	CreateRate float64
	// Measure is how long to measure after every watch exists and has had
	// one interval to settle.
	Measure time.Duration
	// PID is the Vigil process to sample (0: find `vigil dev`).
	PID int
}

// WatchesReport is what `vigil bench watches` measured.
type WatchesReport struct {
	Watches          int     `json:"watches"`
	Interval         string  `json:"interval"`
	CreateSeconds    float64 `json:"create_seconds"`
	CreateErrors     int     `json:"create_errors"`
	Polls            int     `json:"polls_measured"`
	PollLag          Latency `json:"poll_lag"`
	PollsPerSecond   float64 `json:"polls_per_s"`
	SnapshotRowsPerS float64 `json:"snapshot_rows_per_s"`
	CPUPercent       float64 `json:"cpu_percent_of_one_core"`
	RSSMiB           float64 `json:"rss_mib"`
	EventsPerPoll    float64 `json:"history_events_per_poll"`
	HistoryAtCAN     int     `json:"history_events_at_continue_as_new"`
}

// Watches runs the watch benchmark: it creates the watches through the API,
// lets them run one interval, then measures for Measure, and deletes them.
func Watches(ctx context.Context, o WatchesOptions, progress io.Writer) (*WatchesReport, error) {
	c := newClient(o.BaseURL, "", 256)
	token, err := c.login(ctx, o.Login, o.Password)
	if err != nil {
		return nil, err
	}
	rep := &WatchesReport{Watches: o.Watches, Interval: o.Interval.String()}
	services := directorysim.DemoServices()

	fmt.Fprintf(progress, "creating %d service watches at %.0f/s (interval %s)\n", o.Watches, o.CreateRate, o.Interval)
	var mu sync.Mutex
	var ids []string
	var createErrors atomic.Int64
	start := time.Now()
	ph := openLoop(ctx, o.CreateRate, time.Duration(float64(o.Watches)/o.CreateRate*float64(time.Second)), func(i int) (time.Duration, error) {
		body := map[string]any{
			"kind": "service", "service_id": services[i%len(services)].ID,
			"interval_seconds": int(o.Interval / time.Second), "description": "bench " + strconv.Itoa(i),
		}
		raw, err := c.post(ctx, "/v1/watches", body, token)
		if err != nil {
			createErrors.Add(1)
			return 0, err
		}
		var w struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			return 0, err
		}
		mu.Lock()
		ids = append(ids, w.ID)
		mu.Unlock()
		return 0, nil
	})
	rep.CreateSeconds = time.Since(start).Seconds()
	rep.CreateErrors = ph.errors
	defer deleteWatches(context.WithoutCancel(ctx), c, token, ids, progress)

	fmt.Fprintf(progress, "settling for one interval (%s)\n", o.Interval)
	sleepCtx(ctx, o.Interval)
	pid := o.PID
	if pid == 0 {
		pid = findVigilDev()
	}
	cpu0, cpuErr := processCPU(pid)
	t0 := time.Now()
	fmt.Fprintf(progress, "measuring for %s (vigil pid %d)\n", o.Measure, pid)
	sleepCtx(ctx, o.Measure)
	t1 := time.Now()
	if cpu1, err := processCPU(pid); err == nil && cpuErr == nil {
		rep.CPUPercent = (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds() * 100
	}
	rep.RSSMiB = processRSSMiB(pid)

	var lags []time.Duration
	var rows []struct {
		Lag float64 `db:"lag"`
	}
	if err := o.DB.SelectContext(ctx, &rows, `SELECT extract(epoch FROM polled_at - scheduled_at) AS lag FROM watch_polls
		WHERE polled_at >= $1 AND polled_at < $2 AND watch_id = ANY($3::uuid[])`, t0, t1, "{"+strings.Join(ids, ",")+"}"); err != nil {
		return nil, fmt.Errorf("read poll lag: %w", err)
	}
	for _, r := range rows {
		lags = append(lags, time.Duration(r.Lag*float64(time.Second)))
	}
	rep.Polls = len(lags)
	rep.PollLag = summarize(lags)
	rep.PollsPerSecond = float64(len(lags)) / t1.Sub(t0).Seconds()
	var snaps int
	if err := o.DB.GetContext(ctx, &snaps, `SELECT count(*) FROM snapshots WHERE polled_at >= $1 AND polled_at < $2`, t0, t1); err != nil {
		return nil, fmt.Errorf("count snapshots: %w", err)
	}
	rep.SnapshotRowsPerS = float64(snaps) / t1.Sub(t0).Seconds()

	if len(ids) > 0 && o.Temporal != nil {
		d, err := o.Temporal.DescribeWorkflowExecution(ctx, workflows.WatchWorkflowID(ids[0]), "")
		if err == nil {
			var polls int
			_ = o.DB.GetContext(ctx, &polls, `SELECT count(*) FROM watch_polls WHERE watch_id = $1`, ids[0])
			if polls > 0 {
				rep.EventsPerPoll = float64(d.GetWorkflowExecutionInfo().GetHistoryLength()) / float64(polls)
				rep.HistoryAtCAN = int(rep.EventsPerPoll * 500)
			}
		}
	}
	return rep, nil
}

func deleteWatches(ctx context.Context, c *client, token string, ids []string, progress io.Writer) {
	fmt.Fprintf(progress, "cleanup: deleting %d watches\n", len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, _, _ = c.send(ctx, http.MethodDelete, "/v1/watches/"+id, nil, token)
		}()
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// findVigilDev finds the `vigil dev` process by its command line.
func findVigilDev() int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		if len(args) >= 2 && strings.HasSuffix(args[0], "vigil") && args[1] == "dev" {
			return pid
		}
	}
	return 0
}

// processCPU is the process's user+system CPU time, from /proc.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc stat")
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration((utime + stime) / clockTicks * float64(time.Second)), nil
}

// processRSSMiB is the process's resident set, from /proc.
func processRSSMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}
