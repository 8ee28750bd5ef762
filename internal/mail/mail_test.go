package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/mail"
	"github.com/vigil-health/vigil/internal/mail/mailsink"
)

const (
	user     = "monitor@aktin.example"
	password = "s3cret-Pa55word!"
)

func startSink(t *testing.T, o mailsink.Options) *mailsink.Sink {
	t.Helper()
	s, err := mailsink.Start(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func senderFor(t *testing.T, s *mailsink.Sink, mode mail.TLSMode, username, pass string) *mail.Sender {
	t.Helper()
	snd, err := mail.NewSender(mail.Config{
		Host:     s.Host(),
		Port:     s.Port(),
		Username: username,
		Password: pass,
		TLS:      mode,
		From:     "AKTIN Monitor <monitor@aktin.example>",
		Timeout:  5 * time.Second,
		RootCAs:  s.CertPool(),
		HeloName: "vigil.test",
	})
	require.NoError(t, err)
	return snd
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func TestSendEndToEnd(t *testing.T) {
	tests := []struct {
		name    string
		mode    mail.TLSMode
		auth    bool
		wantTLS bool
	}{
		{"starttls with auth", mail.TLSStartTLS, true, true},
		{"starttls without auth", mail.TLSStartTLS, false, true},
		{"implicit tls with auth", mail.TLSImplicit, true, true},
		{"implicit tls without auth", mail.TLSImplicit, false, true},
		{"plain without auth", mail.TLSNone, false, false},
		{"plain with auth on loopback", mail.TLSNone, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := mailsink.Options{TLS: string(tc.mode)}
			username, pass := "", ""
			if tc.auth {
				opts.Username, opts.Password = user, password
				username, pass = user, password
			}
			sink := startSink(t, opts)
			snd := senderFor(t, sink, tc.mode, username, pass)

			msg := mail.Message{
				MessageID: "<node-17.offline.1@vigil>",
				To:        []string{"notaufnahme@klinik.example", "IT <it@klinik.example>"},
				CC:        []string{"office@aktin.example", "it@klinik.example" /* duplicate of To: dropped */},
				Subject:   "Automatische Information: AKTIN DWH Offline – Klinikum Süd",
				Text:      "Sehr geehrte Damen und Herren,\n\nLetzter Kontakt: 01.07.2025 08:05\nÄÖÜß äöü €\n" + strings.Repeat("lange Zeile ", 20) + "\n",
				HTML:      "<p>Klinikum &lt;Süd&gt; &amp; Co</p>\n<p>Letzter Kontakt: <b>01.07.2025 08:05</b></p>\n",
			}
			require.NoError(t, snd.Send(ctx(t), msg))

			got, err := sink.Wait(ctx(t), 1)
			require.NoError(t, err)
			require.Len(t, got, 1)
			r := got[0]
			require.NoError(t, r.ParseErr)
			require.Equal(t, "monitor@aktin.example", r.From)
			require.Equal(t, sorted([]string{"notaufnahme@klinik.example", "it@klinik.example", "office@aktin.example"}), sorted(r.Rcpt),
				"CC addresses must be envelope recipients")
			require.Equal(t, []string{"notaufnahme@klinik.example", "it@klinik.example"}, r.To)
			require.NotContains(t, r.To, "office@aktin.example")
			require.Equal(t, []string{"office@aktin.example"}, r.CC)
			require.Equal(t, "<node-17.offline.1@vigil>", r.MessageID)
			require.Equal(t, msg.Subject, r.Subject)
			require.Equal(t, normalize(msg.Text), normalize(r.Text))
			require.Equal(t, normalize(msg.HTML), normalize(r.HTML))
			require.Equal(t, tc.wantTLS, r.TLS)
			if tc.auth {
				require.Equal(t, user, r.Auth)
			} else {
				require.Empty(t, r.Auth)
			}

			raw := string(r.Raw)
			require.Contains(t, raw, "multipart/alternative")
			require.Contains(t, strings.ToLower(raw), "charset=utf-8")
			require.Regexp(t, `(?m)^Date: `, raw)
			require.Regexp(t, `(?m)^Cc: `, raw)
			require.NotRegexp(t, `(?mi)^Bcc:`, raw)
			require.Contains(t, raw, "Auto-Submitted: auto-generated")
			require.NotContains(t, raw, password)
		})
	}
}

// normalize makes line endings comparable (SMTP transports CRLF).
func normalize(s string) string {
	return strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
}

func TestSendSinglePartAndGeneratedMessageID(t *testing.T) {
	sink := startSink(t, mailsink.Options{TLS: "starttls"})
	snd := senderFor(t, sink, mail.TLSStartTLS, "", "")

	require.NoError(t, snd.Send(ctx(t), mail.Message{To: []string{"a@x.example"}, Subject: "text only", Text: "hallo\n"}))
	require.NoError(t, snd.Send(ctx(t), mail.Message{MessageID: "html@vigil", To: []string{"a@x.example"}, Subject: "html only", HTML: "<p>hi</p>"}))

	got, err := sink.Wait(ctx(t), 2)
	require.NoError(t, err)
	require.Equal(t, "hallo", normalize(got[0].Text))
	require.Empty(t, got[0].HTML)
	require.Regexp(t, `^<.+@.+>$`, got[0].MessageID)
	require.Empty(t, got[0].CC)
	require.Equal(t, "<p>hi</p>", normalize(got[1].HTML))
	require.Equal(t, "<html@vigil>", got[1].MessageID)
}

func TestSendConcurrently(t *testing.T) {
	sink := startSink(t, mailsink.Options{TLS: "starttls", Username: user, Password: password})
	snd := senderFor(t, sink, mail.TLSStartTLS, user, password)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = snd.Send(ctx(t), mail.Message{
				MessageID: fmt.Sprintf("<m%d@vigil>", i),
				To:        []string{fmt.Sprintf("r%d@x.example", i)},
				Subject:   fmt.Sprintf("mail %d", i), Text: "x",
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	got, err := sink.Wait(ctx(t), n)
	require.NoError(t, err)
	require.Len(t, got, n)
}

func TestWrongPasswordIsPermanentAndRedacted(t *testing.T) {
	for _, mode := range []mail.TLSMode{mail.TLSStartTLS, mail.TLSImplicit} {
		t.Run(string(mode), func(t *testing.T) {
			sink := startSink(t, mailsink.Options{TLS: string(mode), Username: user, Password: "the-right-one"})
			snd := senderFor(t, sink, mode, user, password)
			err := snd.Send(ctx(t), mail.Message{To: []string{"a@x.example"}, Subject: "s", Text: "t"})
			require.Error(t, err)
			require.True(t, mail.IsPermanent(err), "%v", err)
			require.Equal(t, 535, mail.ReplyCode(err))
			require.NotContains(t, fmt.Sprintf("%v %+v %#v", err, err, err), password)
			require.Empty(t, sink.Messages())
		})
	}
}

func TestStartTLSIsMandatory(t *testing.T) {
	// The server offers no STARTTLS: the sender must refuse, never fall back
	// to plain text (and never send the password in clear).
	sink := startSink(t, mailsink.Options{TLS: "none"})
	cfg := mail.Config{Host: sink.Host(), Port: sink.Port(), TLS: mail.TLSStartTLS, From: "m@x.example", Timeout: 5 * time.Second}
	for _, withAuth := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth=%v", withAuth), func(t *testing.T) {
			c := cfg
			if withAuth {
				c.Username, c.Password = user, password
			}
			snd, err := mail.NewSender(c)
			require.NoError(t, err)
			err = snd.Send(ctx(t), mail.Message{To: []string{"a@x.example"}, Subject: "s", Text: "t"})
			require.Error(t, err)
			require.Contains(t, err.Error(), "STARTTLS")
			require.False(t, mail.IsPermanent(err), "a missing STARTTLS is retried, it may be a transient interception")
			require.NotContains(t, err.Error(), password)
			require.Empty(t, sink.Messages())
		})
	}
}

func TestUntrustedCertificateFails(t *testing.T) {
	sink := startSink(t, mailsink.Options{TLS: "tls"})
	snd, err := mail.NewSender(mail.Config{Host: sink.Host(), Port: sink.Port(), TLS: mail.TLSImplicit, From: "m@x.example", Timeout: 5 * time.Second})
	require.NoError(t, err)
	err = snd.Send(ctx(t), mail.Message{To: []string{"a@x.example"}, Subject: "s", Text: "t"})
	require.Error(t, err)
	require.False(t, mail.IsPermanent(err))
	require.Empty(t, sink.Messages())
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	snd, err := mail.NewSender(mail.Config{Host: "127.0.0.1", Port: port, TLS: mail.TLSNone, From: "m@x.example", Timeout: 2 * time.Second})
	require.NoError(t, err)
	err = snd.Send(ctx(t), mail.Message{To: []string{"a@x.example"}, Subject: "s", Text: "t"})
	require.Error(t, err)
	require.False(t, mail.IsPermanent(err))
}

func TestCancelledContextAbortsSend(t *testing.T) {
	// A server that accepts but never greets.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); _ = c.Close() }()
		}
	}()
	snd, err := mail.NewSender(mail.Config{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, TLS: mail.TLSNone, From: "m@x.example", Timeout: time.Minute})
	require.NoError(t, err)
	c, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { done <- snd.Send(c, mail.Message{To: []string{"a@x.example"}, Subject: "s", Text: "t"}) }()
	select {
	case err := <-done:
		require.Error(t, err)
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, mail.IsPermanent(err))
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return after the context was cancelled")
	}
}

// rejectingBackend is a go-smtp server that answers RCPT by address.
type rejectingBackend struct{}

func (rejectingBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return rejectingSession{}, nil }

type rejectingSession struct{}

func (rejectingSession) Mail(string, *smtp.MailOptions) error { return nil }
func (rejectingSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch {
	case strings.HasPrefix(to, "bounce@"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	case strings.HasPrefix(to, "later@"):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	return nil
}
func (rejectingSession) Data(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }
func (rejectingSession) Reset()                 {}
func (rejectingSession) Logout() error          { return nil }

func TestReplyClassification(t *testing.T) {
	srv := smtp.NewServer(rejectingBackend{})
	srv.Domain = "localhost"
	srv.ErrorLog = slogDiscard{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	snd, err := mail.NewSender(mail.Config{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, TLS: mail.TLSNone, From: "m@x.example", Timeout: 5 * time.Second})
	require.NoError(t, err)
	tests := []struct {
		rcpt      string
		permanent bool
		code      int
	}{
		{"bounce@x.example", true, 550},
		{"later@x.example", false, 451},
	}
	for _, tc := range tests {
		t.Run(tc.rcpt, func(t *testing.T) {
			err := snd.Send(ctx(t), mail.Message{To: []string{"ok@x.example"}, CC: []string{tc.rcpt}, Subject: "s", Text: "t"})
			require.Error(t, err)
			require.Equal(t, tc.permanent, mail.IsPermanent(err), "%v", err)
			require.Equal(t, tc.code, mail.ReplyCode(err))
		})
	}
	require.NoError(t, snd.Send(ctx(t), mail.Message{To: []string{"ok@x.example"}, Subject: "s", Text: "t"}))
}

type slogDiscard struct{}

func (slogDiscard) Printf(string, ...any) {}
func (slogDiscard) Println(...any)        {}

func TestInvalidMessagesArePermanent(t *testing.T) {
	sink := startSink(t, mailsink.Options{TLS: "none"})
	snd := senderFor(t, sink, mail.TLSNone, "", "")
	base := mail.Message{To: []string{"a@x.example"}, Subject: "s", Text: "t"}
	tests := []struct {
		name string
		edit func(m *mail.Message)
	}{
		{"no to", func(m *mail.Message) { m.To = nil }},
		{"bad to", func(m *mail.Message) { m.To = []string{"not an address"} }},
		{"bad cc", func(m *mail.Message) { m.CC = []string{"x@"} }},
		{"header injection in to", func(m *mail.Message) { m.To = []string{"a@x.example\r\nBcc: evil@x.example"} }},
		{"empty subject", func(m *mail.Message) { m.Subject = "  " }},
		{"subject with newline", func(m *mail.Message) { m.Subject = "a\r\nBcc: evil@x.example" }},
		{"empty body", func(m *mail.Message) { m.Text, m.HTML = "", "" }},
		{"bad message id", func(m *mail.Message) { m.MessageID = "<no at sign>" }},
		{"message id with space", func(m *mail.Message) { m.MessageID = "<a b@c>" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			tc.edit(&m)
			err := snd.Send(ctx(t), m)
			require.ErrorIs(t, err, mail.ErrInvalidMessage)
			require.True(t, mail.IsPermanent(err))
		})
	}
	require.Empty(t, sink.Messages())
}

func TestNewSenderValidation(t *testing.T) {
	ok := mail.Config{Host: "smtp.example.org", From: "monitor@aktin.org"}
	tests := []struct {
		name string
		edit func(c *mail.Config)
		want string // "" means valid
	}{
		{"defaults", func(*mail.Config) {}, ""},
		{"implicit tls", func(c *mail.Config) { c.TLS = mail.TLSImplicit }, ""},
		{"display name from", func(c *mail.Config) { c.From = "AKTIN Monitor <monitor@aktin.org>" }, ""},
		{"none on loopback with auth", func(c *mail.Config) { c.Host, c.TLS, c.Username, c.Password = "127.0.0.1", mail.TLSNone, "u", "p" }, ""},
		{"empty host", func(c *mail.Config) { c.Host = "" }, "host is empty"},
		{"host with port", func(c *mail.Config) { c.Host = "smtp.example.org:587" }, "bare host"},
		{"port out of range", func(c *mail.Config) { c.Port = 70000 }, "port"},
		{"negative port", func(c *mail.Config) { c.Port = -1 }, "port"},
		{"unknown tls mode", func(c *mail.Config) { c.TLS = "ssl" }, "tls mode"},
		{"missing from", func(c *mail.Config) { c.From = "" }, "from address"},
		{"bad from", func(c *mail.Config) { c.From = "monitor" }, "from address"},
		{"negative timeout", func(c *mail.Config) { c.Timeout = -time.Second }, "timeout"},
		{"password without user", func(c *mail.Config) { c.Password = password }, "username is empty"},
		{"credentials in clear to remote host", func(c *mail.Config) { c.TLS, c.Username, c.Password = mail.TLSNone, "u", password }, "loopback"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			snd, err := mail.NewSender(c)
			if tc.want == "" {
				require.NoError(t, err)
				require.NotNil(t, snd)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), password)
		})
	}

	snd, err := mail.NewSender(ok)
	require.NoError(t, err)
	require.Equal(t, mail.TLSStartTLS, snd.Config().TLS)
	require.Equal(t, 587, snd.Config().Port)
	require.Equal(t, mail.DefaultTimeout, snd.Config().Timeout)
	snd, err = mail.NewSender(mail.Config{Host: "h", From: "a@b.c", TLS: mail.TLSImplicit})
	require.NoError(t, err)
	require.Equal(t, 465, snd.Config().Port)
}

func TestConfigRedactsPassword(t *testing.T) {
	c := mail.Config{Host: "smtp.example.org", Username: user, Password: password, From: "m@x.example"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "smtp", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "smtp", c)
	out := fmt.Sprintf("%v %+v %#v %s", c, c, c, c) + buf.String()
	require.NotContains(t, out, password)
	require.Contains(t, out, "[redacted]")
	require.Contains(t, out, user)
}

func TestIsPermanentOnPlainErrors(t *testing.T) {
	require.False(t, mail.IsPermanent(nil))
	require.False(t, mail.IsPermanent(errors.New("boom")))
	require.False(t, mail.IsPermanent(context.DeadlineExceeded))
	require.True(t, mail.IsPermanent(fmt.Errorf("wrapped: %w", mail.ErrInvalidMessage)))
	require.True(t, mail.IsPermanent(mail.ErrAuthUnsupported))
}

func TestAuthUnsupportedIsPermanent(t *testing.T) {
	// The sink without a username offers no AUTH at all.
	sink := startSink(t, mailsink.Options{TLS: "starttls"})
	snd := senderFor(t, sink, mail.TLSStartTLS, user, password)
	err := snd.Send(ctx(t), mail.Message{To: []string{"a@x.example"}, Subject: "s", Text: "t"})
	require.ErrorIs(t, err, mail.ErrAuthUnsupported)
	require.True(t, mail.IsPermanent(err))
	require.Empty(t, sink.Messages())
}

func TestDeliverReportsRefusedRecipients(t *testing.T) {
	tests := []struct {
		name string
		mode mail.TLSMode
		auth bool
	}{
		{"starttls with auth", mail.TLSStartTLS, true},
		{"implicit tls", mail.TLSImplicit, false},
		{"plain", mail.TLSNone, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := mailsink.Options{TLS: string(tc.mode), RefuseRecipients: map[string]int{"bounce@klinik.example": 550}}
			username, pass := "", ""
			if tc.auth {
				opts.Username, opts.Password = user, password
				username, pass = user, password
			}
			sink := startSink(t, opts)
			snd := senderFor(t, sink, tc.mode, username, pass)
			msg := mail.Message{
				MessageID: "<node-17.offline.1@vigil>",
				To:        []string{"notaufnahme@klinik.example", "Bounce <BOUNCE@klinik.example>"},
				CC:        []string{"office@aktin.example"},
				Subject:   "s", Text: "t",
			}
			d, err := snd.Deliver(ctx(t), msg)
			require.NoError(t, err)
			require.Equal(t, "<node-17.offline.1@vigil>", d.MessageID)
			require.Equal(t, []string{"notaufnahme@klinik.example", "office@aktin.example"}, d.Accepted)
			require.Len(t, d.Refused, 1)
			require.Equal(t, "BOUNCE@klinik.example", d.Refused[0].Address)
			require.Equal(t, 550, d.Refused[0].Code)
			require.Contains(t, d.Refused[0].Reply, "5.1.1")
			require.True(t, d.Refused[0].Permanent())

			got, err := sink.Wait(ctx(t), 1)
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Equal(t, []string{"notaufnahme@klinik.example", "office@aktin.example"}, got[0].Rcpt)
			require.Equal(t, []string{"notaufnahme@klinik.example", "BOUNCE@klinik.example"}, got[0].To, "the headers still name everyone")
			require.Equal(t, []string{"office@aktin.example"}, got[0].CC)
			require.Equal(t, tc.mode != mail.TLSNone, got[0].TLS)
		})
	}
}

func TestDeliverDeferredRecipientLater(t *testing.T) {
	sink := startSink(t, mailsink.Options{TLS: "starttls", RefuseRecipients: map[string]int{"busy@x.example": 450}})
	snd := senderFor(t, sink, mail.TLSStartTLS, "", "")
	msg := mail.Message{MessageID: "m1@vigil", To: []string{"a@x.example", "busy@x.example"}, CC: []string{"c@x.example"}, Subject: "s", Text: "t"}

	d, err := snd.Deliver(ctx(t), msg)
	require.NoError(t, err)
	require.Equal(t, []string{"a@x.example", "c@x.example"}, d.Accepted)
	require.Equal(t, []mail.Refusal{{Address: "busy@x.example", Code: 450, Reply: d.Refused[0].Reply}}, d.Refused)
	require.False(t, d.Refused[0].Permanent())

	// Later, only the deferred recipient, the same message.
	require.NoError(t, sink.SetRefusal("busy@x.example", 0))
	msg.Rcpt = []string{"BUSY@x.example"}
	d, err = snd.Deliver(ctx(t), msg)
	require.NoError(t, err)
	require.Equal(t, []string{"busy@x.example"}, d.Accepted)
	require.Empty(t, d.Refused)

	got, err := sink.Wait(ctx(t), 2)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, []string{"busy@x.example"}, got[1].Rcpt)
	require.Equal(t, got[0].MessageID, got[1].MessageID)
	require.Equal(t, got[0].To, got[1].To)
	require.Equal(t, got[0].CC, got[1].CC)
}

func TestDeliverEveryRecipientRefused(t *testing.T) {
	sink := startSink(t, mailsink.Options{TLS: "none", RefuseRecipients: map[string]int{"a@x.example": 550, "b@x.example": 451}})
	snd := senderFor(t, sink, mail.TLSNone, "", "")
	d, err := snd.Deliver(ctx(t), mail.Message{To: []string{"a@x.example"}, CC: []string{"b@x.example"}, Subject: "s", Text: "t"})
	require.NoError(t, err, "refusals are results, not errors")
	require.Empty(t, d.Accepted)
	require.Len(t, d.Refused, 2)
	require.True(t, d.Refused[0].Permanent())
	require.False(t, d.Refused[1].Permanent())
	time.Sleep(50 * time.Millisecond)
	require.Empty(t, sink.Messages(), "no DATA without an accepted recipient")
}

func TestSendIsAllOrNothing(t *testing.T) {
	sink := startSink(t, mailsink.Options{TLS: "none", RefuseRecipients: map[string]int{"bounce@x.example": 550, "busy@x.example": 450}})
	snd := senderFor(t, sink, mail.TLSNone, "", "")
	tests := []struct {
		name      string
		cc        []string
		permanent bool
		code      int
	}{
		{"permanent", []string{"bounce@x.example"}, true, 550},
		{"temporary", []string{"busy@x.example"}, false, 450},
		{"mixed is retried", []string{"bounce@x.example", "busy@x.example"}, false, 550},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := snd.Send(ctx(t), mail.Message{To: []string{"ok@x.example"}, CC: tc.cc, Subject: "s", Text: "t"})
			var re *mail.RefusedError
			require.ErrorAs(t, err, &re)
			require.Len(t, re.Refused, len(tc.cc))
			require.Equal(t, tc.permanent, mail.IsPermanent(err))
			require.Equal(t, tc.code, mail.ReplyCode(err))
		})
	}
	time.Sleep(50 * time.Millisecond)
	require.Empty(t, sink.Messages(), "a refused recipient stops Send for everyone")
}

func TestDeliverRcptMustBeARecipient(t *testing.T) {
	sink := startSink(t, mailsink.Options{TLS: "none"})
	snd := senderFor(t, sink, mail.TLSNone, "", "")
	base := mail.Message{To: []string{"a@x.example"}, CC: []string{"c@x.example"}, Subject: "s", Text: "t"}
	for _, rcpt := range [][]string{{"evil@x.example"}, {"a@x.example", "evil@x.example"}, {"not an address"}} {
		m := base
		m.Rcpt = rcpt
		_, err := snd.Deliver(ctx(t), m)
		require.ErrorIs(t, err, mail.ErrInvalidMessage, "%v", rcpt)
		require.True(t, mail.IsPermanent(err))
	}
	require.Empty(t, sink.Messages())
	bare, err := mail.RecipientAddress(" IT <it@x.example>")
	require.NoError(t, err)
	require.Equal(t, "it@x.example", bare)
	_, err = mail.RecipientAddress("not an address")
	require.ErrorIs(t, err, mail.ErrInvalidMessage)
}

// TestStalledServerTimesOut: a server that stops answering, during the
// greeting phase or in the transaction, fails the send within Timeout.
func TestStalledServerTimesOut(t *testing.T) {
	tests := []struct {
		name    string
		answers []string // one reply per line read; then silence
	}{
		{"after the greeting", []string{}},
		{"at RCPT TO", []string{"250 localhost", "250 ok"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			t.Cleanup(func() { _ = l.Close() })
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = io.WriteString(c, "220 localhost ESMTP\r\n")
				buf := make([]byte, 512)
				for _, a := range tc.answers {
					if _, err := c.Read(buf); err != nil {
						return
					}
					_, _ = io.WriteString(c, a+"\r\n")
				}
				_, _ = io.Copy(io.Discard, c)
			}()
			snd, err := mail.NewSender(mail.Config{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, TLS: mail.TLSNone,
				From: "m@x.example", Timeout: 300 * time.Millisecond, HeloName: "vigil.test"})
			require.NoError(t, err)
			start := time.Now()
			_, err = snd.Deliver(ctx(t), mail.Message{To: []string{"a@x.example"}, Subject: "s", Text: "t"})
			require.Error(t, err)
			require.False(t, mail.IsPermanent(err))
			require.Less(t, time.Since(start), 3*time.Second)
		})
	}
}
