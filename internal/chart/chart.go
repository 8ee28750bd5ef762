// Package chart draws small, accessible charts as inline SVG for the
// server-rendered console: a line chart over categories (time buckets) and
// a horizontal bar chart. Each chart carries a <title> and <desc> that its
// role="img" names it by, axis labels, and fixed colours with distinct
// dash patterns, so series differ without colour too. Pages put a data
// table next to each chart; the charts are its picture, not its only form.
package chart

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Colours of the series, in order (dark enough for 3:1 against white).
var Colours = []string{"#1565c0", "#e65100", "#2e7d32", "#6a1b9a", "#c62828"}

// dashes are the series' stroke patterns, in order.
var dashes = []string{"", "6 3", "2 3", "8 3 2 3", "1 2"}

// Canvas sizes, in SVG user units (CSS pixels at width 100 %).
const (
	lineWidth, lineHeight = 640, 260
	marginLeft            = 60
	marginRight           = 24
	marginTop             = 40
	marginBottom          = 52
	barRow                = 26
	barLabelWidth         = 150
	maxXLabels            = 8
	labelMax              = 22
)

// Series is one line: a value per category, nil where there is none (the
// line breaks there).
type Series struct {
	Name   string
	Values []*float64
}

// Line is a line chart of series over categories.
type Line struct {
	// ID prefixes the chart's element ids; unique within the page.
	ID string
	// Title names the chart; Desc says what it shows (for screen readers).
	Title, Desc string
	// XLabel and YLabel name the axes.
	XLabel, YLabel string
	// Labels are the categories, left to right.
	Labels []string
	Series []Series
}

// Bar is one bar.
type Bar struct {
	Label string
	Value float64
}

// Bars is a horizontal bar chart, a bar per category from the top.
type Bars struct {
	ID, Title, Desc string
	// ValueLabel names the value axis; CategoryLabel the categories.
	ValueLabel, CategoryLabel string
	Bars                      []Bar
	// Colour fills the bars; the first of Colours when empty.
	Colour string
}

// SVG renders the chart. It fails on series whose length is not the
// labels'.
func (l Line) SVG() (template.HTML, error) {
	for _, s := range l.Series {
		if len(s.Values) != len(l.Labels) {
			return "", fmt.Errorf("chart %s: series %q has %d values for %d labels", l.ID, s.Name, len(s.Values), len(l.Labels))
		}
	}
	var b strings.Builder
	open(&b, l.ID, l.Title, l.Desc, lineWidth, lineHeight)
	plotW, plotH := float64(lineWidth-marginLeft-marginRight), float64(lineHeight-marginTop-marginBottom)
	top := 0.0
	for _, s := range l.Series {
		for _, v := range s.Values {
			if v != nil && *v > top {
				top = *v
			}
		}
	}
	ticks := NiceTicks(top, 4)
	ymax := ticks[len(ticks)-1]
	y := func(v float64) float64 { return marginTop + plotH - v/ymax*plotH }
	n := len(l.Labels)
	x := func(i int) float64 {
		if n == 1 {
			return marginLeft + plotW/2
		}
		return marginLeft + float64(i)*plotW/float64(n-1)
	}
	yAxis(&b, ticks, y, l.YLabel)
	// X axis, labels on every step-th category and the last.
	fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#555"/>`, marginLeft, num(y(0)), lineWidth-marginRight, num(y(0)))
	step := max(1, int(math.Ceil(float64(n)/maxXLabels)))
	for i := range n {
		if last := i == n-1; !last && (i%step != 0 || n-1-i < (step+1)/2) {
			continue
		}
		fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle" fill="#333">%s</text>`, num(x(i)), lineHeight-marginBottom+16, esc(l.Labels[i]))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#333">%s</text>`, marginLeft+int(plotW)/2, lineHeight-8, esc(l.XLabel))
	drawn := false
	for si, s := range l.Series {
		colour, dash := Colours[si%len(Colours)], dashes[si%len(dashes)]
		var path strings.Builder
		for i, v := range s.Values {
			if v == nil {
				continue
			}
			cmd := "L"
			if i == 0 || s.Values[i-1] == nil {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%s %s ", cmd, num(x(i)), num(y(*v)))
		}
		if path.Len() == 0 {
			continue
		}
		drawn = true
		dashAttr := ""
		if dash != "" {
			dashAttr = ` stroke-dasharray="` + dash + `"`
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, strings.TrimSpace(path.String()), colour, dashAttr)
		for i, v := range s.Values {
			if v != nil {
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"><title>%s, %s: %s</title></circle>`,
					num(x(i)), num(y(*v)), colour, esc(s.Name), esc(l.Labels[i]), num(*v))
			}
		}
	}
	if !drawn {
		noData(&b, marginLeft+plotW/2, marginTop+plotH/2)
	}
	// Legend, top right, one entry per series.
	lx := float64(lineWidth - marginRight)
	for si := len(l.Series) - 1; si >= 0; si-- {
		name := shorten(l.Series[si].Name)
		w := 40 + 7*float64(len([]rune(name)))
		lx -= w
		dashAttr := ""
		if d := dashes[si%len(dashes)]; d != "" {
			dashAttr = ` stroke-dasharray="` + d + `"`
		}
		fmt.Fprintf(&b, `<line x1="%s" y1="30" x2="%s" y2="30" stroke="%s" stroke-width="2"%s/><text x="%s" y="34" fill="#1a1a1a">%s</text>`,
			num(lx), num(lx+18), Colours[si%len(Colours)], dashAttr, num(lx+22), esc(name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), nil //nolint:gosec // every text is escaped above
}

// SVG renders the bar chart; its height grows with the bars.
func (c Bars) SVG() template.HTML {
	colour := c.Colour
	if colour == "" {
		colour = Colours[0]
	}
	height := marginTop + max(1, len(c.Bars))*barRow + marginBottom - 8
	var b strings.Builder
	open(&b, c.ID, c.Title, c.Desc, lineWidth, height)
	plotW := float64(lineWidth - barLabelWidth - marginRight - 40)
	top := 0.0
	for _, bar := range c.Bars {
		top = max(top, bar.Value)
	}
	ticks := NiceTicks(top, 4)
	vmax := ticks[len(ticks)-1]
	x := func(v float64) float64 { return barLabelWidth + v/vmax*plotW }
	bottom := float64(marginTop + max(1, len(c.Bars))*barRow)
	for _, t := range ticks {
		fmt.Fprintf(&b, `<line x1="%s" y1="%d" x2="%s" y2="%s" stroke="#ddd"/><text x="%s" y="%s" text-anchor="middle" fill="#333">%s</text>`,
			num(x(t)), marginTop-4, num(x(t)), num(bottom), num(x(t)), num(bottom+16), num(t))
	}
	fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle" fill="#333">%s</text>`, num(barLabelWidth+plotW/2), height-8, esc(c.ValueLabel))
	if c.CategoryLabel != "" {
		fmt.Fprintf(&b, `<text x="4" y="%d" fill="#333">%s</text>`, marginTop-12, esc(c.CategoryLabel))
	}
	for i, bar := range c.Bars {
		yTop := float64(marginTop + i*barRow + 3)
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end" fill="#1a1a1a">%s</text>`, barLabelWidth-6, num(yTop+14), esc(shorten(bar.Label)))
		w := x(bar.Value) - barLabelWidth
		fmt.Fprintf(&b, `<rect x="%d" y="%s" width="%s" height="%d" fill="%s"><title>%s: %s</title></rect>`,
			barLabelWidth, num(yTop), num(w), barRow-6, colour, esc(bar.Label), num(bar.Value))
		fmt.Fprintf(&b, `<text x="%s" y="%s" fill="#1a1a1a">%s</text>`, num(barLabelWidth+w+4), num(yTop+14), num(bar.Value))
	}
	if len(c.Bars) == 0 {
		noData(&b, barLabelWidth+plotW/2, float64(marginTop)+barRow/2+4)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text is escaped above
}

// open writes the svg element with its title and description.
func open(b *strings.Builder, id, title, desc string, w, h int) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="%s-title %s-desc" font-family="system-ui,sans-serif" font-size="12">`,
		w, h, w, h, esc(id), esc(id))
	fmt.Fprintf(b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, esc(id), esc(title), esc(id), esc(desc))
	fmt.Fprintf(b, `<text x="4" y="16" font-size="14" font-weight="600" fill="#1a1a1a">%s</text>`, esc(title))
}

// yAxis draws the value axis at the left: grid lines, tick labels and the
// rotated axis label.
func yAxis(b *strings.Builder, ticks []float64, y func(float64) float64, label string) {
	for _, t := range ticks {
		fmt.Fprintf(b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#ddd"/><text x="%d" y="%s" text-anchor="end" fill="#333">%s</text>`,
			marginLeft, num(y(t)), lineWidth-marginRight, num(y(t)), marginLeft-6, num(y(t)+4), num(t))
	}
	mid := marginTop + (lineHeight-marginTop-marginBottom)/2
	fmt.Fprintf(b, `<text transform="translate(14 %d) rotate(-90)" text-anchor="middle" fill="#333">%s</text>`, mid, esc(label))
}

func noData(b *strings.Builder, x, y float64) {
	fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle" fill="#555" font-size="14">no data</text>`, num(x), num(y))
}

// NiceTicks are about n+1 round tick values from 0 to at least top: steps
// of 1, 2 or 5 times a power of ten. A top of 0 or less gives 0 to 1.
func NiceTicks(top float64, n int) []float64 {
	if n < 1 {
		n = 1
	}
	if !(top > 0) || math.IsInf(top, 0) {
		top = 1
	}
	raw := top / float64(n)
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * pow
	for _, m := range []float64{1, 2, 5} {
		if m*pow >= raw {
			step = m * pow
			break
		}
	}
	var out []float64
	for i := 0; ; i++ {
		v := float64(i) * step
		out = append(out, math.Round(v/pow*1e6)/1e6*pow)
		if v >= top-step*1e-9 {
			return out
		}
	}
}

// DurationUnit picks the unit to show durations of up to maxSeconds in:
// the divisor from seconds and the unit's name.
func DurationUnit(maxSeconds float64) (divisor float64, unit string) {
	switch {
	case maxSeconds >= 3*3600:
		return 3600, "hours"
	case maxSeconds >= 180:
		return 60, "minutes"
	}
	return 1, "seconds"
}

// num formats a coordinate or value: at most 2 decimals, no trailing zeros.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

func esc(s string) string { return html.EscapeString(s) }

// shorten truncates long labels so one cannot push the chart apart.
func shorten(s string) string {
	r := []rune(s)
	if len(r) <= labelMax {
		return s
	}
	return string(r[:labelMax-1]) + "…"
}
