// Package heatmap draws the nodes × days daily error-rate heatmap (the
// seed's removed error_histogram_service) as PNG or SVG with gonum/plot.
//
// Cells are coloured by nodehealth.Band: black no imports, blue below 1 %,
// yellow 1 % to below 10 %, red 10 % and more; a day without daily
// figures is grey ("no data"), so a node that has not reported yet is not
// drawn as failing. Rows are drawn top to bottom in Matrix order; call
// Sort first for the seed's weighting.
package heatmap

import (
	"bufio"
	"cmp"
	"fmt"
	"image"
	"image/color"
	imagedraw "image/draw"
	"image/png"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"git.sr.ht/~sbinet/gg"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/vigil-health/vigil/internal/node/nodehealth"
)

// Row is one node's line of the heatmap.
type Row struct {
	// Label names the node on the y axis.
	Label string
	// Rates are the daily error rates in percent, oldest → newest, one per
	// Matrix.Days entry; nil means no imports that day.
	Rates []*float64
	// NoData marks the days without daily figures (the node reported
	// nothing, was not monitored yet, or the day has no deltas to compare),
	// drawn grey whatever the rate.
	// Nil means every day has statistics; otherwise one per Matrix.Days
	// entry.
	NoData []bool
}

// BandNoData is the band of a day without daily figures (grey), after the
// nodehealth bands.
const BandNoData = nodehealth.BandExtreme + 1

// band is the band of row r's day j.
func (r Row) band(j int) nodehealth.HeatBand {
	if r.NoData != nil && r.NoData[j] {
		return BandNoData
	}
	return nodehealth.Band(r.Rates[j])
}

// Matrix is the heatmap's data: the days (UTC midnights, oldest first) and
// one row per node, drawn top to bottom.
type Matrix struct {
	Days []time.Time
	Rows []Row
}

// Format is an output image format.
type Format string

// The supported formats.
const (
	PNG Format = "png"
	SVG Format = "svg"
)

// ContentType is the format's MIME type.
func (f Format) ContentType() string {
	switch f {
	case PNG:
		return "image/png"
	case SVG:
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// Title is the heatmap's title.
const Title = "Daily import error rate (%)"

// Band colours and legend names, indexed by nodehealth.HeatBand.
var (
	// BandColors are the cell colours: black, medium blue, yellow, red,
	// and a mid grey for no data (3:1 against the white page, and a step
	// of the PNG palette's grey ramp, so it stays exact).
	BandColors = [...]color.RGBA{
		nodehealth.BandNoImports: {0x00, 0x00, 0x00, 0xff},
		nodehealth.BandOnline:    {0x00, 0x00, 0xcd, 0xff},
		nodehealth.BandLow:       {0xff, 0xd7, 0x00, 0xff},
		nodehealth.BandExtreme:   {0xdc, 0x14, 0x14, 0xff},
		BandNoData:               {0x94, 0x94, 0x94, 0xff},
	}
	// BandNames are the legend texts.
	BandNames = [...]string{
		nodehealth.BandNoImports: "No imports",
		nodehealth.BandOnline:    "0–1 %",
		nodehealth.BandLow:       "1–10 %",
		nodehealth.BandExtreme:   "≥ 10 %",
		BandNoData:               "No data",
	}
)

// Layout, in points (1/72 in). At DPI 96 a row is 14 px and a day 20 px.
const (
	DPI          = 96
	rowHeight    = vg.Length(10.5)
	dayWidth     = vg.Length(15)
	legendWidth  = vg.Length(90)
	headerHeight = vg.Length(30)
	rightMargin  = vg.Length(10)
	bottomMargin = vg.Length(4)
	labelMax     = 40
	minWidth     = vg.Length(240)
	minHeight    = vg.Length(120)
)

// Render draws m to w in format f. An empty matrix (no rows or no days)
// gives a small valid image that says "no data".
func Render(w io.Writer, f Format, m Matrix) error {
	_, err := render(w, f, m)
	return err
}

// render is Render that also returns the grid's rectangle on the canvas
// (points from the bottom left; zero for an empty matrix), for tests.
func render(w io.Writer, f Format, m Matrix) (rect vg.Rectangle, err error) {
	// gonum/plot reports some drawing problems by panicking; a bad image
	// must not take down the caller (an HTTP handler).
	defer func() {
		if r := recover(); r != nil {
			rect, err = vg.Rectangle{}, fmt.Errorf("heatmap: draw: %v", r)
		}
	}()
	if f != PNG && f != SVG {
		return vg.Rectangle{}, fmt.Errorf("heatmap: unknown format %q", f)
	}
	for i, r := range m.Rows {
		if len(r.Rates) != len(m.Days) {
			return vg.Rectangle{}, fmt.Errorf("heatmap: row %d (%q) has %d rates for %d days", i, r.Label, len(r.Rates), len(m.Days))
		}
		if r.NoData != nil && len(r.NoData) != len(m.Days) {
			return vg.Rectangle{}, fmt.Errorf("heatmap: row %d (%q) has %d no-data marks for %d days", i, r.Label, len(r.NoData), len(m.Days))
		}
	}

	var (
		p      *plot.Plot
		width  vg.Length
		height vg.Length
		grid   *cells
	)
	if len(m.Rows) == 0 || len(m.Days) == 0 {
		p, width, height = emptyPlot()
	} else {
		p, grid, width, height = heatPlot(m)
	}

	legend := newLegend()
	drawAll := func(c draw.Canvas) {
		plotC := draw.Crop(c, 0, -legendWidth-rightMargin, bottomMargin, 0)
		p.Draw(plotC)
		legC := draw.Crop(c, c.Size().X-legendWidth+6, 0, 0, -headerHeight+8)
		legend.Draw(legC)
	}

	switch f {
	case SVG:
		cv := vgsvg.New(width, height)
		drawAll(draw.New(cv))
		bw := bufio.NewWriter(w)
		if _, err := cv.WriteTo(bw); err != nil {
			return vg.Rectangle{}, fmt.Errorf("heatmap: write svg: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return vg.Rectangle{}, fmt.Errorf("heatmap: write svg: %w", err)
		}
	default:
		// Our own RGBA and context: vgimg.UseWH would allocate an image
		// and gg.NewContextForImage copy it once more.
		img := image.NewRGBA(image.Rect(0, 0, int(width.Dots(DPI)+0.5), int(height.Dots(DPI)+0.5)))
		ctx := gg.NewContextForRGBA(img)
		ctx.SetLineCapButt()
		ctx.InvertY()
		cv := vgimg.NewWith(vgimg.UseImageWithContext(img, ctx), vgimg.UseDPI(DPI)) // white background by default
		drawAll(draw.New(cv))
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(w, paletted(img)); err != nil {
			return vg.Rectangle{}, fmt.Errorf("heatmap: write png: %w", err)
		}
	}
	if grid == nil {
		return vg.Rectangle{}, nil
	}
	return grid.rect, nil
}

// Sort orders m's rows in place by nodehealth.HeatmapWeight, heaviest first, ties
// by label.
func Sort(m *Matrix) {
	type weighted struct {
		row Row
		w   float64
	}
	ws := make([]weighted, len(m.Rows))
	for i, r := range m.Rows {
		ws[i] = weighted{r, nodehealth.HeatmapWeight(r.Rates)}
	}
	slices.SortStableFunc(ws, func(a, b weighted) int {
		if c := cmp.Compare(b.w, a.w); c != 0 {
			return c
		}
		return strings.Compare(a.row.Label, b.row.Label)
	})
	for i := range ws {
		m.Rows[i] = ws[i].row
	}
}

// heatPlot builds the plot of a non-empty matrix and the canvas size.
func heatPlot(m Matrix) (*plot.Plot, *cells, vg.Length, vg.Length) {
	p := basePlot()
	nd, nr := len(m.Days), len(m.Rows)
	grid := &cells{m: m}
	p.Add(grid)
	p.X.Min, p.X.Max = 0, float64(nd)
	p.Y.Min, p.Y.Max = 0, float64(nr)
	p.X.Padding, p.Y.Padding = 0, 0

	step := 1
	if nd > 62 {
		step = 7
	}
	var xt plot.ConstantTicks
	for i := nd - 1; i >= 0; i -= step { // newest day always labelled
		xt = append(xt, plot.Tick{Value: float64(i) + 0.5, Label: m.Days[i].UTC().Format("2006-01-02")})
	}
	p.X.Tick.Marker = xt
	p.X.Tick.Label.Rotation = math.Pi / 2
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.X.Tick.Label.Font.Size = 8
	p.X.Label.Text = "Day (UTC)"

	yt := make(plot.ConstantTicks, nr)
	for i, r := range m.Rows {
		yt[i] = plot.Tick{Value: float64(nr-1-i) + 0.5, Label: shorten(r.Label)}
	}
	p.Y.Tick.Marker = yt
	p.Y.Tick.Label.Font.Size = 8

	// Measure the space the title and axes take, so every row gets
	// exactly rowHeight and every day dayWidth.
	const probe = vg.Length(10000)
	data := p.DataCanvas(draw.Canvas{Rectangle: vg.Rectangle{Max: vg.Point{X: probe, Y: probe}}})
	overX, overY := probe-data.Size().X, probe-data.Size().Y
	width := max(overX+vg.Length(nd)*dayWidth+rightMargin+legendWidth, minWidth)
	height := max(overY+vg.Length(nr)*rowHeight+bottomMargin, minHeight)
	return p, grid, width, height
}

// emptyPlot is the "no data" image.
func emptyPlot() (*plot.Plot, vg.Length, vg.Length) {
	p := basePlot()
	p.HideAxes()
	p.Add(noData{})
	return p, minWidth, minHeight
}

func basePlot() *plot.Plot {
	p := plot.New()
	p.Title.Text = Title
	p.Title.Padding = 6
	// The canvas is white already; filling the plot again costs a full
	// anti-aliased pass over a 500-row image.
	p.BackgroundColor = nil
	return p
}

func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.TextStyle.Font.Size = 9
	l.ThumbnailWidth = 14
	l.Padding = 4
	for b := range BandNames {
		l.Add(BandNames[b], swatch(BandColors[b]))
	}
	return l
}

// shorten truncates long labels so one node cannot widen the image.
func shorten(s string) string {
	r := []rune(s)
	if len(r) <= labelMax {
		return s
	}
	return string(r[:labelMax-1]) + "…"
}

// swatch is a legend thumbnail: a filled square outlined in grey (so black
// and the page background stay apart).
type swatch color.RGBA

// Thumbnail implements plot.Thumbnailer.
func (s swatch) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	c.SetColor(color.RGBA(s))
	c.Fill(r.Path())
	c.SetColor(color.Gray{0x80})
	c.SetLineWidth(0.5)
	c.Stroke(r.Path())
}

// cells is the plotter of the grid: one filled rectangle per run of
// equally banded days in a row (fewer shapes than one per cell).
type cells struct {
	m Matrix
	// rect is where the grid was drawn (set by Plot).
	rect vg.Rectangle
}

// Plot implements plot.Plotter.
func (c *cells) Plot(dc draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&dc)
	nr := len(c.m.Rows)
	c.rect = vg.Rectangle{Min: vg.Point{X: trX(0), Y: trY(0)}, Max: vg.Point{X: trX(float64(len(c.m.Days))), Y: trY(float64(nr))}}
	xs := make([]vg.Length, len(c.m.Days)+1)
	for i := range xs {
		xs[i] = trX(float64(i))
	}
	if img, ok := rasterOf(dc.Canvas); ok {
		c.paint(img, xs, trY)
		return
	}
	for i, r := range c.m.Rows {
		y0, y1 := trY(float64(nr-1-i)), trY(float64(nr-i))
		start := 0
		for j := 1; j <= len(r.Rates); j++ {
			if j < len(r.Rates) && r.band(j) == r.band(start) {
				continue
			}
			dc.SetColor(BandColors[r.band(start)])
			dc.Fill(vg.Rectangle{Min: vg.Point{X: xs[start], Y: y0}, Max: vg.Point{X: xs[j], Y: y1}}.Path())
			start = j
		}
	}
}

// rasterOf finds the vgimg canvas under (possibly nested) draw.Canvases.
func rasterOf(c vg.Canvas) (*vgimg.Canvas, bool) {
	for {
		switch v := c.(type) {
		case *vgimg.Canvas:
			return v, true
		case draw.Canvas:
			c = v.Canvas
		case *draw.Canvas:
			c = v.Canvas
		default:
			return nil, false
		}
	}
}

// paint fills the cells straight into a raster canvas's pixels: the same
// rectangles as the vector path, with pixel-aligned edges, and a memset
// per run instead of gg's anti-aliasing rasteriser (which took half of a
// 500 × 42 render).
func (c *cells) paint(cv *vgimg.Canvas, xs []vg.Length, trY func(float64) vg.Length) {
	img := cv.Image()
	dpi := cv.DPI()
	h := img.Bounds().Dy()
	px := func(x vg.Length) int { return int(math.Round(x.Dots(dpi))) }
	py := func(y vg.Length) int { return h - int(math.Round(y.Dots(dpi))) }
	cols := make([]int, len(xs))
	for i, x := range xs {
		cols[i] = px(x)
	}
	var uni [len(BandColors)]*image.Uniform
	for b, col := range BandColors {
		uni[b] = image.NewUniform(col)
	}
	nr := len(c.m.Rows)
	for i, r := range c.m.Rows {
		top, bottom := py(trY(float64(nr-i))), py(trY(float64(nr-1-i)))
		start := 0
		for j := 1; j <= len(r.Rates); j++ {
			if j < len(r.Rates) && r.band(j) == r.band(start) {
				continue
			}
			rect := image.Rect(cols[start], top, cols[j], bottom)
			imagedraw.Draw(img, rect, uni[r.band(start)], image.Point{}, imagedraw.Src)
			start = j
		}
	}
}

// DataRange implements plot.DataRanger.
func (c *cells) DataRange() (xmin, xmax, ymin, ymax float64) {
	return 0, float64(len(c.m.Days)), 0, float64(len(c.m.Rows))
}

// noData writes "no data" in the middle of the data area.
type noData struct{}

// Plot implements plot.Plotter.
func (noData) Plot(dc draw.Canvas, p *plot.Plot) {
	sty := text.Style{
		Color:   color.Gray{0x40},
		Font:    font.From(plot.DefaultFont, 14),
		XAlign:  draw.XCenter,
		YAlign:  draw.YCenter,
		Handler: p.TextHandler,
	}
	dc.FillText(sty, dc.Center(), "no data")
}
