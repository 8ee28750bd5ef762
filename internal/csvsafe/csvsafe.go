// Package csvsafe writes CSV that spreadsheets open as data, never as
// formulas. A cell that begins with '=', '+', '-', '@', a tab or a carriage
// return is a formula (or the start of one) to Excel, LibreOffice and
// Google Sheets: text a broker node reports, such as
// =HYPERLINK("http://evil","click") or =cmd|' /C calc'!A0, would run or
// leak data when a user opens an export. Following OWASP's CSV injection
// advice, Writer prefixes such a cell with a single quote ('), which the
// spreadsheet shows as text and a reader can strip.
//
// Two kinds of cell keep their sign: a plain number, such as -3, +7 or
// -0.5 (data, not a formula, so numeric columns stay numbers), and a lone
// "-" (the exports' missing-value marker; a sign alone carries no formula).
// Anything else that starts with '-' or '+', such as -1+cmd|' /C calc'!A0,
// is prefixed.
package csvsafe

import (
	"encoding/csv"
	"io"
	"regexp"
)

// Writer is a csv.Writer that neutralises formula cells. Set Comma and
// UseCRLF before the first Write, as with csv.Writer.
type Writer struct {
	*csv.Writer
	buf []string
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{Writer: csv.NewWriter(w)}
}

// Write writes one record with every cell passed through Cell. The record
// itself is not modified.
func (w *Writer) Write(record []string) error {
	w.buf = w.buf[:0]
	for _, f := range record {
		w.buf = append(w.buf, Cell(f))
	}
	return w.Writer.Write(w.buf)
}

// WriteAll writes every record through Write and flushes.
func (w *Writer) WriteAll(records [][]string) error {
	for _, r := range records {
		if err := w.Write(r); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// number is a plain decimal number, optionally signed, with an optional
// fraction and exponent: what a spreadsheet reads as a number, never as a
// formula.
var number = regexp.MustCompile(`^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$`)

// Cell returns s neutralised for a CSV cell: prefixed with ' when it would
// start a formula, unchanged otherwise.
func Cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '@', '\t', '\r':
		return "'" + s
	case '+', '-':
		if s == "-" || number.MatchString(s) {
			return s
		}
		return "'" + s
	}
	return s
}
