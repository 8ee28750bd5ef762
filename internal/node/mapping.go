package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/lib/pq"
)

// MaxMappingNodes bounds how many nodes one mapping import may hold.
const MaxMappingNodes = 10000

// placeholder is the seed's template value for "not filled in yet".
const placeholder = "changeme"

// mappingKeys are the keys of one node in the seed's mapping JSON.
var mappingKeys = map[string]bool{
	"COMMON_NAME": true, "LONG_NAME": true, "JIRA_LABELS": true, "HOSPITAL_INFORMATION_SYSTEM": true,
	"IMPORT_INTERFACE": true, "ROOT": true, "FORMAT": true, "THRESHOLD_HOURS_FAILURE": true,
	"WEEKS_NOTIFICATION_INTERVAL": true, "CONSECUTIVE_IMPORT_DAYS": true,
}

// mappingField names a Settings field the way the mapping JSON does.
var mappingField = map[string]string{
	"common_name":                 "COMMON_NAME",
	"long_name":                   "LONG_NAME",
	"hospital_information_system": "HOSPITAL_INFORMATION_SYSTEM",
	"import_interface":            "IMPORT_INTERFACE",
	"threshold_hours_failure":     "THRESHOLD_HOURS_FAILURE",
	"notification_interval_weeks": "WEEKS_NOTIFICATION_INTERVAL",
	"consecutive_import_days":     "CONSECUTIVE_IMPORT_DAYS",
	"labels":                      "JIRA_LABELS",
	"root_ids.PATIENT":            "ROOT.PATIENT",
	"root_ids.ENCOUNTER":          "ROOT.ENCOUNTER",
	"root_ids.BILLING":            "ROOT.BILLING",
	"format_ids.PATIENT":          "FORMAT.PATIENT",
	"format_ids.ENCOUNTER":        "FORMAT.ENCOUNTER",
	"format_ids.BILLING":          "FORMAT.BILLING",
}

// ParseMapping reads the seed's mapping JSON ({"<node id>": {"COMMON_NAME":
// ..., "LONG_NAME": ..., "JIRA_LABELS": [...], "HOSPITAL_INFORMATION_SYSTEM",
// "IMPORT_INTERFACE", "ROOT": {...}, "FORMAT": {...},
// "THRESHOLD_HOURS_FAILURE", "WEEKS_NOTIFICATION_INTERVAL",
// "CONSECUTIVE_IMPORT_DAYS"}}) into validated settings, sorted by node id.
// As in the seed, falsy values (0, "", null, false) take the defaults; the
// seed's "changeme" placeholders become empty. Unknown keys are refused (a
// misspelt key would silently fall back to a default). The first failure is
// a *FieldError whose field is the mapping path, such as "10.COMMON_NAME".
// MailLanguage is the default; Store.Import keeps a stored one.
func ParseMapping(raw []byte) ([]Settings, error) {
	var nodes map[string]json.RawMessage
	if err := strictUnmarshal(raw, &nodes); err != nil || nodes == nil {
		return nil, fieldErr("", "the mapping must be a JSON object of node ids")
	}
	if len(nodes) > MaxMappingNodes {
		return nil, fieldErr("", fmt.Sprintf("the mapping holds more than %d nodes", MaxMappingNodes))
	}
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]Settings, 0, len(ids))
	for _, id := range ids {
		s, fe := parseMappingNode(id, nodes[id])
		if fe != nil {
			return nil, fe
		}
		out = append(out, s)
	}
	return out, nil
}

func parseMappingNode(id string, raw json.RawMessage) (Settings, *FieldError) {
	if !NodeIDPattern.MatchString(id) {
		return Settings{}, fieldErr(id, "is not a node id (1 to 64 letters, digits, '_' or '-')")
	}
	var entry map[string]json.RawMessage
	if err := strictUnmarshal(raw, &entry); err != nil || entry == nil {
		return Settings{}, fieldErr(id, "must be an object")
	}
	keys := make([]string, 0, len(entry))
	for k := range entry {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !mappingKeys[k] {
			return Settings{}, fieldErr(id+"."+k, "is not a mapping key")
		}
	}
	s := Defaults(id)
	s.CommonName = ""
	var fe *FieldError
	strs := []struct {
		key string
		dst *string
	}{
		{"COMMON_NAME", &s.CommonName}, {"LONG_NAME", &s.LongName},
		{"HOSPITAL_INFORMATION_SYSTEM", &s.HospitalInformationSystem}, {"IMPORT_INTERFACE", &s.ImportInterface},
	}
	for _, f := range strs {
		if *f.dst, fe = mappingString(id+"."+f.key, entry[f.key]); fe != nil {
			return s, fe
		}
	}
	if s.RootIDs, fe = mappingIDs(id+".ROOT", entry["ROOT"]); fe != nil {
		return s, fe
	}
	if s.FormatIDs, fe = mappingIDs(id+".FORMAT", entry["FORMAT"]); fe != nil {
		return s, fe
	}
	if s.Labels, fe = mappingLabels(id+".JIRA_LABELS", entry["JIRA_LABELS"]); fe != nil {
		return s, fe
	}
	nums := []struct {
		key string
		dst *int
	}{
		{"THRESHOLD_HOURS_FAILURE", &s.ThresholdHoursFailure},
		{"WEEKS_NOTIFICATION_INTERVAL", &s.NotificationIntervalWeeks},
		{"CONSECUTIVE_IMPORT_DAYS", &s.ConsecutiveImportDays},
	}
	for _, f := range nums {
		n, fe := mappingInt(id+"."+f.key, entry[f.key])
		if fe != nil {
			return s, fe
		}
		if n != 0 { // falsy: keep the default
			*f.dst = n
		}
	}
	if fe := s.Validate(); fe != nil {
		name, ok := mappingField[fe.Field]
		if !ok {
			name = fe.Field
		}
		return s, fieldErr(id+"."+name, fe.Message)
	}
	return s, nil
}

// falsy reports whether a JSON value is one the seed treats as "not set".
func falsy(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "false", `""`, "0":
		return true
	}
	return false
}

// mappingString reads a string value; falsy and the placeholder give "".
func mappingString(field string, raw json.RawMessage) (string, *FieldError) {
	if falsy(raw) {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fieldErr(field, "must be a string")
	}
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, placeholder) {
		return "", nil
	}
	return v, nil
}

// mappingInt reads a whole number (or a string holding one); falsy gives 0.
func mappingInt(field string, raw json.RawMessage) (int, *FieldError) {
	if falsy(raw) {
		return 0, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, fieldErr(field, "must be a whole number")
		}
		if f, err = strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
			return 0, fieldErr(field, "must be a whole number")
		}
	}
	if f != math.Trunc(f) || math.Abs(f) > 1e9 {
		return 0, fieldErr(field, "must be a whole number")
	}
	return int(f), nil
}

// mappingIDs reads a ROOT or FORMAT object.
func mappingIDs(field string, raw json.RawMessage) (IDs, *FieldError) {
	var ids IDs
	if falsy(raw) {
		return ids, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return ids, fieldErr(field, "must be an object with PATIENT, ENCOUNTER and BILLING")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var dst *string
		switch k {
		case "PATIENT":
			dst = &ids.Patient
		case "ENCOUNTER":
			dst = &ids.Encounter
		case "BILLING":
			dst = &ids.Billing
		default:
			return ids, fieldErr(field+"."+k, "is not PATIENT, ENCOUNTER or BILLING")
		}
		v, fe := mappingString(field+"."+k, m[k])
		if fe != nil {
			return ids, fe
		}
		*dst = v
	}
	return ids, nil
}

// mappingLabels reads JIRA_LABELS; empty and placeholder labels are
// dropped.
func mappingLabels(field string, raw json.RawMessage) (pq.StringArray, *FieldError) {
	out := pq.StringArray{}
	if falsy(raw) {
		return out, nil
	}
	var vs []json.RawMessage
	if err := json.Unmarshal(raw, &vs); err != nil {
		return out, fieldErr(field, "must be a list of strings")
	}
	for _, v := range vs {
		s, fe := mappingString(field, v)
		if fe != nil {
			return out, fieldErr(field, "must be a list of strings")
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// strictUnmarshal decodes exactly one JSON value.
func strictUnmarshal(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
