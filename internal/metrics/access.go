package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the message and activation metrics.
var (
	// MessageTypes are the message type names (package message's catalogue).
	MessageTypes = []string{"GENERAL", "DOSAGE", "DIETARY", "FEEDBACK", "CALLBACK", "ACTIVATION_CODE",
		"RED_ALERT", "AMBER_ALERT", "GREY_ALERT", "CLEAR_ALERTS"}
	// ActivationKinds are patient and device.
	ActivationKinds = []string{"patient", "device"}
	// ActivationSteps: attempt (the activation code, with a patient's PIN,
	// is checked) and exchange (the authorisation code is redeemed for a
	// token).
	ActivationSteps = []string{"attempt", "exchange"}
	// ActivationOutcomes: ok (PIN verified / code exchanged), refused
	// (wrong PIN or code, unknown code), locked (this or an earlier wrong
	// answer locked it), expired, used.
	ActivationOutcomes = []string{"ok", "refused", "locked", "expired", "used"}
	// TokenSubjects are the subject types tokens are issued to.
	TokenSubjects = []string{"patient", "device", "clinician", "system"}
)

// AccessMetrics are the metrics of messages, activations and issued
// tokens.
type AccessMetrics struct {
	// Messages counts messages created, by type (vigil_messages_total).
	Messages *prometheus.CounterVec
	// ActivationSteps counts activation steps by kind, step and outcome
	// (vigil_activation_steps_total).
	ActivationSteps *prometheus.CounterVec
	// Tokens counts access tokens (JWTs) issued by subject type
	// (vigil_tokens_issued_total).
	Tokens *prometheus.CounterVec
}

// NewAccessMetrics creates the access metrics and registers them on r;
// like NewIncidentMetrics it is idempotent.
func NewAccessMetrics(r *Registry) (*AccessMetrics, error) {
	m := &AccessMetrics{
		Messages: counterVec("vigil_messages_total", "Messages created, by type.",
			[]string{"type"}, [][]string{MessageTypes}),
		ActivationSteps: counterVec("vigil_activation_steps_total", "Activation steps, by kind, step and outcome.",
			[]string{"kind", "step", "outcome"}, [][]string{ActivationKinds, ActivationSteps, ActivationOutcomes}),
		Tokens: counterVec("vigil_tokens_issued_total", "Access tokens issued, by subject type.",
			[]string{"subject_type"}, [][]string{TokenSubjects}),
	}
	if err := registerFields(r, field(&m.Messages), field(&m.ActivationSteps), field(&m.Tokens)); err != nil {
		return nil, err
	}
	return m, nil
}

var accessByRegistry sync.Map // *Registry -> *AccessMetrics

// Access returns the registry's access metrics, creating them on first use.
func (r *Registry) Access() *AccessMetrics { return cached(&accessByRegistry, r, NewAccessMetrics) }

// MessageCreated counts one message of a type (its name, e.g. CALLBACK).
func (m *AccessMetrics) MessageCreated(typeName string) {
	if m != nil {
		m.Messages.WithLabelValues(bounded(typeName, MessageTypes)).Inc()
	}
}

// ActivationStep counts one activation step with its outcome.
func (m *AccessMetrics) ActivationStep(kind, step, outcome string) {
	if m != nil {
		m.ActivationSteps.WithLabelValues(bounded(kind, ActivationKinds), bounded(step, ActivationSteps), bounded(outcome, ActivationOutcomes)).Inc()
	}
}

// TokenIssued counts one access token issued to a subject type.
func (m *AccessMetrics) TokenIssued(subjectType string) {
	if m != nil {
		m.Tokens.WithLabelValues(bounded(subjectType, TokenSubjects)).Inc()
	}
}
