package chart

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func f(v float64) *float64 { return &v }

// requireXML checks the markup is well-formed XML and returns the text of
// the elements named name.
func requireXML(t *testing.T, svg string, name string) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader([]byte(svg)))
	var (
		out  []string
		in   bool
		text strings.Builder
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == name {
				in = true
				text.Reset()
			}
		case xml.CharData:
			if in {
				text.Write(tok)
			}
		case xml.EndElement:
			if tok.Name.Local == name && in {
				out = append(out, text.String())
				in = false
			}
		}
	}
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		top  float64
		n    int
		want []float64
	}{
		{0, 4, []float64{0, 0.5, 1}},
		{-3, 4, []float64{0, 0.5, 1}},
		{1, 4, []float64{0, 0.5, 1}},
		{7, 4, []float64{0, 2, 4, 6, 8}},
		{10, 4, []float64{0, 5, 10}},
		{95, 4, []float64{0, 50, 100}},
		{600, 4, []float64{0, 200, 400, 600}},
		{0.3, 3, []float64{0, 0.1, 0.2, 0.3}},
	}
	for _, tt := range tests {
		got := NiceTicks(tt.top, tt.n)
		require.InDeltaSlice(t, tt.want, got, 1e-9, "top %v", tt.top)
		require.GreaterOrEqual(t, got[len(got)-1], tt.top)
	}
}

func TestDurationUnit(t *testing.T) {
	tests := []struct {
		max  float64
		div  float64
		unit string
	}{
		{0, 1, "seconds"},
		{179, 1, "seconds"},
		{180, 60, "minutes"},
		{3*3600 - 1, 60, "minutes"},
		{3 * 3600, 3600, "hours"},
	}
	for _, tt := range tests {
		div, unit := DurationUnit(tt.max)
		require.Equal(t, tt.div, div, "%v", tt.max)
		require.Equal(t, tt.unit, unit, "%v", tt.max)
	}
}

func TestLine(t *testing.T) {
	tests := []struct {
		name       string
		chart      Line
		paths      int
		subpaths   int
		circles    int
		wantNoData bool
	}{
		{
			name: "two series with a gap",
			chart: Line{ID: "mtta", Title: "MTTA <per day>", Desc: "Mean time to acknowledge", XLabel: "Day", YLabel: "seconds",
				Labels: []string{"05-01", "05-02", "05-03", "05-04"},
				Series: []Series{{Name: "MTTA", Values: []*float64{f(10), nil, f(30), f(20)}}, {Name: "MTTR & more", Values: []*float64{f(100), f(200), f(300), f(50)}}}},
			paths: 2, subpaths: 3, circles: 7,
		},
		{
			name:  "one point",
			chart: Line{ID: "one", Title: "One", Labels: []string{"today"}, Series: []Series{{Name: "a", Values: []*float64{f(3)}}}},
			paths: 1, subpaths: 1, circles: 1,
		},
		{
			name:       "no values",
			chart:      Line{ID: "none", Title: "None", Labels: []string{"a", "b"}, Series: []Series{{Name: "a", Values: []*float64{nil, nil}}}},
			wantNoData: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.chart.SVG()
			require.NoError(t, err)
			svg := string(out)
			titles := requireXML(t, svg, "title")
			require.Equal(t, tt.chart.Title, titles[0], "the chart's accessible name comes first")
			require.Contains(t, svg, `role="img"`)
			require.Contains(t, svg, `aria-labelledby="`+tt.chart.ID+`-title `+tt.chart.ID+`-desc"`)
			require.NotContains(t, svg, "<per day>", "text is escaped")
			require.Equal(t, tt.paths, strings.Count(svg, "<path "))
			require.Equal(t, tt.subpaths, strings.Count(svg, `d="M`)+strings.Count(svg, " M"))
			require.Equal(t, tt.circles, strings.Count(svg, "<circle "))
			if tt.wantNoData {
				require.Contains(t, svg, ">no data<")
			} else {
				require.NotContains(t, svg, ">no data<")
			}
			for _, l := range tt.chart.Labels {
				require.Contains(t, svg, ">"+l+"<", "x label")
			}
		})
	}
	_, err := Line{ID: "bad", Labels: []string{"a"}, Series: []Series{{Name: "x", Values: nil}}}.SVG()
	require.ErrorContains(t, err, `series "x" has 0 values for 1 labels`)
}

func TestLineThinsXLabels(t *testing.T) {
	labels := make([]string, 30)
	values := make([]*float64, 30)
	for i := range labels {
		labels[i] = "d" + string(rune('A'+i))
		values[i] = f(float64(i))
	}
	out, err := Line{ID: "many", Title: "Many", Labels: labels, Series: []Series{{Name: "v", Values: values}}}.SVG()
	require.NoError(t, err)
	svg := string(out)
	shown := 0
	for _, l := range labels {
		if strings.Contains(svg, ">"+l+"<") {
			shown++
		}
	}
	require.LessOrEqual(t, shown, maxXLabels+1)
	require.Contains(t, svg, ">"+labels[0]+"<", "first label")
	require.Contains(t, svg, ">"+labels[29]+"<", "last label")
}

func TestBars(t *testing.T) {
	c := Bars{ID: "sev", Title: "Incidents per severity", Desc: "Incidents opened in the window, by severity", ValueLabel: "incidents",
		Bars: []Bar{{"CRITICAL", 2}, {"HIGH", 6}, {"MEDIUM", 0}, {`A "very" long staff member name <x>`, 3}}}
	svg := string(c.SVG())
	requireXML(t, svg, "title")
	require.Equal(t, 4, strings.Count(svg, "<rect "))
	require.NotContains(t, svg, "<x>")
	// Widths are proportional: HIGH is three times CRITICAL.
	width := func(label string) string {
		i := strings.Index(svg, "<title>"+label+":")
		require.Positive(t, i, label)
		j := strings.LastIndex(svg[:i], `width="`)
		return svg[j+7 : j+7+strings.Index(svg[j+7:], `"`)]
	}
	require.Equal(t, "0", width("MEDIUM"))
	high, err := strconv.ParseFloat(width("HIGH"), 64)
	require.NoError(t, err)
	critical, err := strconv.ParseFloat(width("CRITICAL"), 64)
	require.NoError(t, err)
	require.InDelta(t, 3*critical, high, 0.05)
	require.Contains(t, svg, "…", "long labels are shortened")

	empty := string(Bars{ID: "e", Title: "Empty"}.SVG())
	requireXML(t, empty, "title")
	require.Contains(t, empty, ">no data<")
}
