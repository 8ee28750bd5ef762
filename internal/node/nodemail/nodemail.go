// Package nodemail renders the e-mails sent to a broker node's site when one
// of its monitored conditions (OFFLINE, NO IMPORTS, DWH OUTDATED, EXTREME
// ERROR RATE) begins, persists (reminder) or clears (recovered).
//
// The German texts follow the seed monitor's mails and subjects; English is
// the same content. Every mail has a text and an HTML body; the HTML is
// escaped by html/template.
package nodemail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"math"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
	_ "time/tzdata" // Europe/Berlin must be available on minimal images
)

// Language selects the mail's language.
type Language string

// The languages.
const (
	// German is the default, the seed monitor's language.
	German  Language = "de"
	English Language = "en"
)

// Kind is why the mail is sent.
type Kind string

// The kinds.
const (
	// KindAlert: the condition has just begun.
	KindAlert Kind = "alert"
	// KindReminder: the condition still holds after the re-send interval.
	KindReminder Kind = "reminder"
	// KindRecovered: the condition has cleared.
	KindRecovered Kind = "recovered"
)

// The conditions that are mailed, spelled as the node status uses them.
const (
	ConditionOffline   = "OFFLINE"
	ConditionNoImports = "NO IMPORTS"
	ConditionOutdated  = "DWH OUTDATED"
	ConditionErrorRate = "EXTREME ERROR RATE"
)

// Conditions lists the mailed conditions in a fixed order.
var Conditions = []string{ConditionOffline, ConditionNoImports, ConditionOutdated, ConditionErrorRate}

// Languages and Kinds list the supported values in a fixed order.
var (
	Languages = []Language{German, English}
	Kinds     = []Kind{KindAlert, KindReminder, KindRecovered}
)

// DefaultZone is the display zone when Data.Zone is nil.
const DefaultZone = "Europe/Berlin"

// Unknown is shown for a missing time, version or rate.
const Unknown = "???"

// Data is what a mail tells about a node.
type Data struct {
	NodeID     string
	ClinicName string
	// Condition is one of the Condition constants.
	Condition string
	// LastContact is the node's last contact with the broker (nil: unknown).
	LastContact *time.Time
	// LastWrite is the node's last successful import (nil: unknown).
	LastWrite *time.Time
	// DWHVersion is the node's installed DWH version; CurrentDWHVersion and
	// CurrentI2B2Version are the current releases.
	DWHVersion, CurrentDWHVersion, CurrentI2B2Version string
	// ErrorRate is the import error rate in percent (12.5 means 12.5 %).
	ErrorRate *float64
	// ThresholdHours is the threshold the condition exceeded (OFFLINE,
	// NO IMPORTS); 0 leaves it out of the text.
	ThresholdHours int
	// Since is when the condition began (zero: unknown).
	Since time.Time
	// Zone is the display time zone; nil means Europe/Berlin.
	Zone *time.Location
}

// view is what the templates see: every value already formatted.
type view struct {
	Subject            string
	Clinic             string
	NodeID             string
	LastContact        string
	LastWrite          string
	Since              string
	DWHVersion         string
	CurrentDWHVersion  string
	CurrentI2B2Version string
	ErrorRate          string
	ThresholdHours     int
	Reminder           bool
}

//go:embed templates/*.tmpl
var files embed.FS

type langTemplates struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

var templates = mustParse()

func mustParse() map[Language]langTemplates {
	out := make(map[Language]langTemplates, len(Languages))
	for _, l := range Languages {
		name := string(l)
		t := texttemplate.Must(texttemplate.New(name).Option("missingkey=error").ParseFS(files, "templates/"+name+".txt.tmpl"))
		h := htmltemplate.Must(htmltemplate.New(name).Option("missingkey=error").ParseFS(files, "templates/"+name+".html.tmpl"))
		out[l] = langTemplates{text: t, html: h}
	}
	return out
}

// slugs names each condition's template blocks.
var slugs = map[string]string{
	ConditionOffline:   "offline",
	ConditionNoImports: "no_imports",
	ConditionOutdated:  "outdated",
	ConditionErrorRate: "error_rate",
}

// subjects holds the alert and recovered subjects per language and
// condition; reminders prefix the alert subject with reminderPrefix.
var subjects = map[Language]map[Kind]map[string]string{
	German: {
		KindAlert: {
			ConditionOffline:   "Automatische Information: AKTIN DWH Offline",
			ConditionNoImports: "Automatische Information: AKTIN DWH Keine Imports",
			ConditionOutdated:  "Automatische Information: AKTIN DWH Version veraltet",
			ConditionErrorRate: "Automatische Information: AKTIN DWH Hohe Fehlerrate",
		},
		KindRecovered: {
			ConditionOffline:   "Automatische Information: AKTIN DWH wieder erreichbar",
			ConditionNoImports: "Automatische Information: AKTIN DWH Imports wieder aktiv",
			ConditionOutdated:  "Automatische Information: AKTIN DWH Version aktuell",
			ConditionErrorRate: "Automatische Information: AKTIN DWH Fehlerrate normalisiert",
		},
	},
	English: {
		KindAlert: {
			ConditionOffline:   "Automatic notice: AKTIN DWH offline",
			ConditionNoImports: "Automatic notice: AKTIN DWH no imports",
			ConditionOutdated:  "Automatic notice: AKTIN DWH version outdated",
			ConditionErrorRate: "Automatic notice: AKTIN DWH high error rate",
		},
		KindRecovered: {
			ConditionOffline:   "Automatic notice: AKTIN DWH reachable again",
			ConditionNoImports: "Automatic notice: AKTIN DWH imports active again",
			ConditionOutdated:  "Automatic notice: AKTIN DWH version up to date",
			ConditionErrorRate: "Automatic notice: AKTIN DWH error rate back to normal",
		},
	},
}

var reminderPrefix = map[Language]string{German: "Erinnerung: ", English: "Reminder: "}

// ParseLanguage accepts "de" or "en" (case-insensitive, "" means German).
func ParseLanguage(s string) (Language, error) {
	switch Language(strings.ToLower(strings.TrimSpace(s))) {
	case "", German:
		return German, nil
	case English:
		return English, nil
	}
	return "", fmt.Errorf("nodemail: unknown language %q (want de or en)", s)
}

// Render returns the subject and the text and HTML bodies of a mail.
func Render(lang Language, kind Kind, d Data) (subject, text, html string, err error) {
	tpl, ok := templates[lang]
	if !ok {
		return "", "", "", fmt.Errorf("nodemail: unknown language %q", lang)
	}
	slug, ok := slugs[d.Condition]
	if !ok {
		return "", "", "", fmt.Errorf("nodemail: unknown condition %q", d.Condition)
	}
	var block string
	switch kind {
	case KindAlert, KindReminder:
		subject = subjects[lang][KindAlert][d.Condition]
		block = "alert." + slug
	case KindRecovered:
		subject = subjects[lang][KindRecovered][d.Condition]
		block = "recovered." + slug
	default:
		return "", "", "", fmt.Errorf("nodemail: unknown kind %q", kind)
	}
	if kind == KindReminder {
		subject = reminderPrefix[lang] + subject
	}

	zone := d.Zone
	if zone == nil {
		zone, err = time.LoadLocation(DefaultZone)
		if err != nil {
			return "", "", "", fmt.Errorf("nodemail: load %s: %w", DefaultZone, err)
		}
	}
	v := view{
		Subject:            subject,
		Clinic:             orUnknown(d.ClinicName),
		NodeID:             orUnknown(d.NodeID),
		LastContact:        formatTimePtr(d.LastContact, zone),
		LastWrite:          formatTimePtr(d.LastWrite, zone),
		Since:              formatTime(d.Since, zone),
		DWHVersion:         orUnknown(d.DWHVersion),
		CurrentDWHVersion:  orUnknown(d.CurrentDWHVersion),
		CurrentI2B2Version: orUnknown(d.CurrentI2B2Version),
		ErrorRate:          formatRate(lang, d.ErrorRate),
		ThresholdHours:     max(d.ThresholdHours, 0),
		Reminder:           kind == KindReminder,
	}

	var tb, hb bytes.Buffer
	if err := tpl.text.ExecuteTemplate(&tb, block, v); err != nil {
		return "", "", "", fmt.Errorf("nodemail: render text %s/%s: %w", lang, block, err)
	}
	if err := tpl.html.ExecuteTemplate(&hb, block, v); err != nil {
		return "", "", "", fmt.Errorf("nodemail: render html %s/%s: %w", lang, block, err)
	}
	return subject, tb.String(), hb.String(), nil
}

func orUnknown(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return Unknown
	}
	return s
}

// formatTime formats t as dd.mm.yyyy HH:MM in zone ("???" when zero).
func formatTime(t time.Time, zone *time.Location) string {
	if t.IsZero() {
		return Unknown
	}
	return t.In(zone).Format("02.01.2006 15:04")
}

func formatTimePtr(t *time.Time, zone *time.Location) string {
	if t == nil {
		return Unknown
	}
	return formatTime(*t, zone)
}

// formatRate shows a percentage with two decimals, with a decimal comma in
// German ("12,50 %") and a point in English ("12.50 %").
func formatRate(lang Language, rate *float64) string {
	if rate == nil || math.IsNaN(*rate) || math.IsInf(*rate, 0) {
		return Unknown
	}
	s := strconv.FormatFloat(*rate, 'f', 2, 64)
	if lang == German {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s + " %"
}
