// Package osgb converts Ordnance Survey National Grid coordinates (eastings
// and northings on the OSGB36 datum, as the service directory reports them)
// to WGS84 latitude and longitude, for maps.
//
// The conversion follows the Ordnance Survey's "A guide to coordinate
// systems in Great Britain": an inverse Transverse Mercator projection on the
// Airy 1830 ellipsoid gives OSGB36 latitude and longitude, which a
// seven-parameter Helmert transformation moves to WGS84 (through earth-
// centred cartesian coordinates). The Helmert transformation is good to
// about 5 metres, plenty for placing a service on a map; it is not OSTN15.
package osgb

import "math"

// ellipsoid is a reference ellipsoid: semi-major axis A and semi-minor axis
// B, in metres.
type ellipsoid struct {
	A, B float64
}

// e2 returns the ellipsoid's eccentricity squared.
func (el ellipsoid) e2() float64 { return 1 - (el.B*el.B)/(el.A*el.A) }

var (
	// airy1830 is the ellipsoid of the OSGB36 datum.
	airy1830 = ellipsoid{A: 6377563.396, B: 6356256.909}
	// grs80 is the ellipsoid of WGS84 (to well under a millimetre).
	grs80 = ellipsoid{A: 6378137.000, B: 6356752.3141}
)

// National Grid projection constants.
const (
	// f0 is the scale factor on the central meridian.
	f0 = 0.9996012717
	// lat0Deg and lon0Deg are the true origin: 49°N, 2°W.
	lat0Deg = 49.0
	lon0Deg = -2.0
	// e0 and n0 are the grid coordinates of the true origin, in metres.
	e0 = 400000.0
	n0 = -100000.0
)

// helmert is a seven-parameter transformation: translations in metres,
// rotations in arc seconds, scale in parts per million.
type helmert struct {
	tx, ty, tz float64
	rx, ry, rz float64
	s          float64
}

// osgb36ToWGS84 are the published OSGB36 → WGS84 parameters (the inverse of
// the OS's WGS84 → OSGB36 set, every sign flipped).
var osgb36ToWGS84 = helmert{
	tx: 446.448, ty: -125.157, tz: 542.060,
	rx: 0.1502, ry: 0.2470, rz: 0.8421,
	s: -20.4894,
}

// Bounds of the National Grid's area, in metres.
const (
	// MaxEasting and MaxNorthing bound the grid; its origin is 0, 0.
	MaxEasting  = 700000
	MaxNorthing = 1300000
)

// InGreatBritain reports whether easting and northing fall inside the
// National Grid's area (0 ≤ E ≤ 700 000 m, 0 ≤ N ≤ 1 300 000 m). Points
// outside it are not National Grid coordinates and should not be converted.
func InGreatBritain(easting, northing float64) bool {
	return easting >= 0 && easting <= MaxEasting && northing >= 0 && northing <= MaxNorthing
}

// ToWGS84 converts a National Grid easting and northing (metres, OSGB36) to
// WGS84 latitude and longitude in decimal degrees, north and east positive.
// It is accurate to about 5 metres inside Great Britain; see InGreatBritain.
func ToWGS84(easting, northing float64) (lat, lon float64) {
	phi, lambda := gridToOSGB36(easting, northing)
	x, y, z := toCartesian(phi, lambda, 0, airy1830)
	x, y, z = osgb36ToWGS84.apply(x, y, z)
	phi, lambda = fromCartesian(x, y, z, grs80)
	return degrees(phi), degrees(lambda)
}

// ToOSGB36 converts a National Grid easting and northing (metres) to
// latitude and longitude on the OSGB36 datum (the graticule printed on OS
// maps), in decimal degrees. Most callers want ToWGS84.
func ToOSGB36(easting, northing float64) (lat, lon float64) {
	phi, lambda := gridToOSGB36(easting, northing)
	return degrees(phi), degrees(lambda)
}

// gridToOSGB36 is the inverse Transverse Mercator projection of the National
// Grid on the Airy 1830 ellipsoid; it returns radians.
func gridToOSGB36(easting, northing float64) (phi, lambda float64) {
	a, b := airy1830.A, airy1830.B
	e2 := airy1830.e2()
	n := (a - b) / (a + b)
	n2, n3 := n*n, n*n*n
	phi0, lambda0 := radians(lat0Deg), radians(lon0Deg)

	// meridional returns the meridional arc from the true origin's latitude
	// to phi, scaled by f0.
	meridional := func(phi float64) float64 {
		d, s := phi-phi0, phi+phi0
		return b * f0 * ((1+n+1.25*n2+1.25*n3)*d -
			(3*n+3*n2+21.0/8*n3)*math.Sin(d)*math.Cos(s) +
			(15.0/8*n2+15.0/8*n3)*math.Sin(2*d)*math.Cos(2*s) -
			35.0/24*n3*math.Sin(3*d)*math.Cos(3*s))
	}

	// Iterate the footpoint latitude until the arc matches the northing to
	// 0.01 mm; it converges in a handful of steps.
	phi = (northing-n0)/(a*f0) + phi0
	m := meridional(phi)
	for i := 0; i < 100 && math.Abs(northing-n0-m) >= 0.00001; i++ {
		phi += (northing - n0 - m) / (a * f0)
		m = meridional(phi)
	}

	sin, cos, tan := math.Sin(phi), math.Cos(phi), math.Tan(phi)
	sec := 1 / cos
	nu := a * f0 / math.Sqrt(1-e2*sin*sin)
	rho := a * f0 * (1 - e2) / math.Pow(1-e2*sin*sin, 1.5)
	eta2 := nu/rho - 1
	tan2, tan4, tan6 := tan*tan, math.Pow(tan, 4), math.Pow(tan, 6)
	nu3, nu5, nu7 := math.Pow(nu, 3), math.Pow(nu, 5), math.Pow(nu, 7)

	vii := tan / (2 * rho * nu)
	viii := tan / (24 * rho * nu3) * (5 + 3*tan2 + eta2 - 9*tan2*eta2)
	ix := tan / (720 * rho * nu5) * (61 + 90*tan2 + 45*tan4)
	x := sec / nu
	xi := sec / (6 * nu3) * (nu/rho + 2*tan2)
	xii := sec / (120 * nu5) * (5 + 28*tan2 + 24*tan4)
	xiia := sec / (5040 * nu7) * (61 + 662*tan2 + 1320*tan4 + 720*tan6)

	de := easting - e0
	de2 := de * de
	de3, de4 := de2*de, de2*de2
	de5, de6, de7 := de4*de, de4*de2, de4*de3
	phi = phi - vii*de2 + viii*de4 - ix*de6
	lambda = lambda0 + x*de - xi*de3 + xii*de5 - xiia*de7
	return phi, lambda
}

// toCartesian converts geodetic coordinates (radians, height in metres) on
// el to earth-centred cartesian coordinates.
func toCartesian(phi, lambda, h float64, el ellipsoid) (x, y, z float64) {
	e2 := el.e2()
	sin, cos := math.Sin(phi), math.Cos(phi)
	nu := el.A / math.Sqrt(1-e2*sin*sin)
	x = (nu + h) * cos * math.Cos(lambda)
	y = (nu + h) * cos * math.Sin(lambda)
	z = ((1-e2)*nu + h) * sin
	return x, y, z
}

// fromCartesian converts earth-centred cartesian coordinates to geodetic
// latitude and longitude (radians) on el, iterating the latitude to well
// under a millimetre.
func fromCartesian(x, y, z float64, el ellipsoid) (phi, lambda float64) {
	e2 := el.e2()
	p := math.Hypot(x, y)
	phi = math.Atan2(z, p*(1-e2))
	for range 10 {
		sin := math.Sin(phi)
		nu := el.A / math.Sqrt(1-e2*sin*sin)
		next := math.Atan2(z+e2*nu*sin, p)
		done := math.Abs(next-phi) < 1e-12
		phi = next
		if done {
			break
		}
	}
	return phi, math.Atan2(y, x)
}

// apply transforms cartesian coordinates with the small-angle Helmert
// formula the Ordnance Survey publishes.
func (t helmert) apply(x, y, z float64) (float64, float64, float64) {
	const arcsec = math.Pi / (180 * 3600)
	rx, ry, rz := t.rx*arcsec, t.ry*arcsec, t.rz*arcsec
	s1 := 1 + t.s*1e-6
	return t.tx + s1*x - rz*y + ry*z,
		t.ty + rz*x + s1*y - rx*z,
		t.tz - ry*x + rx*y + s1*z
}

func radians(deg float64) float64 { return deg * math.Pi / 180 }

func degrees(rad float64) float64 { return rad * 180 / math.Pi }
