// Package broker is a client of a research data broker's admin API (AKTIN
// broker style): the node list, each node's last contact, its import
// statistics and its software resources, all as XML.
package broker

import (
	"strings"
	"time"
)

// Namespace is the XML namespace of the broker's exchange documents
// (node-list, node).
const Namespace = "http://aktin.org/ns/exchange"

// Resource names a node publishes as Java properties XML.
const (
	ResourceVersions      = "versions"
	ResourceRScript       = "rscript"
	ResourcePython        = "python"
	ResourceImportScripts = "import-scripts"
)

// Resources lists the resources a scan fetches, in a fixed order.
var Resources = []string{ResourceVersions, ResourceRScript, ResourcePython, ResourceImportScripts}

// Node is one entry of the broker's node list, or GET /broker/node/{id}.
type Node struct {
	// ID is the broker's node id (a decimal number as text).
	ID string `json:"id"`
	// ClientDN is the node's client distinguished name.
	ClientDN string `json:"client_dn,omitempty"`
	// LastContact is the last time the node authenticated; nil when the
	// broker does not say.
	LastContact *time.Time `json:"last_contact,omitempty"`
	// Websocket is true while the node holds a websocket open.
	Websocket bool `json:"websocket,omitempty"`
}

// ImportStats is a node's cumulative import statistics since its DWH
// started (GET /broker/node/{id}/stats). Times the node did not report are
// nil.
type ImportStats struct {
	// Start is when the node's DWH started; the counters reset then.
	Start      *time.Time `json:"start,omitempty"`
	LastWrite  *time.Time `json:"last_write,omitempty"`
	LastReject *time.Time `json:"last_reject,omitempty"`
	Imported   int64      `json:"imported"`
	Updated    int64      `json:"updated"`
	Invalid    int64      `json:"invalid"`
	Failed     int64      `json:"failed"`
	// Errors are the node's last import errors in the order the broker
	// sent them (AKTIN nodes send the oldest first).
	Errors []ImportError `json:"errors,omitempty"`
}

// ImportError is one entry of <last-errors>.
type ImportError struct {
	Timestamp time.Time `json:"timestamp"`
	// Repeats is how often the error occurred; 1 when the broker omits it.
	Repeats int64  `json:"repeats"`
	Content string `json:"content"`
}

// Property is one <entry key="k">v</entry> of a Java properties XML
// resource. Resources are slices sorted by key, not maps, so they can cross
// workflow code deterministically.
type Property struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// CommonName returns the CN attribute of a distinguished name such as
// "CN=Klinikum Am Hafen,O=AKTIN,C=DE" (RFC 4514 escapes undone), or "" when
// it has none. It names a node where its settings give no name.
func CommonName(dn string) string {
	var attr, val []rune
	inValue, escaped := false, false
	flush := func() string {
		cn := ""
		if strings.EqualFold(strings.TrimSpace(string(attr)), "CN") {
			cn = strings.TrimSpace(string(val))
		}
		attr, val, inValue = attr[:0], val[:0], false
		return cn
	}
	for _, r := range dn {
		switch {
		case escaped:
			escaped = false
			if inValue {
				val = append(val, r)
			} else {
				attr = append(attr, r)
			}
		case r == '\\':
			escaped = true
		case r == '=' && !inValue:
			inValue = true
		case r == ',' || r == ';' || r == '+':
			if cn := flush(); cn != "" {
				return cn
			}
		case inValue:
			val = append(val, r)
		default:
			attr = append(attr, r)
		}
	}
	return flush()
}
