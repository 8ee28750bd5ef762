//go:build integration

package activation_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/activation"
	"github.com/vigil-health/vigil/internal/testenv"
)

// db is this package's fresh, migrated database.
var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "activation", &db, nil)) }

func store() *activation.Store { return &activation.Store{DB: db} }

func ptr[T any](v T) *T { return &v }

func TestPatchDevice_ChangesRevocationAndAudit(t *testing.T) {
	ctx := context.Background()
	st := store()
	by := activation.Requester{Actor: "A01", RequestID: "req-1", ClientIP: "10.0.0.1"}
	tests := []struct {
		name        string
		patch       activation.DevicePatch
		wantChanged bool
		wantRevoked bool
		wantReason  string
	}{
		{name: "nothing changes", patch: activation.DevicePatch{LocationID: ptr("ward-a"), Active: ptr(true)}},
		{name: "description", patch: activation.DevicePatch{Description: ptr("bed 3")}, wantChanged: true, wantReason: "description"},
		{name: "move revokes", patch: activation.DevicePatch{LocationID: ptr("ward-b")}, wantChanged: true, wantRevoked: true,
			wantReason: "location ward-a -> ward-b; tokens revoked"},
		{name: "deactivate revokes", patch: activation.DevicePatch{Active: ptr(false)}, wantChanged: true, wantRevoked: true,
			wantReason: "deactivated; tokens revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := st.CreateDevice(ctx, "ward-a", "", "A01")
			require.NoError(t, err)
			got, changed, err := st.PatchDevice(ctx, d.ID, tt.patch, by)
			require.NoError(t, err)
			require.Equal(t, tt.wantChanged, changed)
			state, err := st.DeviceState(ctx, d.ID)
			require.NoError(t, err)
			require.True(t, state.Found)
			require.Equal(t, got.Active, state.Active)
			require.Equal(t, got.LocationID, state.LocationID)
			require.Equal(t, tt.wantRevoked, state.RevokedAt != nil)
			entries, err := st.ListAuthAudit(ctx, activation.AuditFilter{Events: []string{activation.AuditDeviceUpdated},
				SubjectID: d.ID, Limit: 10})
			require.NoError(t, err)
			if !tt.wantChanged {
				require.Empty(t, entries)
				return
			}
			require.Len(t, entries, 1)
			require.Equal(t, tt.wantReason, entries[0].Reason)
			require.Equal(t, "A01", entries[0].Actor)
			require.Equal(t, "req-1", entries[0].RequestID)
		})
	}
}

func TestDevice_Missing(t *testing.T) {
	ctx := context.Background()
	id := uuid.NewString()
	_, err := store().Device(ctx, id)
	require.ErrorIs(t, err, activation.ErrNotFound)
	_, _, err = store().PatchDevice(ctx, id, activation.DevicePatch{Active: ptr(false)}, activation.Requester{})
	require.ErrorIs(t, err, activation.ErrNotFound)
	state, err := store().DeviceState(ctx, id)
	require.NoError(t, err)
	require.False(t, state.Found)
}

func TestClinicians_ConflictsPatchAndEndLogin(t *testing.T) {
	ctx := context.Background()
	st := store()
	id, ident := "c-"+uuid.NewString()[:8], "ident-"+uuid.NewString()[:8]
	created, err := st.CreateClinician(ctx, activation.NewClinician{ClinicianID: id, SendEntryIdentifier: ident, LoginActive: true,
		Groups: []string{"send clinician"}, ContractExpiryEODDate: "2027-03-31", CreatedBy: "A01"})
	require.NoError(t, err)
	require.Equal(t, ident, *created.SendEntryIdentifier)
	require.Equal(t, "2027-03-31", created.ContractExpiry.Format(time.DateOnly))
	require.Empty(t, created.LocationIDs)

	tests := []struct {
		name      string
		in        activation.NewClinician
		wantField string
	}{
		{name: "same id", in: activation.NewClinician{ClinicianID: id, LoginActive: true}, wantField: "clinician_id"},
		{name: "same identifier", in: activation.NewClinician{ClinicianID: id + "-2", SendEntryIdentifier: ident, LoginActive: true},
			wantField: "send_entry_identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.CreateClinician(ctx, tt.in)
			var conflict *activation.ConflictError
			require.ErrorAs(t, err, &conflict)
			require.Equal(t, tt.wantField, conflict.Field)
		})
	}

	patched, err := st.PatchClinician(ctx, id, activation.ClinicianPatch{SendEntryIdentifier: ptr(""), ContractExpiryEODDate: ptr(""),
		LocationIDs: []string{"ward-a"}})
	require.NoError(t, err)
	require.Nil(t, patched.SendEntryIdentifier)
	require.Nil(t, patched.ContractExpiry)
	require.Equal(t, []string{"ward-a"}, patched.LocationIDs)
	require.Equal(t, []string{"send clinician"}, patched.Groups, "groups not given stay")
	_, err = st.ClinicianBySendEntryIdentifier(ctx, ident)
	require.ErrorIs(t, err, activation.ErrNotFound)

	require.NoError(t, st.EndClinicianLogin(ctx, id))
	got, err := st.Clinician(ctx, id)
	require.NoError(t, err)
	require.False(t, got.LoginActive)
	_, err = st.PatchClinician(ctx, "nobody-"+uuid.NewString()[:8], activation.ClinicianPatch{LoginActive: ptr(true)})
	require.ErrorIs(t, err, activation.ErrNotFound)
}

func TestActivations_InsertClashLookupsAndRetire(t *testing.T) {
	ctx := context.Background()
	st := store()
	subject, digest := "p-"+uuid.NewString()[:8], uuid.NewString()
	a := activation.NewActivation{ID: uuid.NewString(), Kind: "patient", SubjectID: subject, WorkflowID: "activation:patient:x",
		CodeDigest: digest, CodeHash: "h", CodeSalt: "s", PinSalt: "ps", ExpiresAt: time.Now().Add(time.Hour), CreatedBy: "A01"}
	require.NoError(t, st.InsertActivation(ctx, a))

	second := a
	second.ID, second.CodeDigest = uuid.NewString(), uuid.NewString()
	require.ErrorIs(t, st.InsertActivation(ctx, second), activation.ErrActivationClash, "one live activation per subject")

	live, err := st.LiveActivation(ctx, "patient", subject)
	require.NoError(t, err)
	require.Equal(t, a.ID, live.ID)
	byCode, err := st.ActivationByCode(ctx, "patient", digest)
	require.NoError(t, err)
	require.Equal(t, subject, byCode.SubjectID)
	_, err = st.ActivationByCode(ctx, "device", digest)
	require.ErrorIs(t, err, activation.ErrNotFound)
	_, err = st.LatestAuthorised(ctx, "patient", subject)
	require.ErrorIs(t, err, activation.ErrNotFound, "no authorisation code yet")

	require.NoError(t, st.RetireOrphanActivation(ctx, a.ID))
	state, err := st.ActivationState(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, "expired", state)
	_, err = st.LiveActivation(ctx, "patient", subject)
	require.ErrorIs(t, err, activation.ErrNotFound)
	redeemed, err := st.PatientRedeemed(ctx, subject)
	require.NoError(t, err)
	require.False(t, redeemed)
	items, err := st.PatientActivations(ctx, subject, 10)
	require.NoError(t, err)
	require.Len(t, items, 1)

	require.NoError(t, st.DeleteActivation(ctx, a.ID))
	_, err = st.ActivationState(ctx, a.ID)
	require.ErrorIs(t, err, activation.ErrNotFound)
}
