package message

import (
	"slices"

	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/auth"
)

// The authorisation policy. It reads only the verified token claims (the
// subject, its type and the token's location ids), never anything a client
// sends beside the token:
//
//   - A system token may do everything.
//   - A patient creates messages only as itself (sender_type patient,
//     sender_id its own id) to a location, and never of an alert, clear-alerts
//     or activation-code type. It reads only the messages it sent or
//     received as a patient, never a RED, AMBER or GREY alert. The ids it
//     lists by must be its own.
//   - A clinician creates messages as itself or as one of its token's
//     locations. It reads messages where a party is itself, a location of its
//     token, or any patient.
//   - Any other subject (device, staff) may do nothing.
//
// State changes (CanPatch) go to the side of the message the caller stands
// on: the receiver (itself, or one of a clinician's locations) sets
// retrieved and confirmed; the sender cancels; either may link a related
// message. confirmed_by and cancelled_by default to the caller and, except
// for system tokens, must be the caller. A message the caller may not see
// cannot be changed and answers as missing.

// patientMaySend reports whether a patient may create a message of type t:
// alerts, CLEAR_ALERTS and activation codes come from clinicians and systems.
func patientMaySend(t Type) bool {
	switch t {
	case TypeActivationCode, TypeRedAlert, TypeAmberAlert, TypeGreyAlert, TypeClearAlerts:
		return false
	}
	return true
}

// acts reports whether the caller is the party (id, typ): a patient or
// clinician is its own subject, and a clinician also acts for the locations
// of its token. System tokens act for nobody in particular (they may do
// everything anyway).
func acts(c *auth.Claims, typ, id string) bool {
	switch c.SubjectType {
	case auth.SubjectPatient:
		return typ == PartyPatient && id == c.Subject
	case auth.SubjectClinician:
		return (typ == PartyClinician && id == c.Subject) ||
			(typ == PartyLocation && slices.Contains(c.LocationIDs, id))
	}
	return false
}

// CanCreate returns a *ForbiddenError naming the field when the caller may
// not create m, or nil. m must already be valid.
func CanCreate(c *auth.Claims, m NewMessage) error {
	switch c.SubjectType {
	case auth.SubjectSystem:
		return nil
	case auth.SubjectPatient:
		switch {
		case m.SenderType != PartyPatient:
			return forbidden("sender_type", "a patient sends only as a patient")
		case m.SenderID != c.Subject:
			return forbidden("sender_id", "a patient sends only as itself")
		case m.ReceiverType != PartyLocation:
			return forbidden("receiver_type", "a patient sends only to a location")
		case !patientMaySend(m.Type):
			return forbidden("message_type.value", "a patient cannot send "+m.Type.Name()+" messages")
		}
		return nil
	case auth.SubjectClinician:
		switch m.SenderType {
		case PartyClinician:
			if m.SenderID != c.Subject {
				return forbidden("sender_id", "a clinician sends only as itself or one of its token's locations")
			}
		case PartyLocation:
			if !slices.Contains(c.LocationIDs, m.SenderID) {
				return forbidden("sender_id", "the location is not one of the token's locations")
			}
		default:
			return forbidden("sender_type", "a clinician sends only as a clinician or a location")
		}
		return nil
	}
	return forbidden("", "this token may not send messages")
}

// Visible reports whether the caller may see m.
func Visible(c *auth.Claims, m *Message) bool {
	switch c.SubjectType {
	case auth.SubjectSystem:
		return true
	case auth.SubjectPatient:
		return !m.Type.IsAlert() && (acts(c, m.SenderType, m.SenderID) || acts(c, m.ReceiverType, m.ReceiverID))
	case auth.SubjectClinician:
		return acts(c, m.SenderType, m.SenderID) || acts(c, m.ReceiverType, m.ReceiverID) ||
			m.SenderType == PartyPatient || m.ReceiverType == PartyPatient
	}
	return false
}

// CanPatch returns a *ForbiddenError naming the field when the caller may
// not apply p to m (which it can see), or nil.
func CanPatch(c *auth.Claims, m *Message, p Patch) error {
	if c.SubjectType == auth.SubjectSystem {
		return nil
	}
	receiver := acts(c, m.ReceiverType, m.ReceiverID)
	sender := acts(c, m.SenderType, m.SenderID)
	switch {
	case p.Retrieved != nil && !receiver:
		return forbidden("retrieved", "only the receiver marks a message retrieved")
	case p.Confirmed != nil && !receiver:
		return forbidden("confirmed", "only the receiver confirms a message")
	case p.ConfirmedBy != nil && !receiver:
		return forbidden("confirmed_by", "only the receiver confirms a message")
	case p.ConfirmedBy != nil && *p.ConfirmedBy != c.Subject:
		return forbidden("confirmed_by", "must be the caller's own id")
	case p.Cancelled != nil && !sender:
		return forbidden("cancelled", "only the sender cancels a message")
	case p.CancelledBy != nil && !sender:
		return forbidden("cancelled_by", "only the sender cancels a message")
	case p.CancelledBy != nil && *p.CancelledBy != c.Subject:
		return forbidden("cancelled_by", "must be the caller's own id")
	case p.Related != nil && !receiver && !sender:
		return forbidden("related_message", "only the sender or the receiver links messages")
	}
	return nil
}

// CanList returns a *ForbiddenError when the caller may not list by the
// party ids of a list endpoint's path (field "id"): a patient lists only by
// its own id (for a sender-receiver pair, one of the two must be its own).
// Everyone else may list by any id; the visibility filter still applies.
func CanList(c *auth.Claims, ids ...string) error {
	switch c.SubjectType {
	case auth.SubjectSystem, auth.SubjectClinician:
		return nil
	case auth.SubjectPatient:
		if slices.Contains(ids, c.Subject) {
			return nil
		}
		return forbidden("id", "a patient lists only its own messages")
	}
	return forbidden("", "this token may not read messages")
}

// visibilitySQL is Visible as a SQL condition on the messages table (whose
// columns the condition names unqualified); arg adds a query argument and
// returns its placeholder.
func visibilitySQL(c *auth.Claims, arg func(any) string) string {
	switch c.SubjectType {
	case auth.SubjectSystem:
		return "TRUE"
	case auth.SubjectPatient:
		me := arg(c.Subject)
		return "(type NOT IN (7, 8, 9) AND ((sender_type = 'patient' AND sender_id = " + me +
			") OR (receiver_type = 'patient' AND receiver_id = " + me + ")))"
	case auth.SubjectClinician:
		me := arg(c.Subject)
		locs := arg(pq.StringArray(append([]string{}, c.LocationIDs...))) // never NULL
		return "((sender_type = 'clinician' AND sender_id = " + me + ")" +
			" OR (receiver_type = 'clinician' AND receiver_id = " + me + ")" +
			" OR (sender_type = 'location' AND sender_id = ANY(" + locs + "))" +
			" OR (receiver_type = 'location' AND receiver_id = ANY(" + locs + "))" +
			" OR sender_type = 'patient' OR receiver_type = 'patient')"
	}
	return "FALSE"
}
