package api

import (
	"strings"
	"testing"

	"github.com/vigil-health/vigil/internal/message"
)

// checkRefusal holds a decoder's refusal to the API's promise: a 4xx, never
// a 5xx, and a named field whenever the code is about a field.
func checkRefusal(t *testing.T, re *requestError) {
	t.Helper()
	if re.Status < 400 || re.Status > 499 {
		t.Fatalf("status %d for %+v", re.Status, re)
	}
	if (re.Code == CodeInvalidField || re.Code == CodeUnknownField) && re.Field == "" {
		t.Fatalf("%s without a field: %+v", re.Code, re)
	}
	if re.Message == "" {
		t.Fatalf("no message: %+v", re)
	}
}

func FuzzDecodeMessageCreate(f *testing.F) {
	for _, seed := range []string{
		`{"sender_type":"patient","sender_id":"P1","receiver_type":"location","receiver_id":"L1","message_type":{"value":5},"content":"call me"}`,
		`{"sender_type":"patient","sender_id":"P1","receiver_type":"location","receiver_id":"L1","message_type":{"value":4},"content":"x"}`,
		`{"sender_type":"system","sender_id":"s","receiver_type":"patient","receiver_id":"P1","message_type":{"value":0},"content":"a\u0000b","related_message":"0190d5d2-0000-7000-8000-000000000000","internal":true}`,
		`{"message_type":{"value":1e400}}`,
		`{"message_type":{"value":-9223372036854775809}}`,
		`{"content":"\ud800"}`,
		`[]`, `null`, `{}`, ``, `{"a":1}`, `{"sender_id":5}`, `{}{}`, `"x"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, re := decodeMessageCreate(body)
		if re != nil {
			checkRefusal(t, re)
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted an invalid message: %v", err)
		}
		if !m.Type.Valid() || message.ValidContent(m.Content) != "" {
			t.Fatalf("accepted %+v", m)
		}
	})
}

func FuzzDecodeMessagePatch(f *testing.F) {
	for _, seed := range []string{
		`{"retrieved":"2026-01-01T00:00:00Z"}`,
		`{"confirmed":"2026-01-01T00:00:00+01:00","confirmed_by":"C1"}`,
		`{"cancelled":"2026-01-01T00:00:00Z","cancelled_by":"P1","related_message":"0190D5D2-0000-7000-8000-000000000000"}`,
		`{"content":"x"}`, `{"confirmed":null}`, `{"retrieved":"99999-01-01T00:00:00Z"}`, `{"confirmed_by":""}`,
		`{}`, ``, `[]`, `null`, `{"x":1}`, `{"retrieved":1}`, `{"related_message":"{0190d5d2-0000-7000-8000-000000000000}"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, re := decodeMessagePatch(body)
		if re != nil {
			checkRefusal(t, re)
			return
		}
		if p.Empty() {
			t.Fatalf("accepted an empty patch from %q", body)
		}
		for _, by := range []*string{p.ConfirmedBy, p.CancelledBy} {
			if by != nil && !message.ValidPartyID(*by) {
				t.Fatalf("accepted by %q", *by)
			}
		}
		if p.Related != nil && strings.ToLower(*p.Related) != *p.Related {
			t.Fatalf("related id not normalised: %q", *p.Related)
		}
	})
}

func FuzzDecodeCallbackPatients(f *testing.F) {
	for _, seed := range []string{`["P1","P2","P1"]`, `[]`, `null`, `{}`, `[1]`, `["a b"]`, ``, `["P1"]x`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, re := decodeCallbackPatients(body)
		if re != nil {
			checkRefusal(t, re)
			return
		}
		if len(ids) > message.MaxActiveCallbackPatients {
			t.Fatalf("accepted %d ids", len(ids))
		}
		for _, id := range ids {
			if !message.ValidPartyID(id) {
				t.Fatalf("accepted id %q", id)
			}
		}
	})
}

func TestDecodeMessagePatchNamesTheField(t *testing.T) {
	tests := []struct{ body, field, code string }{
		{`{"content":"x"}`, "content", CodeInvalidField},
		{`{"sender_id":"x","confirmed":"2026-01-01T00:00:00Z"}`, "sender_id", CodeInvalidField},
		{`{"colour":"red"}`, "colour", CodeUnknownField},
		{`{"":"red"}`, "", CodeInvalidJSON},
		{`{"confirmed":null}`, "confirmed", CodeInvalidField},
		{`{"retrieved":"1999-12-31T23:59:59Z"}`, "retrieved", CodeInvalidField},
		{`{"related_message":"abc"}`, "related_message", CodeInvalidField},
		{`{}`, "", CodeInvalidJSON},
		{``, "", CodeInvalidJSON},
		{`[]`, "", CodeInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			_, re := decodeMessagePatch([]byte(tt.body))
			if re == nil || re.Field != tt.field || re.Code != tt.code {
				t.Fatalf("got %+v, want field %q code %q", re, tt.field, tt.code)
			}
		})
	}
}
