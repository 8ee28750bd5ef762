package mailsink_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/mail/mailsink"
)

func start(t *testing.T, o mailsink.Options) *mailsink.Sink {
	t.Helper()
	s, err := mailsink.Start(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// crlf turns a readable raw message into SMTP line endings.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// deliver sends raw with go-smtp's client.
func deliver(t *testing.T, s *mailsink.Sink, tlsMode string, auth sasl.Client, from string, to []string, raw string) error {
	t.Helper()
	var (
		c   *smtp.Client
		err error
	)
	cfg := &tls.Config{RootCAs: s.CertPool(), ServerName: "127.0.0.1"}
	switch tlsMode {
	case "tls":
		c, err = smtp.DialTLS(s.Addr(), cfg)
	case "starttls":
		c, err = smtp.DialStartTLS(s.Addr(), cfg)
	default:
		c, err = smtp.Dial(s.Addr())
	}
	require.NoError(t, err)
	defer c.Close()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	return c.SendMail(from, to, strings.NewReader(crlf(raw)))
}

func TestParseMIME(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		subject  string
		to, cc   []string
		id       string
		text     string
		html     string
		parseErr bool
	}{
		{
			name: "alternative quoted-printable",
			raw: `From: <m@x.example>
To: "Notaufnahme" <na@k.example>, it@k.example
Cc: =?UTF-8?q?B=C3=BCro?= <office@aktin.example>
Subject: =?UTF-8?q?Automatische_Information:_Gr=C3=BC=C3=9Fe?=
Message-ID: <id-1@vigil>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=BOUND

--BOUND
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

Gr=C3=BC=C3=9Fe, eine sehr lange Zeile die umbrochen wurde und trotzdem =
zusammengeh=C3=B6rt.
--BOUND
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<p>Gr=C3=BC=C3=9Fe &amp; Co</p>
--BOUND--
`,
			subject: "Automatische Information: Grüße",
			to:      []string{"na@k.example", "it@k.example"},
			cc:      []string{"office@aktin.example"},
			id:      "<id-1@vigil>",
			text:    "Grüße, eine sehr lange Zeile die umbrochen wurde und trotzdem zusammengehört.",
			html:    "<p>Grüße &amp; Co</p>",
		},
		{
			name: "nested mixed with base64 parts and an attachment",
			raw: `To: a@x.example
Subject: nested
Content-Type: multipart/mixed; boundary=OUT

--OUT
Content-Type: multipart/alternative; boundary=IN

--IN
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

w6TDtsO8IGJhc2U2NA==
--IN
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+w6TDtsO8PC9wPg==
--IN--
--OUT
Content-Type: text/csv
Content-Disposition: attachment; filename=stats.csv

a;b
--OUT--
`,
			subject: "nested",
			to:      []string{"a@x.example"},
			text:    "äöü base64",
			html:    "<p>äöü</p>",
		},
		{
			name:    "single part latin-1 html like the seed",
			raw:     "To: a@x.example\nSubject: Automatische Information: AKTIN DWH Offline\nContent-Type: text/html; charset=\"iso-8859-1\"\nContent-Transfer-Encoding: quoted-printable\n\n<b>Gr=FC=DFe</b>\n",
			subject: "Automatische Information: AKTIN DWH Offline",
			to:      []string{"a@x.example"},
			html:    "<b>Grüße</b>",
		},
		{
			name:    "plain text without content type",
			raw:     "To: a@x.example\nSubject: hi\n\nhello\n",
			subject: "hi",
			to:      []string{"a@x.example"},
			text:    "hello",
		},
		{
			name:     "broken cc header is reported, rest parsed",
			raw:      "To: a@x.example\nCc: not an address\nSubject: hi\n\nhello\n",
			subject:  "hi",
			to:       []string{"a@x.example"},
			text:     "hello",
			parseErr: true,
		},
	}
	s := start(t, mailsink.Options{TLS: "none"})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, deliver(t, s, "none", nil, "m@x.example", []string{"a@x.example"}, tc.raw))
			got, err := s.Wait(context.Background(), i+1)
			require.NoError(t, err)
			r := got[i]
			if tc.parseErr {
				require.Error(t, r.ParseErr)
			} else {
				require.NoError(t, r.ParseErr)
			}
			require.Equal(t, tc.subject, r.Subject)
			require.Equal(t, tc.to, r.To)
			require.Equal(t, tc.cc, r.CC)
			require.Equal(t, tc.id, r.MessageID)
			require.Equal(t, tc.text, strings.TrimRight(r.Text, "\r\n"))
			require.Equal(t, tc.html, strings.TrimRight(r.HTML, "\r\n"))
			require.Equal(t, "m@x.example", r.From)
			require.Equal(t, []string{"a@x.example"}, r.Rcpt)
			require.Equal(t, crlf(tc.raw), string(r.Raw))
			require.False(t, r.TLS)
		})
	}
}

func TestTLSModesAndAuth(t *testing.T) {
	raw := "To: a@x.example\nSubject: s\n\nbody\n"
	tests := []struct {
		name    string
		mode    string
		user    string
		auth    sasl.Client
		wantErr int // SMTP code; 0 = delivered
		wantTLS bool
	}{
		{"starttls", "starttls", "", nil, 0, true},
		{"implicit tls", "tls", "", nil, 0, true},
		{"none", "none", "", nil, 0, false},
		{"auth ok", "starttls", "u", sasl.NewPlainClient("", "u", "pw"), 0, true},
		{"auth ok in clear", "none", "u", sasl.NewPlainClient("", "u", "pw"), 0, false},
		{"auth missing", "starttls", "u", nil, 502, true},
		{"wrong password", "tls", "u", sasl.NewPlainClient("", "u", "nope"), 535, true},
		{"wrong user", "starttls", "u", sasl.NewPlainClient("", "v", "pw"), 535, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, mailsink.Options{TLS: tc.mode, Username: tc.user, Password: "pw"})
			if tc.mode == "none" {
				require.Nil(t, s.CertPool())
			} else {
				require.NotNil(t, s.CertPool())
			}
			err := deliver(t, s, tc.mode, tc.auth, "m@x.example", []string{"a@x.example", "b@x.example"}, raw)
			if tc.wantErr != 0 {
				var se *smtp.SMTPError
				require.ErrorAs(t, err, &se)
				require.Equal(t, tc.wantErr, se.Code)
				require.Empty(t, s.Messages())
				return
			}
			require.NoError(t, err)
			got := s.Messages()
			require.Len(t, got, 1)
			require.Equal(t, tc.wantTLS, got[0].TLS)
			require.Equal(t, tc.user, got[0].Auth)
			require.Equal(t, []string{"a@x.example", "b@x.example"}, got[0].Rcpt)
		})
	}
}

func TestWaitResetAndLogging(t *testing.T) {
	var logs bytes.Buffer
	s := start(t, mailsink.Options{TLS: "none", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NotZero(t, s.Port())
	require.Equal(t, "127.0.0.1", s.Host())

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got, err := s.Wait(ctx, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, got)

	done := make(chan []mailsink.Received, 1)
	go func() {
		got, err := s.Wait(context.Background(), 2)
		if err == nil {
			done <- got
		}
	}()
	for _, subj := range []string{"first", "second"} {
		require.NoError(t, deliver(t, s, "none", nil, "m@x.example", []string{"a@x.example"}, "To: a@x.example\nSubject: "+subj+"\n\nx\n"))
	}
	select {
	case got := <-done:
		require.Len(t, got, 2)
		require.Equal(t, "first", got[0].Subject)
		require.Equal(t, "second", got[1].Subject)
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return")
	}
	require.Contains(t, logs.String(), "subject=second")
	require.Contains(t, logs.String(), "a@x.example")

	s.Reset()
	require.Empty(t, s.Messages())
}

func TestStartRejectsUnknownTLSMode(t *testing.T) {
	_, err := mailsink.Start(mailsink.Options{TLS: "ssl"})
	require.Error(t, err)
}

func TestCloseIsIdempotent(t *testing.T) {
	s, err := mailsink.Start(mailsink.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
}

func TestRefuseRecipients(t *testing.T) {
	s := start(t, mailsink.Options{TLS: "none", RefuseRecipients: map[string]int{"Bounce@x.example": 550, "busy@x.example": 450}})
	rcptCodes := func() map[string]int {
		c, err := smtp.Dial(s.Addr())
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Mail("m@x.example", nil))
		got := map[string]int{}
		for _, to := range []string{"ok@x.example", "bounce@X.example", "busy@x.example"} {
			err := c.Rcpt(to, nil)
			if err == nil {
				got[to] = 250
				continue
			}
			var se *smtp.SMTPError
			require.ErrorAs(t, err, &se)
			got[to] = se.Code
		}
		w, err := c.Data()
		require.NoError(t, err)
		_, err = w.Write([]byte(crlf("Subject: s\n\nbody\n")))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		return got
	}

	require.Equal(t, map[string]int{"ok@x.example": 250, "bounce@X.example": 550, "busy@x.example": 450}, rcptCodes())
	msgs, err := s.Wait(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, []string{"ok@x.example"}, msgs[0].Rcpt, "only the accepted recipient")
	require.Equal(t, []mailsink.Refusal{{Address: "bounce@X.example", Code: 550}, {Address: "busy@x.example", Code: 450}}, s.Refusals())

	require.NoError(t, s.SetRefusal("BUSY@x.example", 0))
	require.NoError(t, s.SetRefusal("ok@x.example", 421))
	require.Equal(t, map[string]int{"ok@x.example": 421, "bounce@X.example": 550, "busy@x.example": 250}, rcptCodes())

	require.Error(t, s.SetRefusal("a@x.example", 250))
	_, err = mailsink.Start(mailsink.Options{RefuseRecipients: map[string]int{"a@x.example": 200}})
	require.Error(t, err)
}
