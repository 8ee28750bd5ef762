package heatmap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/node/nodehealth"
)

func f(v float64) *float64 { return &v }

func days(n int) []time.Time {
	start := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	d := make([]time.Time, n)
	for i := range d {
		d[i] = start.AddDate(0, 0, i)
	}
	return d
}

// smallMatrix has one row per band plus two mixed rows.
func smallMatrix() Matrix {
	return Matrix{
		Days: days(4),
		Rows: []Row{
			{Label: "[1] None", Rates: []*float64{nil, nil, nil, nil}},
			{Label: "[2] Online", Rates: []*float64{f(0), f(0.5), f(0.99), f(0)}},
			{Label: "[3] Low", Rates: []*float64{f(1), f(5), f(9.99), f(4)}},
			{Label: "[4] Extreme", Rates: []*float64{f(10), f(50), f(100), f(20)}},
			{Label: "[5] Mixed", Rates: []*float64{nil, f(0.2), f(3), f(12)}},
			{Label: "[6] Not reported", Rates: []*float64{nil, nil, nil, nil}, NoData: []bool{true, true, true, true}},
			// Reported from the second day on; a no-data day wins over
			// any rate.
			{Label: "[7] New", Rates: []*float64{f(50), nil, f(0.5), f(20)}, NoData: []bool{true, false, false, false}},
		},
	}
}

func bigMatrix(rows, nd int) Matrix {
	rng := rand.New(rand.NewPCG(1, 2))
	m := Matrix{Days: days(nd)}
	for i := range rows {
		r := Row{Label: fmt.Sprintf("[%d] Klinikum Beispielstadt %d", i+1, i), Rates: make([]*float64, nd)}
		for j := range r.Rates {
			switch rng.IntN(4) {
			case 0:
			case 1:
				r.Rates[j] = f(rng.Float64())
			case 2:
				r.Rates[j] = f(1 + 9*rng.Float64())
			default:
				r.Rates[j] = f(10 + 90*rng.Float64())
			}
		}
		m.Rows = append(m.Rows, r)
	}
	return m
}

func TestRenderDump(t *testing.T) {
	dir := os.Getenv("HEATMAP_DUMP")
	if dir == "" {
		t.Skip("set HEATMAP_DUMP to a directory to write sample images")
	}
	for name, m := range map[string]Matrix{"small": smallMatrix(), "big": bigMatrix(40, 42), "empty": {}} {
		for _, fm := range []Format{PNG, SVG} {
			var b bytes.Buffer
			require.NoError(t, Render(&b, fm, m))
			require.NoError(t, os.WriteFile(dir+"/"+name+"."+string(fm), b.Bytes(), 0o644))
		}
	}
}

func TestRenderPNGCells(t *testing.T) {
	m := smallMatrix()
	var b bytes.Buffer
	rect, err := render(&b, PNG, m)
	require.NoError(t, err)
	img, err := png.Decode(&b)
	require.NoError(t, err)

	// The image grows with the rows: one more row is 14 px taller.
	m2 := smallMatrix()
	m2.Rows = append(m2.Rows, Row{Label: "[8] Extra", Rates: make([]*float64, 4)})
	var b2 bytes.Buffer
	require.NoError(t, Render(&b2, PNG, m2))
	cfg2, err := png.DecodeConfig(&b2)
	require.NoError(t, err)
	require.Equal(t, img.Bounds().Dx(), cfg2.Width)
	require.Equal(t, img.Bounds().Dy()+14, cfg2.Height)

	h := img.Bounds().Dy()
	nr, nd := len(m.Rows), len(m.Days)
	cellW := float64(rect.Max.X-rect.Min.X) / float64(nd)
	cellH := float64(rect.Max.Y-rect.Min.Y) / float64(nr)
	require.GreaterOrEqual(t, cellW*DPI/72, 20.0-0.01, "a day is at least 20 px wide")
	require.GreaterOrEqual(t, cellH*DPI/72, 14.0-0.01, "a row is at least 14 px high")
	for i, r := range m.Rows {
		for j := range r.Rates {
			// Centre of cell (row i from the top, day j from the left).
			x := (float64(rect.Min.X) + (float64(j)+0.5)*cellW) * DPI / 72
			y := float64(h) - (float64(rect.Max.Y)-(float64(i)+0.5)*cellH)*DPI/72
			got := color.RGBAModel.Convert(img.At(int(x), int(y))).(color.RGBA)
			want := BandColors[r.band(j)]
			require.Equal(t, want, got, "row %d (%s) day %d", i, r.Label, j)
		}
	}
}

func TestRenderSizes(t *testing.T) {
	tests := []struct {
		name     string
		m        Matrix
		minW     int
		wantH    func(h int) bool
		wantText string
	}{
		{"empty", Matrix{}, 320, func(h int) bool { return h == 160 }, "no data"},
		{"days but no rows", Matrix{Days: days(42)}, 320, func(h int) bool { return h == 160 }, "no data"},
		{"500 rows", bigMatrix(500, 42), 42 * 20, func(h int) bool { return h >= 500*14 && h < 500*14+200 }, "Klinikum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, Render(&b, PNG, tt.m))
			cfg, err := png.DecodeConfig(&b)
			require.NoError(t, err)
			require.GreaterOrEqual(t, cfg.Width, tt.minW)
			require.True(t, tt.wantH(cfg.Height), "height %d", cfg.Height)

			b.Reset()
			require.NoError(t, Render(&b, SVG, tt.m))
			require.Contains(t, b.String(), tt.wantText)
			requireXML(t, b.Bytes())
		})
	}
}

func TestRenderSVG(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, Render(&b, SVG, smallMatrix()))
	requireXML(t, b.Bytes())
	svg := b.String()
	for _, want := range []string{Title, "No imports", "0–1 %", "1–10 %", "≥ 10 %", "No data", "[4] Extreme", "2025-12-04"} {
		require.Contains(t, svg, escape(want))
	}
	// Vector, not an embedded raster; every band colour is used.
	require.NotContains(t, svg, "<image")
	for _, c := range BandColors[nodehealth.BandOnline:] { // black is vgsvg's default fill
		require.Contains(t, svg, fmt.Sprintf("fill:#%02X%02X%02X", c.R, c.G, c.B))
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		f    Format
		m    Matrix
		want string
	}{
		{"unknown format", "gif", smallMatrix(), "unknown format"},
		{"short row", PNG, Matrix{Days: days(3), Rows: []Row{{Label: "x", Rates: []*float64{nil}}}}, "has 1 rates for 3 days"},
		{"short no-data marks", SVG, Matrix{Days: days(2), Rows: []Row{{Label: "x", Rates: []*float64{nil, nil}, NoData: []bool{true}}}}, "has 1 no-data marks for 2 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Render(io.Discard, tt.f, tt.m)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestNoDataIsNotNoImports: a day without statistics is grey and a day
// with statistics but no imports black, in both formats, and the legend
// names both.
func TestNoDataIsNotNoImports(t *testing.T) {
	require.NotEqual(t, BandColors[nodehealth.BandNoImports], BandColors[BandNoData])
	tests := []struct {
		name   string
		noData []bool
		want   nodehealth.HeatBand
	}{
		{"no statistics", []bool{true}, BandNoData},
		{"statistics without imports", []bool{false}, nodehealth.BandNoImports},
		{"no marks at all", nil, nodehealth.BandNoImports},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Matrix{Days: days(1), Rows: []Row{{Label: "[1] Only", Rates: []*float64{nil}, NoData: tt.noData}}}
			require.Equal(t, tt.want, m.Rows[0].band(0))

			var b bytes.Buffer
			rect, err := render(&b, PNG, m)
			require.NoError(t, err)
			img, err := png.Decode(&b)
			require.NoError(t, err)
			x := float64(rect.Min.X+rect.Max.X) / 2 * DPI / 72
			y := float64(img.Bounds().Dy()) - float64(rect.Min.Y+rect.Max.Y)/2*DPI/72
			require.Equal(t, BandColors[tt.want], color.RGBAModel.Convert(img.At(int(x), int(y))).(color.RGBA))

			b.Reset()
			require.NoError(t, Render(&b, SVG, m))
			svg := b.String()
			require.Contains(t, svg, "No data")
			require.Contains(t, svg, "No imports")
			grey := BandColors[BandNoData]
			// The legend swatch is always grey; the cell adds a second fill.
			n := strings.Count(svg, fmt.Sprintf("fill:#%02X%02X%02X", grey.R, grey.G, grey.B))
			if tt.want == BandNoData {
				require.Equal(t, 2, n)
			} else {
				require.Equal(t, 1, n)
			}
		})
	}
}

func TestSort(t *testing.T) {
	rates := func(vs ...float64) []*float64 {
		out := make([]*float64, 0, len(vs))
		for _, v := range vs {
			if v < 0 {
				out = append(out, nil)
				continue
			}
			out = append(out, f(v))
		}
		return out
	}
	// 9 days: the first two are "older", the last 7 weigh 6×.
	m := Matrix{Days: days(9), Rows: []Row{
		{Label: "b-old", Rates: rates(50, 0, 0, 0, 0, 0, 0, 0, 0)},   // 50
		{Label: "a-recent", Rates: rates(0, 0, 0, 0, 0, 0, 0, 0, 9)}, // 54
		{Label: "c-none", Rates: rates(-1, -1, -1, -1, -1, -1, -1, -1, -1)},
		{Label: "a-none", Rates: rates(-1, -1, -1, -1, -1, -1, -1, -1, -1)},
		{Label: "d-tie", Rates: rates(0, 0, 0, 0, 0, 0, 0, 0, 9)}, // 54, after a-recent by label
	}}
	Sort(&m)
	var got []string
	for _, r := range m.Rows {
		got = append(got, r.Label)
	}
	require.Equal(t, []string{"a-recent", "d-tie", "b-old", "a-none", "c-none"}, got)
}

func BenchmarkRender500x42(b *testing.B) {
	m := bigMatrix(500, 42)
	Sort(&m)
	for _, fm := range []Format{PNG, SVG} {
		b.Run(string(fm), func(b *testing.B) {
			b.ReportAllocs()
			var n int64
			cpu0 := cpuTime()
			for b.Loop() {
				cw := &countWriter{}
				if err := Render(cw, fm, m); err != nil {
					b.Fatal(err)
				}
				n = cw.n
			}
			b.ReportMetric(float64(n), "bytes/image")
			// Process CPU time (all threads, GC included) per render: on a
			// shared, loaded machine ns/op measures the queue, this the work.
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

func requireXML(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(t, err)
	}
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
