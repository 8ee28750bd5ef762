package workflows

import (
	"fmt"
	"regexp"
	"time"
)

// Kinds of activation.
const (
	ActivationKindPatient = "patient"
	ActivationKindDevice  = "device"
)

// Activation states. Pending waits for the PIN (patient) or code (device);
// activated holds a single-use authorisation code; redeemed, expired and
// locked are final and end the workflow.
const (
	ActivationPending   = "pending"
	ActivationActivated = "activated"
	ActivationRedeemed  = "redeemed"
	ActivationExpired   = "expired"
	ActivationLocked    = "locked"
)

// Names of the activation workflow's updates and query.
const (
	// ActivationUpdateRecreate re-issues a pending activation: a new PIN
	// (patient; the code stays) or a new code (device), attempts reset and
	// a later expiry.
	ActivationUpdateRecreate = "recreate"
	// ActivationUpdateAttempt presents the code (and, for a patient, the
	// PIN) to complete the activation.
	ActivationUpdateAttempt = "attempt"
	// ActivationUpdateRedeem exchanges the authorisation code, once.
	ActivationUpdateRedeem = "redeem"
	// ActivationQueryState returns the ActivationState.
	ActivationQueryState = "state"
)

// Types of the application errors that reject an activation update; the
// API maps them to HTTP answers.
const (
	// RejectActivationExpired: the activation (or its authorisation code)
	// has expired (410).
	RejectActivationExpired = "ActivationExpired"
	// RejectActivationLocked: too many wrong PINs, or wrong authorisation
	// codes for a device (403).
	RejectActivationLocked = "ActivationLocked"
	// RejectActivationUsed: the activation was already completed, or the
	// authorisation code already redeemed (409).
	RejectActivationUsed = "ActivationUsed"
	// RejectActivationStale: the request was built from an older version of
	// the activation (a re-creation happened in between); retry (409).
	RejectActivationStale = "ActivationStale"
)

// Defaults of an activation.
const (
	// DefaultActivationMaxAttempts is how many wrong PINs (a patient's) or
	// wrong authorisation codes (a device's) lock an activation.
	DefaultActivationMaxAttempts = 10
	// DefaultActivationExpiryDays: an activation lasts to the end of the Nth
	// day after it was (re-)created.
	DefaultActivationExpiryDays = 5
	// AuthorisationCodeTTL is how long an authorisation code can be
	// exchanged for a token.
	AuthorisationCodeTTL = 15 * time.Minute
	// MaxSubjectIDLength bounds patient and clinician ids.
	MaxSubjectIDLength = 64
)

var subjectIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidSubjectID reports whether id is a valid patient or clinician id: 1 to
// 64 of A-Z, a-z, 0-9, _ and -.
func ValidSubjectID(id string) bool { return subjectIDPattern.MatchString(id) }

// ActivationWorkflowID returns the workflow ID of a subject's activation,
// activation:<kind>:<key>. The key is the device id for a device and a
// keyed pseudonym of the patient id for a patient (the API derives it with
// the activation secret), so no patient id reaches a workflow ID. One subject
// has at most one running activation; a new one after it ends reuses the ID.
// Patient activations started before pseudonyms used the raw patient id:
// the API always finds a running activation by the workflow_id stored with
// it, never by deriving the ID again.
func ActivationWorkflowID(kind, key string) string {
	return "activation:" + kind + ":" + key
}

// ActivationExpiry is the end (23:59:59.999) of the day that is days after
// now's day in loc: the seed's "end of the Nth day", counted from the day
// the activation was (re-)created.
func ActivationExpiry(now time.Time, loc *time.Location, days int) time.Time {
	l := now.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day()+days, 23, 59, 59, int(999*time.Millisecond), loc)
}

// ActivationHashes are an activation's secrets as the workflow knows them:
// argon2id hashes and their salts, never the secrets.
type ActivationHashes struct {
	CodeHash string
	CodeSalt string
	// PinHash and PinSalt are empty for devices, which have no PIN.
	PinHash string
	PinSalt string
}

// ActivationInput starts an activation workflow. The API has already stored
// the activation's row.
type ActivationInput struct {
	ActivationID string
	Kind         string
	// SubjectID is the device id of a device activation. It is empty for a
	// patient: the patient id stays out of the history, and the audit rows
	// the workflow records are filed under the activation row's subject.
	// (Runs started before that carry the patient id.)
	SubjectID string
	Hashes    ActivationHashes
	ExpiresAt time.Time
	// MaxAttempts is how many wrong PINs lock the activation; zero means
	// DefaultActivationMaxAttempts.
	MaxAttempts int
}

// RequestMeta identifies the HTTP request behind an update, for the audit.
type RequestMeta struct {
	RequestID string
	ClientIP  string
	// Actor is the staff member or token subject that asked.
	Actor string
}

// RecreateRequest re-issues a pending activation.
type RecreateRequest struct {
	// ActivationID must be the running activation's: a request built from an
	// older activation is rejected as stale.
	ActivationID string
	Hashes       ActivationHashes
	// CodeDigest is the code's lookup digest (changed for devices).
	CodeDigest string
	ExpiresAt  time.Time
	Meta       RequestMeta
}

// AttemptRequest presents a code and, for patients, a PIN, as hashes under
// the activation's salts. The API has drawn the authorisation code and sends
// only its hash and salt.
type AttemptRequest struct {
	CodeHash     string
	PinHash      string
	PinSalt      string
	AuthCodeHash string
	AuthCodeSalt string
	Meta         RequestMeta
}

// Outcomes of an attempt.
const (
	AttemptActivated = "activated"
	AttemptWrongPIN  = "wrong_pin"
	AttemptLocked    = "locked"
)

// AttemptResult answers an attempt.
type AttemptResult struct {
	Outcome      string
	AttemptsLeft int
}

// RedeemRequest exchanges the authorisation code, as its hash under the
// stored salt.
type RedeemRequest struct {
	AuthCodeHash string
	Meta         RequestMeta
}

// RedeemResult answers a redemption: Redeemed is false for a wrong code.
// A device's wrong codes count like a patient's wrong PINs: AttemptsLeft
// says how many more it may get, and Locked is set when this one locked the
// activation.
type RedeemResult struct {
	Redeemed     bool
	AttemptsLeft int  `json:",omitempty"`
	Locked       bool `json:",omitempty"`
}

// ActivationState is what an activation workflow knows, without secrets.
type ActivationState struct {
	ActivationID string
	Kind         string
	// SubjectID is the device id; empty for a patient (see ActivationInput).
	SubjectID   string
	State       string
	Attempts    int
	MaxAttempts int
	ExpiresAt   time.Time
	ActivatedAt time.Time
}

// ActivationResult is the workflow's result: its final state.
type ActivationResult struct {
	State string
}

// ActivationSummary is an activation run's one-line summary in the Web UI:
// "Activation · patient" (never the patient's id) or "Activation · device
// <device id>".
func ActivationSummary(kind, deviceID string) string {
	if kind == ActivationKindDevice && deviceID != "" {
		return "Activation · device " + deviceID
	}
	return "Activation · " + kind
}

// ActivationDetails are an activation run's fixed details in the Web UI:
// how it is completed and when it expires; nothing about the patient.
func ActivationDetails(kind string, expiresAt time.Time, maxAttempts int) string {
	if maxAttempts <= 0 {
		maxAttempts = DefaultActivationMaxAttempts
	}
	how := fmt.Sprintf("Patient activation: completed with the activation code and a PIN; the %s wrong PIN locks it.", ordinal(maxAttempts))
	if kind == ActivationKindDevice {
		how = fmt.Sprintf("Device activation: completed with the device's code; the %s wrong authorisation code locks it.", ordinal(maxAttempts))
	}
	return how + "\nExpires: " + clock(expiresAt) + " (the end of its last day); the authorisation code it gives is valid for " +
		HumanDuration(AuthorisationCodeTTL) + ", once.\nUpdates: recreate, attempt, redeem. Query: state. Holds hashes only: no code, PIN or patient id."
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
