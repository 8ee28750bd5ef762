package broker

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-health/vigil/internal/latin1"
)

// XML shapes of the broker's documents. Element names carry no namespace,
// so encoding/xml matches them whether or not the broker qualifies them
// with Namespace.
type (
	xmlNodeList struct {
		XMLName xml.Name
		Nodes   []xmlNode `xml:"node"`
	}
	xmlNode struct {
		XMLName     xml.Name
		ID          string `xml:"id"`
		ClientDN    string `xml:"clientDN"`
		LastContact string `xml:"last-contact"`
		Websocket   string `xml:"websocket"`
	}
	xmlStats struct {
		XMLName    xml.Name
		Start      string `xml:"start"`
		LastWrite  string `xml:"last-write"`
		LastReject string `xml:"last-reject"`
		Imported   string `xml:"imported"`
		Updated    string `xml:"updated"`
		Invalid    string `xml:"invalid"`
		Failed     string `xml:"failed"`
		LastErrors struct {
			Errors []xmlError `xml:"error"`
		} `xml:"last-errors"`
	}
	xmlError struct {
		Timestamp string `xml:"timestamp,attr"`
		Repeats   string `xml:"repeats,attr"`
		Content   string `xml:",chardata"`
	}
	xmlProperties struct {
		XMLName xml.Name
		Entries []struct {
			Key   string `xml:"key,attr"`
			Value string `xml:",chardata"`
		} `xml:"entry"`
	}
)

// decode unmarshals body into v and checks that the root element is
// called root.
func decode(body []byte, root string, v any, name func() xml.Name) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	d.CharsetReader = charsetReader
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, root, err)
	}
	if got := name().Local; got != root {
		return fmt.Errorf("%w: root element <%s>, want <%s>", ErrMalformed, got, root)
	}
	return nil
}

// charsetReader lets documents declare ISO-8859-1 (converted to UTF-8) or
// US-ASCII besides UTF-8.
func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "us-ascii", "ascii", "utf8":
		return r, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1":
		return latin1.NewReader(r)
	}
	return nil, fmt.Errorf("unsupported charset %q", charset)
}

func parseNodeList(body []byte) ([]Node, error) {
	var doc xmlNodeList
	if err := decode(body, "node-list", &doc, func() xml.Name { return doc.XMLName }); err != nil {
		return nil, err
	}
	nodes := make([]Node, 0, len(doc.Nodes))
	for _, x := range doc.Nodes {
		if n := x.node(); n.ID != "" {
			nodes = append(nodes, n)
		}
	}
	slices.SortStableFunc(nodes, func(a, b Node) int { return CompareIDs(a.ID, b.ID) })
	return nodes, nil
}

func parseNode(body []byte) (Node, error) {
	var doc xmlNode
	if err := decode(body, "node", &doc, func() xml.Name { return doc.XMLName }); err != nil {
		return Node{}, err
	}
	return doc.node(), nil
}

func (x xmlNode) node() Node {
	ws, _ := strconv.ParseBool(strings.TrimSpace(x.Websocket))
	return Node{
		ID:          strings.TrimSpace(x.ID),
		ClientDN:    strings.TrimSpace(x.ClientDN),
		LastContact: ParseTime(x.LastContact),
		Websocket:   ws,
	}
}

func parseStats(body []byte) (*ImportStats, error) {
	var doc xmlStats
	if err := decode(body, "import-statistics", &doc, func() xml.Name { return doc.XMLName }); err != nil {
		return nil, err
	}
	s := &ImportStats{
		Start:      ParseTime(doc.Start),
		LastWrite:  ParseTime(doc.LastWrite),
		LastReject: ParseTime(doc.LastReject),
	}
	for _, f := range []struct {
		name string
		text string
		dst  *int64
	}{
		{"imported", doc.Imported, &s.Imported},
		{"updated", doc.Updated, &s.Updated},
		{"invalid", doc.Invalid, &s.Invalid},
		{"failed", doc.Failed, &s.Failed},
	} {
		text := strings.TrimSpace(f.text)
		if text == "" {
			continue
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: <%s> is %q, not a count", ErrMalformed, f.name, text)
		}
		*f.dst = n
	}
	for _, e := range doc.LastErrors.Errors {
		ie := ImportError{Repeats: 1, Content: capContent(strings.TrimSpace(e.Content))}
		if t := ParseTime(e.Timestamp); t != nil {
			ie.Timestamp = *t
		}
		if r, err := strconv.ParseInt(strings.TrimSpace(e.Repeats), 10, 64); err == nil && r > 1 {
			ie.Repeats = r
		}
		s.Errors = append(s.Errors, ie)
	}
	return s, nil
}

// capContent cuts s to MaxErrorContent characters.
func capContent(s string) string {
	if utf8.RuneCountInString(s) <= MaxErrorContent {
		return s
	}
	return string([]rune(s)[:MaxErrorContent])
}

func parseProperties(body []byte) ([]Property, error) {
	var doc xmlProperties
	if err := decode(body, "properties", &doc, func() xml.Name { return doc.XMLName }); err != nil {
		return nil, err
	}
	byKey := make(map[string]string, len(doc.Entries))
	for _, e := range doc.Entries {
		key := strings.TrimSpace(e.Key)
		if key == "" {
			continue
		}
		byKey[key] = PropertyValue(e.Value)
	}
	props := make([]Property, 0, len(byKey))
	for k, v := range byKey {
		props = append(props, Property{Key: k, Value: v})
	}
	slices.SortFunc(props, func(a, b Property) int { return strings.Compare(a.Key, b.Key) })
	return props, nil
}

// MissingValue stands for an absent or empty value, as in the seed's files.
const MissingValue = "-"

// PropertyValue normalises a resource value as the seed stores it: line
// breaks removed, surrounding space trimmed, empty → MissingValue.
func PropertyValue(v string) string {
	v = strings.TrimSpace(strings.NewReplacer("\r", "", "\n", "").Replace(v))
	if v == "" {
		return MissingValue
	}
	return v
}

// timeLayouts are the timestamp forms brokers and DWH nodes send, tried in
// order. Fractional seconds are accepted by every layout when parsing.
var timeLayouts = []string{
	time.RFC3339,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
}

// ParseTime parses a broker timestamp (RFC 3339 with or without fraction
// and offset; no offset means UTC) and returns it in UTC, or nil when s is
// empty or not a timestamp.
func ParseTime(s string) *time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return &t
		}
	}
	return nil
}

// CompareIDs orders node ids numerically when both are decimal numbers and
// as strings otherwise (numbers first).
func CompareIDs(a, b string) int {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(na, nb)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}
