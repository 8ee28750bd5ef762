// Package latin1 decodes ISO-8859-1 (Latin-1) text, whose every byte is the
// Unicode code point of the same number, to UTF-8.
package latin1

import (
	"io"
	"strings"
)

// NewReader reads all of r, ISO-8859-1 text, and returns it as UTF-8.
func NewReader(r io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	runes := make([]rune, len(b))
	for i, c := range b {
		runes[i] = rune(c)
	}
	return strings.NewReader(string(runes)), nil
}
