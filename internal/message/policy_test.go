package message_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/keyset"
	"github.com/vigil-health/vigil/internal/message"
)

var (
	patientP  = &auth.Claims{Subject: "P1", SubjectType: auth.SubjectPatient}
	clinician = &auth.Claims{Subject: "C1", SubjectType: auth.SubjectClinician, LocationIDs: []string{"L1", "L2"}}
	system    = &auth.Claims{Subject: "sys", SubjectType: auth.SubjectSystem, Scopes: []string{"*"}}
	device    = &auth.Claims{Subject: "D1", SubjectType: auth.SubjectDevice}
	staff     = &auth.Claims{Subject: "S1", SubjectType: auth.SubjectStaff}
)

func newMsg(st, sid, rt, rid string, typ message.Type) message.NewMessage {
	return message.NewMessage{SenderType: st, SenderID: sid, ReceiverType: rt, ReceiverID: rid, Type: typ, Content: "hi"}
}

// forbiddenField returns the field of a *ForbiddenError, "-" for nil and
// "?" for any other error.
func forbiddenField(err error) string {
	var fe *message.ForbiddenError
	switch {
	case err == nil:
		return "-"
	case errors.As(err, &fe):
		return fe.Field
	}
	return "?"
}

func TestCanCreate(t *testing.T) {
	tests := []struct {
		name   string
		caller *auth.Claims
		msg    message.NewMessage
		// want is "-" when allowed, else the field the refusal names.
		want string
	}{
		{"patient to a location", patientP, newMsg("patient", "P1", "location", "L9", message.TypeCallback), "-"},
		{"patient as another patient", patientP, newMsg("patient", "P2", "location", "L1", message.TypeGeneral), "sender_id"},
		{"patient as a clinician", patientP, newMsg("clinician", "P1", "location", "L1", message.TypeGeneral), "sender_type"},
		{"patient to a clinician", patientP, newMsg("patient", "P1", "clinician", "C1", message.TypeGeneral), "receiver_type"},
		{"patient to a patient", patientP, newMsg("patient", "P1", "patient", "P2", message.TypeGeneral), "receiver_type"},
		{"patient sends an alert", patientP, newMsg("patient", "P1", "location", "L1", message.TypeRedAlert), "message_type.value"},
		{"patient sends clear alerts", patientP, newMsg("patient", "P1", "location", "L1", message.TypeClearAlerts), "message_type.value"},
		{"patient sends an activation code", patientP, newMsg("patient", "P1", "location", "L1", message.TypeActivationCode), "message_type.value"},
		{"clinician as itself", clinician, newMsg("clinician", "C1", "patient", "P1", message.TypeDosage), "-"},
		{"clinician as its location", clinician, newMsg("location", "L2", "patient", "P1", message.TypeRedAlert), "-"},
		{"clinician as another clinician", clinician, newMsg("clinician", "C2", "patient", "P1", message.TypeDosage), "sender_id"},
		{"clinician as another location", clinician, newMsg("location", "L3", "patient", "P1", message.TypeDosage), "sender_id"},
		{"clinician as a patient", clinician, newMsg("patient", "P1", "location", "L1", message.TypeDosage), "sender_type"},
		{"clinician as a system", clinician, newMsg("system", "C1", "location", "L1", message.TypeDosage), "sender_type"},
		{"system as anyone", system, newMsg("patient", "P7", "clinician", "C9", message.TypeRedAlert), "-"},
		{"device", device, newMsg("location", "L1", "patient", "P1", message.TypeGeneral), ""},
		{"staff", staff, newMsg("location", "L1", "patient", "P1", message.TypeGeneral), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, forbiddenField(message.CanCreate(tt.caller, tt.msg)))
		})
	}
}

func msg(st, sid, rt, rid string, typ message.Type) *message.Message {
	return &message.Message{SenderType: st, SenderID: sid, ReceiverType: rt, ReceiverID: rid, Type: typ}
}

func TestVisible(t *testing.T) {
	tests := []struct {
		name   string
		caller *auth.Claims
		msg    *message.Message
		want   bool
	}{
		{"patient sent", patientP, msg("patient", "P1", "location", "L1", message.TypeGeneral), true},
		{"patient received", patientP, msg("location", "L1", "patient", "P1", message.TypeDosage), true},
		{"patient received a callback", patientP, msg("clinician", "C1", "patient", "P1", message.TypeCallback), true},
		{"patient never sees red", patientP, msg("location", "L1", "patient", "P1", message.TypeRedAlert), false},
		{"patient never sees amber", patientP, msg("location", "L1", "patient", "P1", message.TypeAmberAlert), false},
		{"patient never sees grey", patientP, msg("patient", "P1", "location", "L1", message.TypeGreyAlert), false},
		{"patient sees clear alerts", patientP, msg("location", "L1", "patient", "P1", message.TypeClearAlerts), true},
		{"another patient's", patientP, msg("location", "L1", "patient", "P2", message.TypeGeneral), false},
		{"same id, other party type", patientP, msg("clinician", "P1", "location", "L1", message.TypeGeneral), false},
		{"clinician's own", clinician, msg("clinician", "C1", "clinician", "C2", message.TypeGeneral), true},
		{"to the clinician", clinician, msg("system", "S", "clinician", "C1", message.TypeGeneral), true},
		{"clinician's location", clinician, msg("location", "L2", "clinician", "C7", message.TypeGeneral), true},
		{"to the clinician's location", clinician, msg("clinician", "C7", "location", "L1", message.TypeGeneral), true},
		{"any patient's", clinician, msg("patient", "P9", "location", "L9", message.TypeCallback), true},
		{"patient alerts too", clinician, msg("location", "L9", "patient", "P9", message.TypeRedAlert), true},
		{"other clinicians", clinician, msg("clinician", "C7", "clinician", "C8", message.TypeGeneral), false},
		{"other location", clinician, msg("location", "L9", "clinician", "C8", message.TypeGeneral), false},
		{"location id as clinician id", clinician, msg("clinician", "L1", "clinician", "C8", message.TypeGeneral), false},
		{"system sees all", system, msg("clinician", "C7", "clinician", "C8", message.TypeRedAlert), true},
		{"device sees none", device, msg("location", "L1", "patient", "P1", message.TypeGeneral), false},
		{"staff sees none", staff, msg("location", "L1", "patient", "P1", message.TypeGeneral), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, message.Visible(tt.caller, tt.msg))
		})
	}
}

func TestCanPatch(t *testing.T) {
	now := time.Now()
	self, other := "C1", "C2"
	p1 := "P1"
	toPatient := msg("location", "L1", "patient", "P1", message.TypeCallback)
	fromPatient := msg("patient", "P1", "location", "L1", message.TypeCallback)
	fromPatientElsewhere := msg("patient", "P1", "location", "L9", message.TypeCallback)
	rel := "0190d5d2-0000-7000-8000-000000000000"
	tests := []struct {
		name   string
		caller *auth.Claims
		msg    *message.Message
		patch  message.Patch
		want   string
	}{
		{"receiver patient retrieves", patientP, toPatient, message.Patch{Retrieved: &now}, "-"},
		{"receiver patient confirms as itself", patientP, toPatient, message.Patch{Confirmed: &now, ConfirmedBy: &p1}, "-"},
		{"receiver patient confirms as someone else", patientP, toPatient, message.Patch{Confirmed: &now, ConfirmedBy: &other}, "confirmed_by"},
		{"receiver patient cannot cancel", patientP, toPatient, message.Patch{Cancelled: &now}, "cancelled"},
		{"sender patient cancels", patientP, fromPatient, message.Patch{Cancelled: &now}, "-"},
		{"sender patient cannot confirm", patientP, fromPatient, message.Patch{Confirmed: &now}, "confirmed"},
		{"sender patient cannot mark retrieved", patientP, fromPatient, message.Patch{Retrieved: &now}, "retrieved"},
		{"sender patient links", patientP, fromPatient, message.Patch{Related: &rel}, "-"},
		{"location member confirms", clinician, fromPatient, message.Patch{Confirmed: &now, ConfirmedBy: &self}, "-"},
		{"location member cannot cancel", clinician, fromPatient, message.Patch{CancelledBy: &self}, "cancelled_by"},
		{"non-member cannot confirm", clinician, fromPatientElsewhere, message.Patch{Confirmed: &now}, "confirmed"},
		{"non-member cannot link", clinician, fromPatientElsewhere, message.Patch{Related: &rel}, "related_message"},
		{"location sender cancels", clinician, toPatient, message.Patch{Cancelled: &now, CancelledBy: &self}, "-"},
		{"location sender cancels as other", clinician, toPatient, message.Patch{Cancelled: &now, CancelledBy: &other}, "cancelled_by"},
		{"system does anything", system, fromPatientElsewhere, message.Patch{Confirmed: &now, ConfirmedBy: &other, Cancelled: &now}, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, forbiddenField(message.CanPatch(tt.caller, tt.msg, tt.patch)))
		})
	}
}

func TestCanList(t *testing.T) {
	require.NoError(t, message.CanList(patientP, "P1"))
	require.NoError(t, message.CanList(patientP, "L1", "P1"), "a pair with the patient on one side")
	require.Equal(t, "id", forbiddenField(message.CanList(patientP, "P2")))
	require.Equal(t, "id", forbiddenField(message.CanList(patientP, "L1", "P2")))
	require.NoError(t, message.CanList(clinician, "anyone"))
	require.NoError(t, message.CanList(system, "anyone"))
	require.Equal(t, "", forbiddenField(message.CanList(device, "D1")))
}

func TestValidate(t *testing.T) {
	ok := newMsg("patient", "P1", "location", "L1", message.TypeGeneral)
	related := "not-a-uuid"
	tests := []struct {
		name string
		edit func(*message.NewMessage)
		want string
	}{
		{"valid", func(*message.NewMessage) {}, ""},
		{"retired type 4", func(m *message.NewMessage) { m.Type = 4 }, "message_type.value"},
		{"unknown type", func(m *message.NewMessage) { m.Type = 11 }, "message_type.value"},
		{"negative type", func(m *message.NewMessage) { m.Type = -1 }, "message_type.value"},
		{"sender type", func(m *message.NewMessage) { m.SenderType = "device" }, "sender_type"},
		{"receiver type", func(m *message.NewMessage) { m.ReceiverType = "" }, "receiver_type"},
		{"sender id empty", func(m *message.NewMessage) { m.SenderID = "" }, "sender_id"},
		{"receiver id with a space", func(m *message.NewMessage) { m.ReceiverID = "L 1" }, "receiver_id"},
		{"receiver id too long", func(m *message.NewMessage) { m.ReceiverID = strings.Repeat("a", 129) }, "receiver_id"},
		{"blank content", func(m *message.NewMessage) { m.Content = " \n\t" }, "content"},
		{"control character", func(m *message.NewMessage) { m.Content = "a\x07b" }, "content"},
		{"carriage return", func(m *message.NewMessage) { m.Content = "a\r\nb" }, "content"},
		{"C1 control", func(m *message.NewMessage) { m.Content = "a\u0085b" }, "content"},
		{"invalid UTF-8", func(m *message.NewMessage) { m.Content = "a\xffb" }, "content"},
		{"too long", func(m *message.NewMessage) { m.Content = strings.Repeat("é", message.MaxContentBytes/2+1) }, "content"},
		{"longest", func(m *message.NewMessage) { m.Content = strings.Repeat("x", message.MaxContentBytes) }, ""},
		{"multiline with tabs", func(m *message.NewMessage) { m.Content = "take\t2\nat night 🌙" }, ""},
		{"related not a uuid", func(m *message.NewMessage) { m.Related = &related }, "related_message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok
			tt.edit(&m)
			err := m.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			var ie *message.InvalidError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, tt.want, ie.Field)
		})
	}
}

func TestTypes(t *testing.T) {
	for v, name := range map[message.Type]string{0: "GENERAL", 1: "DOSAGE", 2: "DIETARY", 3: "FEEDBACK", 5: "CALLBACK",
		6: "ACTIVATION_CODE", 7: "RED_ALERT", 8: "AMBER_ALERT", 9: "GREY_ALERT", 10: "CLEAR_ALERTS"} {
		require.True(t, v.Valid())
		require.Equal(t, name, v.Name())
		require.Equal(t, v >= 7 && v <= 9, v.IsAlert())
	}
	require.False(t, message.Type(4).Valid(), "4 is retired")
}

func TestCursorRoundTrip(t *testing.T) {
	c := message.Cursor{CreatedAt: time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC), ID: "0190d5d2-0000-7000-8000-000000000001"}
	got, err := message.DecodeCursor(c.Encode())
	require.NoError(t, err)
	require.Equal(t, c, got)
	_, err = message.DecodeCursor(keyset.Encode("m1", time.Now(), "1'; DROP TABLE messages"))
	require.ErrorIs(t, err, keyset.ErrInvalid)
	_, err = message.DecodeCursor(keyset.Encode("c1", time.Now(), c.ID))
	require.ErrorIs(t, err, keyset.ErrInvalid)
}
