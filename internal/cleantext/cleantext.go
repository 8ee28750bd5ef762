// Package cleantext checks that text from outside is fit to store and show:
// valid UTF-8 without control characters (Postgres refuses NUL in text, and
// control characters have no place in clinical fields, parameters or
// settings).
package cleantext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Valid reports whether s is valid UTF-8 whose only control characters
// (Unicode Cc: C0, DEL and C1) are among allowed, e.g. "\t" or "\t\n\r".
func Valid(s, allowed string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && !strings.ContainsRune(allowed, r) {
			return false
		}
	}
	return true
}
