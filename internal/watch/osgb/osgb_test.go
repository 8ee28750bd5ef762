package osgb_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/watch/osgb"
)

// dms converts degrees, minutes and seconds to decimal degrees.
func dms(d, m, s float64) float64 { return d + m/60 + s/3600 }

// tolerance is 1e-4 degrees: about 11 m of latitude, 7 m of longitude in
// Great Britain, above the Helmert transformation's ~5 m.
const tolerance = 1e-4

func TestToWGS84(t *testing.T) {
	tests := []struct {
		name              string
		easting, northing float64
		wantLat, wantLon  float64
	}{
		// OS guide, Annex C worked example (Caister water tower), converted
		// to WGS84 by the same Helmert parameters (movable-type.co.uk's
		// reference implementation gives 52°39′28.723″N 1°42′57.787″E).
		{"Caister water tower", 651409.903, 313177.270, dms(52, 39, 28.723), dms(1, 42, 57.787)},
		{"Big Ben", 530268, 179640, 51.5007, -0.1246},
		// ONS postcode directory centroids (their lat/long come from OSTN15,
		// so these also bound the Helmert approximation's error).
		{"BR8 7QP (Swanley)", 549571, 169349, 51.403454, 0.148926},
		{"AB1 0AA (Aberdeen)", 385386, 801193, 57.101474, -2.242851},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lat, lon := osgb.ToWGS84(tt.easting, tt.northing)
			require.InDelta(t, tt.wantLat, lat, tolerance, "latitude")
			require.InDelta(t, tt.wantLon, lon, tolerance, "longitude")
		})
	}
}

func TestToOSGB36(t *testing.T) {
	tests := []struct {
		name              string
		easting, northing float64
		wantLat, wantLon  float64
		delta             float64
	}{
		// OS guide, Annex C.2: to the printed 0.0001″ (3e-8°).
		{"OS worked example", 651409.903, 313177.270, dms(52, 39, 27.2531), dms(1, 43, 4.5177), 1e-7},
		// The false origin maps back to the true origin's latitude and
		// longitude when offset by E0, N0.
		{"true origin", 400000, -100000, 49, -2, 1e-9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lat, lon := osgb.ToOSGB36(tt.easting, tt.northing)
			require.InDelta(t, tt.wantLat, lat, tt.delta, "latitude")
			require.InDelta(t, tt.wantLon, lon, tt.delta, "longitude")
		})
	}
}

func TestToWGS84ShiftIsSmall(t *testing.T) {
	// The datum shift between OSGB36 and WGS84 is at most ~120 m over
	// Great Britain: a broken Helmert sign would move points by kilometres.
	for e := 100000.0; e <= 650000; e += 110000 {
		for n := 50000.0; n <= 1200000; n += 230000 {
			la1, lo1 := osgb.ToOSGB36(e, n)
			la2, lo2 := osgb.ToWGS84(e, n)
			dNorth := (la2 - la1) * 111000
			dEast := (lo2 - lo1) * 111000 * math.Cos(la1*math.Pi/180)
			require.Less(t, math.Hypot(dNorth, dEast), 150.0, "E %v N %v", e, n)
		}
	}
}

func TestInGreatBritain(t *testing.T) {
	tests := []struct {
		name              string
		easting, northing float64
		want              bool
	}{
		{"origin", 0, 0, true},
		{"far corner", 700000, 1300000, true},
		{"Leeds", 429917, 433655, true},
		{"negative easting", -1, 433655, false},
		{"negative northing", 429917, -1, false},
		{"east of the grid", 700001, 433655, false},
		{"north of the grid", 429917, 1300001, false},
		{"NaN", math.NaN(), 433655, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, osgb.InGreatBritain(tt.easting, tt.northing))
		})
	}
}
