package node_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/node"
)

func TestDefaults(t *testing.T) {
	d := node.Defaults("7")
	require.Equal(t, "Node 7", d.CommonName)
	require.Equal(t, 72, d.ThresholdHoursFailure)
	require.Equal(t, 3, d.ConsecutiveImportDays)
	require.Equal(t, 1, d.NotificationIntervalWeeks)
	require.Equal(t, "de", d.MailLanguage)
	require.NotNil(t, d.Labels)
	require.Nil(t, d.Validate())
}

func TestSettingsValidate(t *testing.T) {
	long := strings.Repeat("x", 201)
	tests := []struct {
		name   string
		change func(*node.Settings)
		field  string
	}{
		{"valid", func(*node.Settings) {}, ""},
		{"bad node id", func(s *node.Settings) { s.NodeID = "1.2" }, "node_id"},
		{"common name required", func(s *node.Settings) { s.CommonName = "  " }, "common_name"},
		{"common name too long", func(s *node.Settings) { s.CommonName = long }, "common_name"},
		{"control character", func(s *node.Settings) { s.LongName = "a\x00b" }, "long_name"},
		{"root id too long", func(s *node.Settings) { s.RootIDs.Encounter = long }, "root_ids.ENCOUNTER"},
		{"threshold 0", func(s *node.Settings) { s.ThresholdHoursFailure = 0 }, "threshold_hours_failure"},
		{"threshold 8760", func(s *node.Settings) { s.ThresholdHoursFailure = 8760 }, ""},
		{"threshold 8761", func(s *node.Settings) { s.ThresholdHoursFailure = 8761 }, "threshold_hours_failure"},
		{"interval 52", func(s *node.Settings) { s.NotificationIntervalWeeks = 52 }, ""},
		{"interval 53", func(s *node.Settings) { s.NotificationIntervalWeeks = 53 }, "notification_interval_weeks"},
		{"import days 365", func(s *node.Settings) { s.ConsecutiveImportDays = 365 }, ""},
		{"import days 366", func(s *node.Settings) { s.ConsecutiveImportDays = 366 }, "consecutive_import_days"},
		{"label with space", func(s *node.Settings) { s.Labels = pq.StringArray{"a b"} }, "labels"},
		{"empty label", func(s *node.Settings) { s.Labels = pq.StringArray{""} }, "labels"},
		{"language", func(s *node.Settings) { s.MailLanguage = "fr" }, "mail_language"},
		{"english", func(s *node.Settings) { s.MailLanguage = "en" }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := node.Defaults("10")
			s.CommonName = "[10] Clinic"
			tc.change(&s)
			fe := s.Validate()
			if tc.field == "" {
				require.Nil(t, fe)
				return
			}
			require.NotNil(t, fe)
			require.Equal(t, tc.field, fe.Field)
		})
	}
}

func TestValidateDeduplicatesLabels(t *testing.T) {
	s := node.Defaults("1")
	s.Labels = pq.StringArray{" a ", "b", "a"}
	require.Nil(t, s.Validate())
	require.Equal(t, pq.StringArray{"a", "b"}, s.Labels)
}

func TestParseEmail(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"it@clinic.example", "it@clinic.example", true},
		{"  it@clinic.example ", "it@clinic.example", true},
		{"Max <it@clinic.example>", "", false},
		{"<it@clinic.example>", "", false},
		{"it", "", false},
		{"it@", "", false},
		{"", "", false},
		{"a@b@c", "", false},
		{"it@clinic.example, other@clinic.example", "", false},
	}
	for _, tc := range tests {
		got, ok := node.ParseEmail(tc.in)
		require.Equal(t, tc.ok, ok, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestContactValidate(t *testing.T) {
	tests := []struct {
		name  string
		c     node.Contact
		field string
	}{
		{"valid", node.Contact{Role: "ED", Email: "ed@clinic.example"}, ""},
		{"role", node.Contact{Role: "Notaufnahme", Email: "ed@clinic.example"}, "role"},
		{"email", node.Contact{Role: "IT", Email: "nope"}, "email"},
		{"name", node.Contact{Role: "IT", Email: "it@clinic.example", LastName: "a\nb"}, "last_name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fe := tc.c.Validate()
			if tc.field == "" {
				require.Nil(t, fe)
				return
			}
			require.NotNil(t, fe)
			require.Equal(t, tc.field, fe.Field)
		})
	}
}

func TestParseMapping(t *testing.T) {
	nodes, err := node.ParseMapping([]byte(`{
		"10": {"COMMON_NAME": "[10] Klinikum", "LONG_NAME": "changeme", "JIRA_LABELS": ["klinikum", "", "changeme"],
			"HOSPITAL_INFORMATION_SYSTEM": "ORBIS", "IMPORT_INTERFACE": "Changeme",
			"ROOT": {"PATIENT": "1.2.276", "ENCOUNTER": "changeme"}, "FORMAT": null,
			"THRESHOLD_HOURS_FAILURE": 0, "WEEKS_NOTIFICATION_INTERVAL": "", "CONSECUTIVE_IMPORT_DAYS": null},
		"2": {"COMMON_NAME": "[2] Stadtklinik", "THRESHOLD_HOURS_FAILURE": 24, "WEEKS_NOTIFICATION_INTERVAL": "2",
			"CONSECUTIVE_IMPORT_DAYS": 5, "JIRA_LABELS": null}
	}`))
	require.NoError(t, err)
	require.Len(t, nodes, 2)
	a, b := nodes[0], nodes[1]
	require.Equal(t, "10", a.NodeID)
	require.Equal(t, "[10] Klinikum", a.CommonName)
	require.Empty(t, a.LongName, "changeme → empty")
	require.Empty(t, a.ImportInterface, "changeme is case-insensitive")
	require.Equal(t, "ORBIS", a.HospitalInformationSystem)
	require.Equal(t, node.IDs{Patient: "1.2.276"}, a.RootIDs)
	require.Equal(t, node.IDs{}, a.FormatIDs)
	require.Equal(t, pq.StringArray{"klinikum"}, a.Labels)
	require.Equal(t, 72, a.ThresholdHoursFailure, "0 → default")
	require.Equal(t, 1, a.NotificationIntervalWeeks, `"" → default`)
	require.Equal(t, 3, a.ConsecutiveImportDays, "null → default")
	require.Equal(t, "2", b.NodeID)
	require.Equal(t, 24, b.ThresholdHoursFailure)
	require.Equal(t, 2, b.NotificationIntervalWeeks, "a numeric string is accepted")
	require.Equal(t, 5, b.ConsecutiveImportDays)
	require.Equal(t, pq.StringArray{}, b.Labels)
}

func TestParseMappingErrorsNameTheNodeAndKey(t *testing.T) {
	tests := []struct {
		name, body, field string
	}{
		{"not an object", `[]`, ""},
		{"trailing data", `{} {}`, ""},
		{"entry not an object", `{"10": "x"}`, "10"},
		{"bad node id", `{"1 0": {"COMMON_NAME": "x"}}`, "1 0"},
		{"common name missing", `{"10": {"LONG_NAME": "x"}}`, "10.COMMON_NAME"},
		{"common name placeholder", `{"10": {"COMMON_NAME": "changeme"}}`, "10.COMMON_NAME"},
		{"common name not a string", `{"10": {"COMMON_NAME": 10}}`, "10.COMMON_NAME"},
		{"unknown key", `{"10": {"COMMON_NAME": "x", "THRESHOLD_HOUR_FAILURE": 5}}`, "10.THRESHOLD_HOUR_FAILURE"},
		{"threshold out of range", `{"10": {"COMMON_NAME": "x", "THRESHOLD_HOURS_FAILURE": 9000}}`, "10.THRESHOLD_HOURS_FAILURE"},
		{"interval fraction", `{"10": {"COMMON_NAME": "x", "WEEKS_NOTIFICATION_INTERVAL": 1.5}}`, "10.WEEKS_NOTIFICATION_INTERVAL"},
		{"import days negative", `{"10": {"COMMON_NAME": "x", "CONSECUTIVE_IMPORT_DAYS": -1}}`, "10.CONSECUTIVE_IMPORT_DAYS"},
		{"labels not a list", `{"10": {"COMMON_NAME": "x", "JIRA_LABELS": "a"}}`, "10.JIRA_LABELS"},
		{"root key", `{"10": {"COMMON_NAME": "x", "ROOT": {"PATIENTS": "1"}}}`, "10.ROOT.PATIENTS"},
		{"format value", `{"10": {"COMMON_NAME": "x", "FORMAT": {"BILLING": 5}}}`, "10.FORMAT.BILLING"},
		{"second node bad", `{"1": {"COMMON_NAME": "ok"}, "2": {"COMMON_NAME": ""}}`, "2.COMMON_NAME"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := node.ParseMapping([]byte(tc.body))
			var fe *node.FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			require.Equal(t, tc.field, fe.Field)
		})
	}
}
