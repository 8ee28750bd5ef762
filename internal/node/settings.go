package node

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/cleantext"
	"github.com/vigil-health/vigil/internal/node/nodehealth"
)

// Mail languages.
const (
	LanguageGerman  = "de"
	LanguageEnglish = "en"
)

// Contact roles.
const (
	// RoleED is the site's emergency department: only its main contacts
	// are mailed.
	RoleED = "ED"
	// RoleIT is the site's IT: all its contacts are mailed.
	RoleIT = "IT"
)

// Bounds of the numeric settings (the schema's CHECK constraints).
const (
	MinThresholdHours = 1
	MaxThresholdHours = 8760
	MinIntervalWeeks  = 1
	MaxIntervalWeeks  = 52
	MinImportDays     = 1
	MaxImportDays     = 365
)

// Length limits of the text settings, in characters.
const (
	maxNameLen   = 200
	maxLongLen   = 500
	maxIDLen     = 200
	maxLabels    = 50
	maxLabelLen  = 100
	maxPersonLen = 100
	maxEmailLen  = 254
)

// ErrNotFound is returned for a node that is neither listed by the broker
// nor has settings (Detail), a node without settings or an unknown contact.
var ErrNotFound = errors.New("not found")

// ErrDuplicate is returned when a contact with the same node, role and
// e-mail address (case-insensitive) exists.
var ErrDuplicate = errors.New("duplicate contact")

// NodeIDPattern is what a broker node id looks like (the broker's ids are
// decimal numbers; letters, '_' and '-' are tolerated).
var NodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// FieldError is a validation failure of one field; Field is the settings
// field (common_name, root_ids.PATIENT) or, from ParseMapping, the mapping's
// path (10.COMMON_NAME).
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, msg string) *FieldError { return &FieldError{Field: field, Message: msg} }

// IDs are a node's root or format ids for patients, encounters and billing
// (the seed's ROOT and FORMAT objects); stored as jsonb.
type IDs struct {
	Patient   string `json:"PATIENT"`
	Encounter string `json:"ENCOUNTER"`
	Billing   string `json:"BILLING"`
}

// Value stores the ids as JSON.
func (i IDs) Value() (driver.Value, error) {
	b, err := json.Marshal(i)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// Scan reads the ids from jsonb ({} gives empty ids).
func (i *IDs) Scan(src any) error {
	var raw []byte
	switch v := src.(type) {
	case nil:
		*i = IDs{}
		return nil
	case []byte:
		raw = v
	case string:
		raw = []byte(v)
	default:
		return fmt.Errorf("scan ids: unexpected %T", src)
	}
	*i = IDs{}
	return json.Unmarshal(raw, i)
}

// Settings are one node's operator-maintained settings.
type Settings struct {
	NodeID                    string `json:"node_id" db:"node_id"`
	CommonName                string `json:"common_name" db:"common_name"`
	LongName                  string `json:"long_name" db:"long_name"`
	HospitalInformationSystem string `json:"hospital_information_system" db:"hospital_information_system"`
	ImportInterface           string `json:"import_interface" db:"import_interface"`
	RootIDs                   IDs    `json:"root_ids" db:"root_ids"`
	FormatIDs                 IDs    `json:"format_ids" db:"format_ids"`
	// ThresholdHoursFailure is how long without contact (or without a
	// write) makes the node OFFLINE (or NO IMPORTS). The default is the
	// seed code's 72 h, not its README's 24 h.
	ThresholdHoursFailure     int `json:"threshold_hours_failure" db:"threshold_hours_failure"`
	NotificationIntervalWeeks int `json:"notification_interval_weeks" db:"notification_interval_weeks"`
	ConsecutiveImportDays     int `json:"consecutive_import_days" db:"consecutive_import_days"`
	// Labels are the node's Jira labels.
	Labels       pq.StringArray `json:"labels" db:"labels"`
	MailLanguage string         `json:"mail_language" db:"mail_language"`
	// CreatedAt and UpdatedAt are nil for defaults (nothing stored).
	CreatedAt *time.Time `json:"created_at" db:"created_at"`
	UpdatedAt *time.Time `json:"updated_at" db:"updated_at"`
}

// Defaults returns the settings a node without stored settings is
// monitored with: nodehealth's defaults, German mail, and "Node <id>" as
// its name.
func Defaults(nodeID string) Settings {
	d := nodehealth.DefaultSettings()
	return Settings{
		NodeID:                    nodeID,
		CommonName:                DisplayName(nodeID, ""),
		ThresholdHoursFailure:     d.ThresholdHoursFailure,
		NotificationIntervalWeeks: d.NotificationIntervalWeeks,
		ConsecutiveImportDays:     d.ConsecutiveImportDays,
		Labels:                    pq.StringArray{},
		MailLanguage:              LanguageGerman,
	}
}

// DisplayName is a node's name for people: its common name, or "Node <id>"
// when it has none.
func DisplayName(nodeID, commonName string) string {
	if commonName != "" {
		return commonName
	}
	return "Node " + nodeID
}

// Validate normalizes s (trims text, drops duplicate labels) and checks
// every field, returning the first failure.
func (s *Settings) Validate() *FieldError {
	if !NodeIDPattern.MatchString(s.NodeID) {
		return fieldErr("node_id", "must be 1 to 64 letters, digits, '_' or '-'")
	}
	texts := []struct {
		field string
		v     *string
		max   int
	}{
		{"common_name", &s.CommonName, maxNameLen},
		{"long_name", &s.LongName, maxLongLen},
		{"hospital_information_system", &s.HospitalInformationSystem, maxNameLen},
		{"import_interface", &s.ImportInterface, maxNameLen},
		{"root_ids.PATIENT", &s.RootIDs.Patient, maxIDLen},
		{"root_ids.ENCOUNTER", &s.RootIDs.Encounter, maxIDLen},
		{"root_ids.BILLING", &s.RootIDs.Billing, maxIDLen},
		{"format_ids.PATIENT", &s.FormatIDs.Patient, maxIDLen},
		{"format_ids.ENCOUNTER", &s.FormatIDs.Encounter, maxIDLen},
		{"format_ids.BILLING", &s.FormatIDs.Billing, maxIDLen},
	}
	for _, t := range texts {
		*t.v = strings.TrimSpace(*t.v)
		if fe := checkText(t.field, *t.v, t.max); fe != nil {
			return fe
		}
	}
	if s.CommonName == "" {
		return fieldErr("common_name", "is required")
	}
	if fe := checkRange("threshold_hours_failure", s.ThresholdHoursFailure, MinThresholdHours, MaxThresholdHours); fe != nil {
		return fe
	}
	if fe := checkRange("notification_interval_weeks", s.NotificationIntervalWeeks, MinIntervalWeeks, MaxIntervalWeeks); fe != nil {
		return fe
	}
	if fe := checkRange("consecutive_import_days", s.ConsecutiveImportDays, MinImportDays, MaxImportDays); fe != nil {
		return fe
	}
	labels := pq.StringArray{}
	for _, l := range s.Labels {
		l = strings.TrimSpace(l)
		if l == "" || utf8.RuneCountInString(l) > maxLabelLen || strings.IndexFunc(l, unicode.IsSpace) >= 0 || !validText(l) {
			return fieldErr("labels", fmt.Sprintf("must be labels of 1 to %d characters without spaces or control characters", maxLabelLen))
		}
		if !slices.Contains(labels, l) {
			labels = append(labels, l)
		}
	}
	if len(labels) > maxLabels {
		return fieldErr("labels", fmt.Sprintf("must be at most %d labels", maxLabels))
	}
	s.Labels = labels
	switch s.MailLanguage {
	case LanguageGerman, LanguageEnglish:
	default:
		return fieldErr("mail_language", "must be de or en")
	}
	return nil
}

// Contact is a person told about a node.
type Contact struct {
	ID     int64  `json:"id" db:"id"`
	NodeID string `json:"node_id" db:"node_id"`
	// Role is ED (emergency department) or IT.
	Role      string `json:"role" db:"role"`
	Title     string `json:"title" db:"title"`
	FirstName string `json:"first_name" db:"first_name"`
	LastName  string `json:"last_name" db:"last_name"`
	Email     string `json:"email" db:"email"`
	// MainContact marks the ED contacts that are mailed.
	MainContact bool `json:"main_contact" db:"main_contact"`
	// Unsubscribed contacts are never mailed.
	Unsubscribed bool      `json:"unsubscribed" db:"unsubscribed"`
	CreatedAt    time.Time `json:"created_at" db:"created_at"`
	UpdatedAt    time.Time `json:"updated_at" db:"updated_at"`
}

// Validate normalizes c (trims text) and checks every field.
func (c *Contact) Validate() *FieldError {
	switch c.Role {
	case RoleED, RoleIT:
	default:
		return fieldErr("role", "must be ED (emergency department) or IT")
	}
	for _, t := range []struct {
		field string
		v     *string
	}{{"title", &c.Title}, {"first_name", &c.FirstName}, {"last_name", &c.LastName}} {
		*t.v = strings.TrimSpace(*t.v)
		if fe := checkText(t.field, *t.v, maxPersonLen); fe != nil {
			return fe
		}
	}
	email, ok := ParseEmail(c.Email)
	if !ok {
		return fieldErr("email", "must be a plain e-mail address such as it@clinic.example")
	}
	c.Email = email
	return nil
}

func checkText(field, v string, max int) *FieldError {
	if !validText(v) || utf8.RuneCountInString(v) > max {
		return fieldErr(field, fmt.Sprintf("must be at most %d characters of text without control characters", max))
	}
	return nil
}

func checkRange(field string, v, lo, hi int) *FieldError {
	if v < lo || v > hi {
		return fieldErr(field, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
	}
	return nil
}

// validText reports whether s is valid UTF-8 without control characters.
func validText(s string) bool { return cleantext.Valid(s, "") }

// ParseEmail checks that s is one plain e-mail address (no display name,
// no angle brackets) and returns it trimmed.
func ParseEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxEmailLen {
		return "", false
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 || !validText(s) {
		return "", false
	}
	return s, true
}
