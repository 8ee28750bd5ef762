package heatmap

import (
	"image"
	"image/color"
)

// The PNG palette: a ramp of greys (white background, black text and its
// anti-aliasing) plus the band colours. A 500-row heatmap is some 8
// million pixels; as 1 byte per pixel instead of 4 the PNG encoder has a
// quarter of the work and the file is smaller, and nothing is lost: the
// plot only draws black on white plus the band colours.
const greyLevels = 252

var (
	pngPalette color.Palette
	// greyIndex maps a grey value to its palette index.
	greyIndex [256]uint8
	// bandIndex are the palette indexes of the non-grey band colours.
	bandIndex []uint8
)

func init() {
	for i := range greyLevels {
		v := uint8((i*255 + (greyLevels-1)/2) / (greyLevels - 1))
		pngPalette = append(pngPalette, color.RGBA{v, v, v, 0xff})
	}
	for v := range 256 {
		greyIndex[v] = uint8((v*(greyLevels-1) + 127) / 255)
	}
	for _, c := range BandColors {
		if c.R == c.G && c.G == c.B {
			continue
		}
		bandIndex = append(bandIndex, uint8(len(pngPalette)))
		pngPalette = append(pngPalette, c)
	}
}

// paletted converts the opaque canvas image to pngPalette: greys map
// exactly (to the nearest ramp step), band colours exactly, anything else
// (anti-aliased swatch borders) to the nearest palette entry.
func paletted(src *image.RGBA) *image.Paletted {
	b := src.Bounds()
	dst := image.NewPaletted(b, pngPalette)
	var (
		lastR, lastG, lastB uint8
		lastIdx             uint8
		haveLast            bool
	)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		s := src.Pix[src.PixOffset(b.Min.X, y):]
		d := dst.Pix[dst.PixOffset(b.Min.X, y):]
		for x := range b.Dx() {
			r, g, bl := s[4*x], s[4*x+1], s[4*x+2]
			if haveLast && r == lastR && g == lastG && bl == lastB {
				d[x] = lastIdx
				continue
			}
			var idx uint8
			if r == g && g == bl {
				idx = greyIndex[r]
			} else {
				idx = nearest(r, g, bl)
			}
			d[x] = idx
			lastR, lastG, lastB, lastIdx, haveLast = r, g, bl, idx, true
		}
	}
	return dst
}

// nearest is the palette index closest to a non-grey colour: a band
// colour or the grey of the same luminance.
func nearest(r, g, b uint8) uint8 {
	lum := (299*int(r) + 587*int(g) + 114*int(b)) / 1000
	best := greyIndex[lum]
	bestD := dist(r, g, b, pngPalette[best].(color.RGBA))
	for _, i := range bandIndex {
		if d := dist(r, g, b, pngPalette[i].(color.RGBA)); d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

func dist(r, g, b uint8, c color.RGBA) int {
	dr, dg, db := int(r)-int(c.R), int(g)-int(c.G), int(b)-int(c.B)
	return dr*dr + dg*dg + db*db
}
