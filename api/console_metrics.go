package api

import (
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/chart"
	"github.com/vigil-health/vigil/internal/incident"
)

// The metrics page (/ui/metrics): the response-time report of GET
// /v1/incidents/metrics over a window of the last 1, 7, 30 or 90 days, with
// MTTA, time to assign and MTTR over time (hourly for a day, daily
// otherwise, in the hospital's zone), incidents per severity and each
// staff member's workload, drawn as inline SVG charts (internal/chart),
// each with its data table. Any signed-in staff member may see it, as
// anyone with a staff token may read the JSON report.

// metricsWindows are the page's windows in days, metricsDefaultDays the
// default one.
var metricsWindows = []int{1, 7, 30, 90}

const metricsDefaultDays = 7

// metricsView is the metrics page's data.
type metricsView struct {
	Days    int
	Windows []int
	// From and To bound the window; Bucket names its buckets ("hour" or
	// "day").
	From, To time.Time
	Bucket   string
	Report   *incident.Metrics
	Series   []metricsPoint
	// The charts, each drawn above its table.
	Opened, Acknowledge, Resolve, Severity, Staff template.HTML
}

// metricsPoint is one bucket of the series with its label.
type metricsPoint struct {
	Label string
	incident.SeriesPoint
}

// metricsPage renders the metrics of the window ?days= (7 by default); a
// bad window is a 400 naming days, on the page.
func (s *Server) metricsPage(c *gin.Context) {
	data := pageData{Title: "Metrics", SignedIn: true, Nav: "metrics", TZ: s.HospitalTZ}
	days := metricsDefaultDays
	if v, ok := c.GetQuery("days"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || !slices.Contains(metricsWindows, n) {
			data.Message = "Refused: days must be one of 1, 7, 30 or 90."
			data.Metrics = &metricsView{Days: days, Windows: metricsWindows}
			s.renderPage(c, http.StatusBadRequest, "console_metrics.html", data)
			return
		}
		days = n
	}
	v, err := s.buildMetrics(c, days, time.Now())
	if err != nil {
		s.abortInternal(c, "metrics page", err)
		return
	}
	data.Metrics = v
	s.renderPage(c, http.StatusOK, "console_metrics.html", data)
}

// buildMetrics reads the report and the series of the days ending now and
// draws the charts.
func (s *Server) buildMetrics(c *gin.Context, days int, now time.Time) (*metricsView, error) {
	loc := s.HospitalTZ
	if loc == nil {
		loc = time.UTC
	}
	local := now.In(loc)
	v := &metricsView{Days: days, Windows: metricsWindows, To: now}
	bucket, labelLayout := incident.BucketDay, "Jan 2"
	if days == 1 {
		bucket, labelLayout = incident.BucketHour, "15:04"
		v.From = time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), 0, 0, 0, loc).Add(-23 * time.Hour)
	} else {
		v.From = time.Date(local.Year(), local.Month(), local.Day()-(days-1), 0, 0, 0, 0, loc)
	}
	v.Bucket = string(bucket)
	ctx := c.Request.Context()
	report, err := s.incidentStore().Metrics(ctx, v.From, v.To)
	if err != nil {
		return nil, fmt.Errorf("metrics report: %w", err)
	}
	v.Report = report
	series, err := s.incidentStore().MetricsSeries(ctx, v.From, v.To, bucket, loc)
	if err != nil {
		return nil, fmt.Errorf("metrics series: %w", err)
	}

	labels := make([]string, len(series))
	opened := make([]*float64, len(series))
	var mtta, assign, mttr []*float64
	topAck, topResolve := 0.0, 0.0
	for i, p := range series {
		v.Series = append(v.Series, metricsPoint{Label: p.Start.In(loc).Format(labelLayout), SeriesPoint: p})
		labels[i] = v.Series[i].Label
		n := float64(p.Incidents)
		opened[i] = &n
		mtta, assign, mttr = append(mtta, p.MTTASeconds), append(assign, p.TimeToAssignSeconds), append(mttr, p.MTTRSeconds)
		topAck = max(topAck, deref0(p.MTTASeconds), deref0(p.TimeToAssignSeconds))
		topResolve = max(topResolve, deref0(p.MTTRSeconds))
	}
	per := map[incident.Bucket]string{incident.BucketHour: "hour", incident.BucketDay: "day"}[bucket]
	xLabel := map[incident.Bucket]string{incident.BucketHour: "Hour opened", incident.BucketDay: "Day opened"}[bucket] + " (" + local.Format("MST") + ")"
	if v.Opened, err = (chart.Line{
		ID: "opened", Title: "Incidents opened per " + per, Desc: fmt.Sprintf("How many incidents opened each %s of the last %d days; the table below gives the numbers.", per, days),
		XLabel: xLabel, YLabel: "incidents", Labels: labels, Series: []chart.Series{{Name: "Incidents", Values: opened}},
	}).SVG(); err != nil {
		return nil, err
	}
	div, unit := chart.DurationUnit(topAck)
	if v.Acknowledge, err = (chart.Line{
		ID: "ack", Title: "Mean time to acknowledge and to assign, per " + per,
		Desc:   "Mean time from an incident's opening to its acknowledgement (MTTA) and to its first assignment, by the " + per + " it opened; gaps where no incident reached that step. The table below gives the numbers.",
		XLabel: xLabel, YLabel: unit, Labels: labels,
		Series: []chart.Series{{Name: "MTTA", Values: scaled(mtta, div)}, {Name: "Time to assign", Values: scaled(assign, div)}},
	}).SVG(); err != nil {
		return nil, err
	}
	div, unit = chart.DurationUnit(topResolve)
	if v.Resolve, err = (chart.Line{
		ID: "resolve", Title: "Mean time to resolve (MTTR), per " + per,
		Desc:   "Mean time from an incident's opening to its resolution, over the resolved incidents, by the " + per + " it opened. The table below gives the numbers.",
		XLabel: xLabel, YLabel: unit, Labels: labels,
		Series: []chart.Series{{Name: "MTTR", Values: scaled(mttr, div)}},
	}).SVG(); err != nil {
		return nil, err
	}
	sev := make([]chart.Bar, 0, len(report.BySeverity))
	for _, g := range report.BySeverity {
		sev = append(sev, chart.Bar{Label: g.Severity, Value: float64(g.Incidents)})
	}
	v.Severity = chart.Bars{
		ID: "severity", Title: "Incidents per severity", Desc: "How many incidents of each severity opened in the window; the table below gives the numbers and their response times.",
		ValueLabel: "incidents", Bars: sev,
	}.SVG()
	staff := make([]chart.Bar, 0, len(report.ByStaff))
	for _, g := range report.ByStaff {
		name := g.StaffName
		if name == "" {
			name = g.StaffID
		}
		staff = append(staff, chart.Bar{Label: name + " (" + g.StaffID + ")", Value: float64(g.Incidents)})
	}
	v.Staff = chart.Bars{
		ID: "staff", Title: "Workload per staff member", Desc: "How many of the window's incidents each staff member is assigned (the current assignee); the table below gives the numbers and their response times.",
		ValueLabel: "incidents assigned", Bars: staff, Colour: "#2e7d32",
	}.SVG()
	return v, nil
}

// scaled divides the durations by div (for the chart's unit).
func scaled(vs []*float64, div float64) []*float64 {
	out := make([]*float64, len(vs))
	for i, v := range vs {
		if v != nil {
			x := *v / div
			out[i] = &x
		}
	}
	return out
}

func deref0(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

// humanDuration formats seconds as "45 s", "12 min 05 s", "3 h 05 min",
// "—" for none.
func humanDuration(sec *float64) string {
	if sec == nil {
		return "—"
	}
	d := time.Duration(*sec * float64(time.Second)).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
}
