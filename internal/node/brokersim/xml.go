package brokersim

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	// Stats timestamps are written in the nodes' zone, Europe/Berlin; embed
	// the zone database so this does not depend on the host's tzdata.
	_ "time/tzdata"

	"github.com/vigil-health/vigil/internal/node/broker"
)

// nodeZone is the zone DWH nodes write their timestamps in.
var nodeZone = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return loc
}()

const xmlHeader = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

// textEscaper escapes character data as a Java XML writer does: markup
// characters only, line breaks kept.
var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#13;")

// attrEscaper escapes attribute values.
var attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "\n", "&#10;", "\r", "&#13;", "\t", "&#9;")

// instant writes t as java.time.Instant does (UTC, fraction only when
// non-zero).
func instant(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// nodeTime writes t as a DWH node does: milliseconds and the Berlin offset.
func nodeTime(t time.Time) string { return t.In(nodeZone).Format("2006-01-02T15:04:05.000Z07:00") }

func element(b *bytes.Buffer, name, text string) {
	b.WriteString("<" + name + ">")
	textEscaper.WriteString(b, text)
	b.WriteString("</" + name + ">")
}

// writeNode writes a <node> element; xmlns is added for a root element.
func writeNode(b *bytes.Buffer, n broker.Node, root bool) {
	if root {
		b.WriteString(`<node xmlns="` + broker.Namespace + `">`)
	} else {
		b.WriteString("<node>")
	}
	element(b, "id", n.ID)
	element(b, "clientDN", n.ClientDN)
	if n.LastContact != nil {
		element(b, "last-contact", instant(*n.LastContact))
	}
	element(b, "websocket", strconv.FormatBool(n.Websocket))
	b.WriteString("</node>")
}

func nodeListXML(nodes []broker.Node) []byte {
	var b bytes.Buffer
	b.Grow(64 + 200*len(nodes))
	b.WriteString(xmlHeader)
	b.WriteString(`<node-list xmlns="` + broker.Namespace + `">`)
	for _, n := range nodes {
		writeNode(&b, n, false)
	}
	b.WriteString("</node-list>")
	return b.Bytes()
}

func nodeXML(n broker.Node) []byte {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	writeNode(&b, n, true)
	return b.Bytes()
}

// statsXML writes the DWH's import-statistics document (un-namespaced,
// repeats omitted when 1, as the DWH does).
func statsXML(st *stats) []byte {
	var b bytes.Buffer
	b.Grow(512 + 300*len(st.errors))
	b.WriteString(xmlHeader)
	b.WriteString("<import-statistics>\n")
	b.WriteString("    ")
	element(&b, "start", nodeTime(st.start))
	if !st.lastWrite.IsZero() {
		b.WriteString("\n    ")
		element(&b, "last-write", nodeTime(st.lastWrite))
	}
	if !st.lastReject.IsZero() {
		b.WriteString("\n    ")
		element(&b, "last-reject", nodeTime(st.lastReject))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"imported", st.imported}, {"updated", st.updated}, {"invalid", st.invalid}, {"failed", st.failed}} {
		b.WriteString("\n    ")
		element(&b, f.name, strconv.FormatInt(f.v, 10))
	}
	if len(st.errors) == 0 {
		b.WriteString("\n    <last-errors/>\n")
	} else {
		b.WriteString("\n    <last-errors>")
		for _, e := range st.errors {
			b.WriteString("\n        <error ")
			if e.repeats > 1 {
				b.WriteString(`repeats="` + strconv.FormatInt(e.repeats, 10) + `" `)
			}
			b.WriteString(`timestamp="`)
			attrEscaper.WriteString(&b, nodeTime(e.at))
			b.WriteString(`">`)
			textEscaper.WriteString(&b, e.content)
			b.WriteString("</error>")
		}
		b.WriteString("\n    </last-errors>\n")
	}
	b.WriteString("</import-statistics>\n")
	return b.Bytes()
}

// propertiesXML writes a Java properties XML document (as
// Properties.storeToXML does), entries in the given order.
func propertiesXML(props []broker.Property) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="no"?>` + "\n")
	b.WriteString(`<!DOCTYPE properties SYSTEM "http://java.sun.com/dtd/properties.dtd">` + "\n")
	b.WriteString("<properties>\n")
	for _, p := range props {
		b.WriteString(`<entry key="`)
		attrEscaper.WriteString(&b, p.Key)
		b.WriteString(`">`)
		textEscaper.WriteString(&b, p.Value)
		b.WriteString("</entry>\n")
	}
	b.WriteString("</properties>\n")
	return b.Bytes()
}

func brokerStatusXML(now time.Time, uptime time.Duration) []byte {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	b.WriteString("<broker-status>")
	element(&b, "timestamp", instant(now))
	element(&b, "uptime", "P"+strconv.Itoa(int(uptime.Hours()/24))+"D")
	b.WriteString(`<node-software><module id="broker-api"><version>1.3.4</version></module>`)
	b.WriteString(`<module id="dwh"><version>` + CurrentDWHVersion + `</version></module></node-software>`)
	b.WriteString("</broker-status>")
	return b.Bytes()
}
