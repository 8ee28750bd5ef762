package nodemail

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

// sample returns Data for cond with times in summer (CEST, UTC+2).
func sample(cond string) Data {
	return Data{
		NodeID:             "17",
		ClinicName:         `Klinikum <Süd> & "Nord"`,
		Condition:          cond,
		LastContact:        ptr(time.Date(2025, 7, 1, 6, 5, 0, 0, time.UTC)),   // 01.07.2025 08:05 Berlin
		LastWrite:          ptr(time.Date(2025, 6, 30, 22, 7, 0, 0, time.UTC)), // 01.07.2025 00:07 Berlin
		DWHVersion:         "1.5.1rc1",
		CurrentDWHVersion:  "1.6.0",
		CurrentI2B2Version: "1.7.13",
		ErrorRate:          ptr(12.345678),
		ThresholdHours:     24,
		Since:              time.Date(2025, 6, 29, 10, 0, 0, 0, time.UTC), // 29.06.2025 12:00 Berlin
	}
}

func TestRenderEveryCombination(t *testing.T) {
	subjects := map[Language]map[Kind]map[string]string{
		German: {
			KindAlert: {
				ConditionOffline:   "Automatische Information: AKTIN DWH Offline",
				ConditionNoImports: "Automatische Information: AKTIN DWH Keine Imports",
				ConditionOutdated:  "Automatische Information: AKTIN DWH Version veraltet",
				ConditionErrorRate: "Automatische Information: AKTIN DWH Hohe Fehlerrate",
			},
			KindReminder: {
				ConditionOffline:   "Erinnerung: Automatische Information: AKTIN DWH Offline",
				ConditionNoImports: "Erinnerung: Automatische Information: AKTIN DWH Keine Imports",
				ConditionOutdated:  "Erinnerung: Automatische Information: AKTIN DWH Version veraltet",
				ConditionErrorRate: "Erinnerung: Automatische Information: AKTIN DWH Hohe Fehlerrate",
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
			KindReminder: {
				ConditionOffline:   "Reminder: Automatic notice: AKTIN DWH offline",
				ConditionNoImports: "Reminder: Automatic notice: AKTIN DWH no imports",
				ConditionOutdated:  "Reminder: Automatic notice: AKTIN DWH version outdated",
				ConditionErrorRate: "Reminder: Automatic notice: AKTIN DWH high error rate",
			},
			KindRecovered: {
				ConditionOffline:   "Automatic notice: AKTIN DWH reachable again",
				ConditionNoImports: "Automatic notice: AKTIN DWH imports active again",
				ConditionOutdated:  "Automatic notice: AKTIN DWH version up to date",
				ConditionErrorRate: "Automatic notice: AKTIN DWH error rate back to normal",
			},
		},
	}
	rate := map[Language]string{German: "12,35 %", English: "12.35 %"}
	// facts each condition's body must state, whatever the kind.
	facts := map[string][]string{
		ConditionOffline:   {"01.07.2025 08:05"},
		ConditionNoImports: {"01.07.2025 00:07"},
		ConditionOutdated:  {"1.5.1rc1", "1.6.0", "1.7.13"},
		ConditionErrorRate: {}, // rate added per language below
	}
	reminderWord := map[Language]string{German: "Erinnerung", English: "Reminder"}

	for _, lang := range Languages {
		for _, kind := range Kinds {
			for _, cond := range Conditions {
				t.Run(string(lang)+"/"+string(kind)+"/"+cond, func(t *testing.T) {
					subject, text, html, err := Render(lang, kind, sample(cond))
					require.NoError(t, err)
					require.Equal(t, subjects[lang][kind][cond], subject)

					want := append([]string{"17", "office@aktin.org", "it-support@aktin.org"}, facts[cond]...)
					if cond == ConditionErrorRate {
						want = append(want, rate[lang])
					}
					if kind != KindAlert {
						// reminders and recoveries say since when the condition held
						want = append(want, "29.06.2025 12:00")
					}
					for _, w := range want {
						require.Contains(t, text, w, "text")
						require.Contains(t, html, w, "html")
					}
					if kind == KindAlert && (cond == ConditionOffline || cond == ConditionNoImports) {
						require.Contains(t, text, "24")
					}
					if kind == KindAlert && cond == ConditionOutdated {
						require.Contains(t, text, "sudo apt install aktin-notaufnahme-i2b2 aktin-notaufnahme-dwh")
						require.Contains(t, html, "sudo apt install aktin-notaufnahme-i2b2 aktin-notaufnahme-dwh")
					}
					if kind == KindAlert && cond != ConditionOutdated {
						// ask to re-send cases and for a maintenance window
						if lang == German {
							require.Contains(t, text, "Wartungsfenster")
							require.Contains(t, text, "Fälle")
						} else {
							require.Contains(t, text, "maintenance window")
							require.Contains(t, text, "re-send")
						}
					}
					if kind == KindReminder {
						require.Contains(t, html, reminderWord[lang])
					} else {
						require.NotContains(t, html, "<b>"+reminderWord[lang])
					}

					// Escaping: raw in text, escaped in HTML, never raw in HTML.
					require.Contains(t, text, `Klinikum <Süd> & "Nord"`)
					require.Contains(t, html, "Klinikum &lt;Süd&gt; &amp; &#34;Nord&#34;")
					require.NotContains(t, html, "<Süd>")
					require.True(t, strings.HasPrefix(html, "<!DOCTYPE html>"))
					require.Contains(t, html, "<title>"+subject+"</title>")
					require.NotContains(t, text+html, "<no value>")
				})
			}
		}
	}
}

func TestRenderUnknownValues(t *testing.T) {
	tests := []struct {
		name string
		lang Language
		cond string
		want []string
	}{
		{"offline without contact", German, ConditionOffline, []string{"Letzter Kontakt: ???"}},
		{"no imports without write", German, ConditionNoImports, []string{"Letzter Import: ???"}},
		{"outdated without versions", English, ConditionOutdated, []string{"Installed DWH version: ???", "Current DWH version: ???"}},
		{"error rate without rate", English, ConditionErrorRate, []string{"unusually high: ???"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, text, html, err := Render(tc.lang, KindAlert, Data{NodeID: "1", ClinicName: "X", Condition: tc.cond})
			require.NoError(t, err)
			for _, w := range tc.want {
				require.Contains(t, text, w)
			}
			require.Contains(t, html, "<b>???</b>")
		})
	}
}

func TestRenderZoneAndThreshold(t *testing.T) {
	d := sample(ConditionOffline)
	d.Zone = time.UTC
	d.ThresholdHours = 0
	_, text, _, err := Render(German, KindAlert, d)
	require.NoError(t, err)
	require.Contains(t, text, "Letzter Kontakt: 01.07.2025 06:05")
	require.Contains(t, text, "Ihr DWH hat sich nicht mehr beim AKTIN Broker gemeldet.")

	// Winter time in Berlin is UTC+1.
	d = sample(ConditionOffline)
	d.LastContact = ptr(time.Date(2025, 1, 31, 23, 30, 0, 0, time.UTC))
	_, text, _, err = Render(German, KindAlert, d)
	require.NoError(t, err)
	require.Contains(t, text, "Letzter Kontakt: 01.02.2025 00:30")
	require.Contains(t, text, "seit mehr als 24 Stunden")
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		lang Language
		kind Kind
		cond string
	}{
		{"unknown language", "fr", KindAlert, ConditionOffline},
		{"empty language", "", KindAlert, ConditionOffline},
		{"unknown kind", German, "escalation", ConditionOffline},
		{"unknown condition", German, KindAlert, "TESTING"},
		{"lower-case condition", German, KindAlert, "offline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := Render(tc.lang, tc.kind, Data{Condition: tc.cond})
			require.Error(t, err)
		})
	}
}

func TestParseLanguage(t *testing.T) {
	for in, want := range map[string]Language{"": German, "de": German, "DE": German, " en ": English} {
		got, err := ParseLanguage(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseLanguage("fr")
	require.Error(t, err)
}
