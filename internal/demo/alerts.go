package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/vigil-health/vigil/internal/sim"
)

// alertTypes are the 32 types of the seed catalogue with a plausible reading
// each, so the demo's incidents look like the real thing.
var alertTypes = []struct{ Type, Value string }{
	{"CARDIAC_ARREST", "asystole"}, {"CARDIAC_ABNORMAL", "VT 180 bpm"}, {"MYOCARDIAL_INFARCTION", "ST elevation"},
	{"RESPIRATORY_DISTRESS", "RR 34"}, {"O2_SATURATION_LOW", "84%"}, {"APNEA_DETECTED", "apnoea 25 s"},
	{"VENTILATOR_ALARM", "high pressure"}, {"STROKE_SUSPECTED", "FAST positive"}, {"INTRACRANIAL_PRESSURE_HIGH", "ICP 28 mmHg"},
	{"HEMORRHAGE_MAJOR", "Hb 62 g/L"}, {"TRAUMA_SEVERE", "GCS 9"}, {"DIABETIC_KETOACIDOSIS", "pH 7.1"},
	{"SEPSIS_SUSPECTED", "NEWS2 7"}, {"FETAL_DISTRESS", "FHR 90"}, {"SUICIDE_RISK", "high"},
	{"SEIZURE_DETECTED", "tonic-clonic"}, {"HYPERTENSION_CRISIS", "210/125"}, {"HYPOTENSION_SEVERE", "72/40"},
	{"HYPOGLYCEMIA_SEVERE", "2.1 mmol/L"}, {"HYPERGLYCEMIA_SEVERE", "32 mmol/L"}, {"MEDICATION_ERROR", "wrong dose"},
	{"ADVERSE_REACTION", "anaphylaxis"}, {"EQUIPMENT_MALFUNCTION", "infusion pump fault"}, {"FALL_DETECTED", "bed exit + floor"},
	{"RESTRAINT_ALERT", "check overdue"}, {"LABOR_COMPLICATIONS", "shoulder dystocia"}, {"AGITATION_SEVERE", "RASS +3"},
	{"FEVER_HIGH", "39.8 C"}, {"MEDICATION_DELAYED", "45 min late"}, {"IV_INFILTRATION", "swelling at site"},
	{"EQUIPMENT_LOW_BATTERY", "12%"}, {"BED_EXIT_UNAUTHORIZED", "bed exit"},
}

// Patient is a demo patient and the room they are in.
type Patient struct{ ID, Room string }

// Patients are the demo hospital's 40 patients on four wards.
func Patients() []Patient {
	out := make([]Patient, 0, 40)
	wards := []string{"ICU", "W1", "W2", "MAT"}
	for i := range 40 {
		out = append(out, Patient{ID: fmt.Sprintf("P%03d", i+1), Room: fmt.Sprintf("%s-%02d", wards[i%4], i/4+1)})
	}
	return out
}

// AlertGenerator sends the demo's alerts through the HTTP API, as a bedside
// monitor would: random types over the demo patients at a steady rate. About
// half of them clear at the source a few minutes later (an Alertmanager
// "resolved"), so incidents also auto-resolve; the rest wait for staff.
type AlertGenerator struct {
	// BaseURL is the API's base URL.
	BaseURL string
	// APIKey authenticates the generator as an alert source.
	APIKey string
	// PerMinute is the alert rate.
	PerMinute float64
	Logger    *slog.Logger
	HTTP      *http.Client
	// Rand makes runs repeatable in tests; nil uses a random seed.
	Rand *rand.Rand
}

// Run sends alerts until ctx ends.
func (g *AlertGenerator) Run(ctx context.Context) {
	if g.PerMinute <= 0 {
		return
	}
	if g.HTTP == nil {
		g.HTTP = &http.Client{Timeout: 15 * time.Second}
	}
	if g.Rand == nil {
		g.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	}
	patients := Patients()
	sim.Every(ctx, time.Duration(float64(time.Minute)/g.PerMinute), func() {
		p := patients[g.Rand.IntN(len(patients))]
		t := alertTypes[g.Rand.IntN(len(alertTypes))]
		body := map[string]any{
			"alert_type": t.Type, "patient_id": p.ID, "room": p.Room, "value": t.Value,
			"source": "demo-monitor", "observed_at": time.Now().UTC().Format(time.RFC3339Nano),
		}
		if err := g.post(ctx, "/v1/alerts", body); err != nil {
			g.Logger.WarnContext(ctx, "demo alert not accepted", "err", err)
			return
		}
		if g.Rand.IntN(2) == 0 {
			delay := time.Duration(60+g.Rand.IntN(180)) * time.Second
			go g.clearLater(ctx, delay, p, t.Type)
		}
	})
}

// clearLater reports the alert's condition cleared, as Alertmanager does.
func (g *AlertGenerator) clearLater(ctx context.Context, delay time.Duration, p Patient, alertType string) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(delay):
	}
	body := map[string]any{
		"version": "4", "status": "resolved", "receiver": "demo",
		"alerts": []map[string]any{{
			"status": "resolved", "fingerprint": "",
			"labels":   map[string]string{"alertname": alertType, "patient_id": p.ID, "room": p.Room},
			"startsAt": time.Now().UTC().Format(time.RFC3339),
		}},
	}
	if err := g.post(ctx, "/v1/alerts/alertmanager", body); err != nil {
		g.Logger.WarnContext(ctx, "demo resolve not accepted", "err", err)
	}
}

func (g *AlertGenerator) post(ctx context.Context, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.APIKey)
	resp, err := g.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("post %s: %s", path, resp.Status)
	}
	return nil
}
