// Package mail sends e-mail over SMTP (STARTTLS, implicit TLS or, for a
// local relay, plain text) with github.com/wneessen/go-mail.
//
// A Sender is safe for concurrent use; every Send or Deliver opens its own
// connection.
// Messages are multipart/alternative (text and HTML, UTF-8) with a caller-
// chosen Message-ID, so a retried send can be recognised by the receiver.
// Send delivers to all recipients or none; Deliver delivers to every
// recipient the server accepts and reports the refused ones (Refusal), so
// one bad address does not stop the mail for the others. IsPermanent tells
// a caller (a Temporal activity) whether retrying can help.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// TLSMode chooses how the connection to the SMTP server is secured.
type TLSMode string

// The TLS modes.
const (
	// TLSStartTLS connects in plain text and upgrades with STARTTLS, which
	// is mandatory: a server that does not offer it is an error, never a
	// silent downgrade. Default port 587.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS). Default port 465.
	TLSImplicit TLSMode = "tls"
	// TLSNone sends in plain text; only for a relay on the same host or
	// network. Credentials are refused over it unless the host is loopback.
	// Default port 25.
	TLSNone TLSMode = "none"
)

// DefaultTimeout bounds connecting, then the greeting, STARTTLS and AUTH
// together, then each command of the transaction.
const DefaultTimeout = 15 * time.Second

// Config describes the SMTP server and the sender. Password is a secret:
// String, GoString and LogValue redact it and no error contains it.
type Config struct {
	// Host is the SMTP server's host name or IP address (no port).
	Host string
	// Port is the server's port; 0 means the TLS mode's default
	// (587 starttls, 465 tls, 25 none).
	Port int
	// Username enables SMTP AUTH (PLAIN, else LOGIN) when not empty.
	Username string
	// Password is the AUTH password.
	Password string
	// TLS is the TLS mode; empty means TLSStartTLS.
	TLS TLSMode
	// From is the sender, "addr@example.org" or "Name <addr@example.org>";
	// it is also the envelope sender.
	From string
	// Timeout bounds connecting, then the greeting, STARTTLS and AUTH
	// together, then each command of the transaction (DefaultTimeout when 0).
	Timeout time.Duration
	// RootCAs verifies the server's certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// HeloName is the name sent with EHLO; empty means the local host name.
	HeloName string
}

// String describes the configuration without its password.
func (c Config) String() string {
	return fmt.Sprintf("mail.Config{Host:%q Port:%d Username:%q Password:%s TLS:%q From:%q Timeout:%s HeloName:%q}",
		c.Host, c.Port, c.Username, redact(c.Password), c.TLS, c.From, c.Timeout, c.HeloName)
}

// GoString is String, so %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// LogValue logs the configuration without its password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.Int("port", c.Port),
		slog.String("username", c.Username),
		slog.String("password", redact(c.Password)),
		slog.String("tls", string(c.TLS)),
		slog.String("from", c.From),
		slog.Duration("timeout", c.Timeout),
		slog.String("helo_name", c.HeloName),
	)
}

func redact(secret string) string {
	if secret == "" {
		return `""`
	}
	return "[redacted]"
}

// withDefaults fills the zero values that have defaults.
func (c Config) withDefaults() Config {
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.Port == 0 {
		switch c.TLS {
		case TLSImplicit:
			c.Port = 465
		case TLSNone:
			c.Port = 25
		default:
			c.Port = 587
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports every problem of the configuration (after defaults) in
// one error, naming the fields; it never includes the password.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	switch {
	case strings.TrimSpace(c.Host) == "":
		errs = append(errs, errors.New("host is empty"))
	case strings.ContainsAny(c.Host, " \t\r\n/:") && net.ParseIP(c.Host) == nil:
		errs = append(errs, fmt.Errorf("host %q must be a bare host name or IP address", c.Host))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is out of range 1-65535", c.Port))
	}
	switch c.TLS {
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		errs = append(errs, fmt.Errorf("tls mode %q is not one of starttls, tls, none", c.TLS))
	}
	if _, err := netmail.ParseAddress(c.From); err != nil {
		errs = append(errs, fmt.Errorf("from address %q is invalid: %w", c.From, err))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", c.Timeout))
	}
	if c.Username == "" && c.Password != "" {
		errs = append(errs, errors.New("password is set but username is empty"))
	}
	if c.Username != "" && c.TLS == TLSNone && !isLoopback(c.Host) {
		errs = append(errs, fmt.Errorf("tls mode none with credentials is only allowed for a loopback host, not %q", c.Host))
	}
	if strings.ContainsAny(c.HeloName, " \t\r\n") {
		errs = append(errs, fmt.Errorf("helo name %q contains white space", c.HeloName))
	}
	if len(errs) > 0 {
		return fmt.Errorf("mail: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Message is one e-mail. To must not be empty; CC recipients receive the
// message too (they are envelope recipients) and appear in the Cc header.
// There is no BCC: Rcpt can only narrow the envelope to some of the To and
// Cc recipients.
type Message struct {
	// MessageID is the caller-chosen Message-ID, e.g. "<key@vigil>" (the
	// angle brackets are optional); empty means a random one.
	MessageID string
	To        []string
	CC        []string
	Subject   string
	// Text is the plain-text part; HTML the HTML alternative. At least one
	// is required.
	Text string
	HTML string
	// Rcpt, when not empty, restricts the envelope recipients to these
	// addresses, each of which must be a To or Cc recipient (compared
	// case-insensitively); the headers still name every To and Cc
	// recipient. Empty means all of them.
	Rcpt []string
}

// Sentinel errors; all of them are permanent.
var (
	// ErrInvalidMessage: the message cannot be sent as given (bad or missing
	// address, subject or body, bad Message-ID).
	ErrInvalidMessage = errors.New("mail: invalid message")
	// ErrAuthUnsupported: credentials are configured but the server offers
	// neither AUTH PLAIN nor AUTH LOGIN.
	ErrAuthUnsupported = errors.New("mail: server offers no supported AUTH mechanism (PLAIN, LOGIN)")
)

// Sender sends messages with one configuration. It is safe for concurrent use.
type Sender struct {
	cfg  Config
	from string
	tls  *tls.Config
}

// NewSender validates cfg and returns a Sender. It does not connect.
func NewSender(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	from, _ := netmail.ParseAddress(cfg.From) // validated above
	return &Sender{
		cfg:  cfg,
		from: from.String(),
		tls: &tls.Config{
			ServerName: cfg.Host,
			RootCAs:    cfg.RootCAs,
			MinVersion: tls.VersionTLS12,
		},
	}, nil
}

// Config returns the sender's configuration with defaults applied.
func (s *Sender) Config() Config { return s.cfg }

// Refusal is an envelope recipient the SMTP server refused at RCPT TO.
type Refusal struct {
	// Address is the bare address, e.g. "it@klinik.example".
	Address string
	// Code is the SMTP reply code: 4xx temporary, 5xx permanent.
	Code int
	// Reply is the server's text after the code, e.g. "5.1.1 no such user".
	Reply string
}

// Permanent reports whether the refusal is final (a 5xx reply); after a
// 4xx reply the same recipient may be accepted later.
func (r Refusal) Permanent() bool { return r.Code >= 500 && r.Code < 600 }

func (r Refusal) String() string { return fmt.Sprintf("%s: %d %s", r.Address, r.Code, r.Reply) }

// Delivery is the outcome of Deliver's SMTP transaction.
type Delivery struct {
	// MessageID is the message's Message-ID, angle brackets included.
	MessageID string
	// Accepted are the recipients the server took the message for, in
	// envelope order.
	Accepted []string
	// Refused are the recipients the server refused, in envelope order.
	Refused []Refusal
}

// RefusedError is Send's error when the server refused one or more
// recipients: the transaction was aborted, nobody got the message. It is
// permanent when every refusal is.
type RefusedError struct {
	Refused []Refusal
}

func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Refused))
	for i, r := range e.Refused {
		parts[i] = r.String()
	}
	return "recipients refused: " + strings.Join(parts, "; ")
}

// Send delivers m to all its recipients in one SMTP transaction, or to
// none: a refused recipient aborts the transaction (a *RefusedError). The
// context bounds the whole transaction: cancelling it closes the
// connection.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg, rcpt, err := s.build(m)
	if err != nil {
		return err
	}
	d, err := s.transact(ctx, msg, rcpt, true)
	if err != nil {
		return err
	}
	if len(d.Refused) > 0 {
		return s.wrap(ctx, d.MessageID, &RefusedError{Refused: d.Refused})
	}
	return nil
}

// Deliver sends m in one SMTP transaction to every envelope recipient the
// server accepts: a refused recipient (4xx or 5xx at RCPT TO) is reported
// in the Delivery and does not stop the others. Every recipient gets the
// same message: the headers name all To and Cc recipients whichever subset
// m.Rcpt selects, so a later Deliver to the recipients refused temporarily
// sends them the same mail with the same Message-ID.
//
// The error is a failure of the transaction itself (connection, TLS, AUTH,
// MAIL FROM, DATA); then nobody got the message, as far as the sender
// knows (a connection lost after the final "." may still have delivered
// it). When no recipient is accepted DATA is not sent and the error is
// nil. The context bounds the whole transaction: cancelling it closes the
// connection.
func (s *Sender) Deliver(ctx context.Context, m Message) (*Delivery, error) {
	msg, rcpt, err := s.build(m)
	if err != nil {
		return nil, err
	}
	return s.transact(ctx, msg, rcpt, false)
}

// transact runs one SMTP transaction for msg to rcpt. With all, a refused
// recipient aborts the transaction (RSET) and Accepted stays empty;
// otherwise DATA goes to the accepted recipients.
func (s *Sender) transact(ctx context.Context, msg *gomail.Msg, rcpt []*netmail.Address, all bool) (*Delivery, error) {
	d := &Delivery{MessageID: msg.GetMessageID()}
	var (
		mu     sync.Mutex
		dialed []net.Conn
	)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := &net.Dialer{}
		var (
			conn net.Conn
			err  error
		)
		if s.cfg.TLS == TLSImplicit {
			conn, err = (&tls.Dialer{NetDialer: nd, Config: s.tls.Clone()}).DialContext(ctx, network, addr)
		} else {
			conn, err = nd.DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		// The greeting, EHLO, STARTTLS and AUTH share one Timeout; every
		// later command gets its own.
		_ = conn.SetDeadline(time.Now().Add(s.cfg.Timeout))
		mu.Lock()
		dialed = append(dialed, conn)
		mu.Unlock()
		return conn, nil
	}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithTLSConfig(s.tls.Clone()),
		gomail.WithDialContextFunc(dial),
	}
	switch s.cfg.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.HeloName != "" {
		opts = append(opts, gomail.WithHELO(s.cfg.HeloName))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuthCustom(&plainOrLogin{
			user: s.cfg.Username, pass: s.cfg.Password, host: s.cfg.Host,
		}))
	}
	client, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: client: %w", err)
	}

	// Close the connection when ctx ends, so a cancelled activity does not
	// wait for the per-command timeout.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			mu.Lock()
			for _, c := range dialed {
				_ = c.Close()
			}
			mu.Unlock()
		case <-done:
		}
	}()

	fail := func(step string, err error) (*Delivery, error) {
		return nil, s.wrap(ctx, d.MessageID, fmt.Errorf("%s: %w", step, err))
	}
	// go-mail dials, greets, upgrades to TLS and authenticates; the
	// transaction itself is driven here, so that refused recipients can be
	// told apart.
	c, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fail("dial", err)
	}
	defer func() { _ = c.Close() }()
	deadline := func() error { return c.UpdateDeadline(s.cfg.Timeout) }

	from, err := msg.GetSender(false)
	if err != nil {
		return fail("sender", err)
	}
	if err := deadline(); err != nil {
		return fail("MAIL FROM", err)
	}
	if err := c.Mail(from); err != nil {
		return fail("MAIL FROM", err)
	}
	for _, a := range rcpt {
		if err := deadline(); err != nil {
			return fail("RCPT TO", err)
		}
		err := c.Rcpt((&netmail.Address{Address: a.Address}).String())
		var te *textproto.Error
		switch {
		case err == nil:
			d.Accepted = append(d.Accepted, a.Address)
		case errors.As(err, &te):
			d.Refused = append(d.Refused, Refusal{Address: a.Address, Code: te.Code, Reply: te.Msg})
		default:
			return fail("RCPT TO "+a.Address, err)
		}
	}
	if len(d.Accepted) == 0 || (all && len(d.Refused) > 0) {
		d.Accepted = nil
		if deadline() == nil && c.Reset() == nil {
			_ = c.Quit()
		}
		return d, nil
	}
	if err := deadline(); err != nil {
		return fail("DATA", err)
	}
	w, err := c.Data()
	if err != nil {
		return fail("DATA", err)
	}
	if _, err := msg.WriteTo(w); err != nil {
		return fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return fail("DATA", err)
	}
	// The message is delivered: a failing QUIT changes nothing.
	if deadline() == nil {
		_ = c.Quit()
	}
	return d, nil
}

// wrap names the message and server in err, and the context's error when
// it ended the transaction.
func (s *Sender) wrap(ctx context.Context, id string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("mail: send %s via %s:%d: %w (%w)", id, s.cfg.Host, s.cfg.Port, ctxErr, err)
	}
	return fmt.Errorf("mail: send %s via %s:%d: %w", id, s.cfg.Host, s.cfg.Port, err)
}

// build validates m and turns it into a go-mail message and its envelope
// recipients.
func (s *Sender) build(m Message) (*gomail.Msg, []*netmail.Address, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidMessage, fmt.Sprintf(format, args...))
	}
	to, err := parseList("to", m.To, nil)
	if err != nil {
		return nil, nil, invalid("%v", err)
	}
	if len(to) == 0 {
		return nil, nil, invalid("no To recipient")
	}
	cc, err := parseList("cc", m.CC, to)
	if err != nil {
		return nil, nil, invalid("%v", err)
	}
	rcpt, err := envelope(m.Rcpt, slices.Concat(to, cc))
	if err != nil {
		return nil, nil, invalid("%v", err)
	}
	subject := strings.TrimSpace(m.Subject)
	if subject == "" {
		return nil, nil, invalid("empty subject")
	}
	if strings.ContainsAny(subject, "\r\n") {
		return nil, nil, invalid("subject contains a line break")
	}
	if strings.TrimSpace(m.Text) == "" && strings.TrimSpace(m.HTML) == "" {
		return nil, nil, invalid("empty body")
	}
	id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(m.MessageID), "<"), ">")
	if m.MessageID != "" && !validMessageID(id) {
		return nil, nil, invalid("message id %q is not of the form <left@right>", m.MessageID)
	}

	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(s.from); err != nil {
		return nil, nil, invalid("from: %v", err)
	}
	if err := msg.To(addrStrings(to)...); err != nil {
		return nil, nil, invalid("to: %v", err)
	}
	if len(cc) > 0 {
		if err := msg.Cc(addrStrings(cc)...); err != nil {
			return nil, nil, invalid("cc: %v", err)
		}
	}
	msg.Subject(subject)
	msg.SetDate()
	if id == "" {
		msg.SetMessageID()
	} else {
		msg.SetMessageIDWithValue(id)
	}
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetUserAgent("Vigil")
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	case m.HTML != "":
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	default:
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	}
	return msg, rcpt, nil
}

// envelope is the envelope recipients: all when only is empty, else the
// addresses of all that only names (compared case-insensitively), in the
// order of all. An address of only that is not in all is an error.
func envelope(only []string, all []*netmail.Address) ([]*netmail.Address, error) {
	if len(only) == 0 {
		return all, nil
	}
	sel, err := parseList("rcpt", only, nil)
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(sel))
	for _, a := range sel {
		want[strings.ToLower(a.Address)] = true
	}
	var out []*netmail.Address
	for _, a := range all {
		if want[strings.ToLower(a.Address)] {
			out = append(out, a)
			delete(want, strings.ToLower(a.Address))
		}
	}
	for _, a := range sel {
		if want[strings.ToLower(a.Address)] {
			return nil, fmt.Errorf("rcpt address %q is neither a To nor a Cc recipient", a.Address)
		}
	}
	return out, nil
}

// RecipientAddress returns the bare address of a recipient given as
// "a@b.example" or "Name <a@b.example>": the form Deliver reports in
// Delivery. The error wraps ErrInvalidMessage.
func RecipientAddress(addr string) (string, error) {
	a, err := netmail.ParseAddress(strings.TrimSpace(addr))
	if err != nil {
		return "", fmt.Errorf("%w: address %q: %v", ErrInvalidMessage, addr, err)
	}
	return a.Address, nil
}

// parseList parses addresses, dropping duplicates and addresses already in
// skip (compared case-insensitively).
func parseList(field string, in []string, skip []*netmail.Address) ([]*netmail.Address, error) {
	seen := make(map[string]bool, len(in)+len(skip))
	for _, a := range skip {
		seen[strings.ToLower(a.Address)] = true
	}
	var out []*netmail.Address
	for _, raw := range in {
		a, err := netmail.ParseAddress(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("%s address %q: %v", field, raw, err)
		}
		key := strings.ToLower(a.Address)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, a)
	}
	return out, nil
}

func addrStrings(as []*netmail.Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// validMessageID accepts "left@right" without white space or angle brackets.
func validMessageID(id string) bool {
	at := strings.IndexByte(id, '@')
	if at <= 0 || at == len(id)-1 || len(id) > 900 {
		return false
	}
	for _, r := range id {
		if r <= ' ' || r >= 0x7f || r == '<' || r == '>' || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

// plainOrLogin authenticates with AUTH PLAIN when the server offers it, else
// AUTH LOGIN. Like net/smtp it refuses to send the password over a
// connection that is neither TLS nor to localhost.
type plainOrLogin struct {
	user, pass, host string
	inner            gosmtp.Auth
}

func (a *plainOrLogin) Start(server *gosmtp.ServerInfo) (string, []byte, error) {
	has := func(mech string) bool {
		for _, m := range server.Auth {
			if strings.EqualFold(m, mech) {
				return true
			}
		}
		return false
	}
	switch {
	case has("PLAIN"):
		a.inner = gosmtp.PlainAuth("", a.user, a.pass, a.host, false)
	case has("LOGIN"):
		a.inner = gosmtp.LoginAuth(a.user, a.pass, a.host, false)
	default:
		return "", nil, ErrAuthUnsupported
	}
	return a.inner.Start(server)
}

func (a *plainOrLogin) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.inner.Next(fromServer, more)
}

// IsPermanent reports whether retrying cannot deliver the message: an
// invalid message or address, a 5xx SMTP reply (including rejected
// credentials), recipients refused only with 5xx replies, missing AUTH
// support or a refusal to send credentials in clear. Connection failures,
// TLS failures (including a server without STARTTLS), timeouts and 4xx
// replies are transient.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalidMessage) || errors.Is(err, ErrAuthUnsupported) ||
		errors.Is(err, gosmtp.ErrUnencrypted) || errors.Is(err, gosmtp.ErrWrongHostname) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re *RefusedError
	if errors.As(err, &re) {
		for _, r := range re.Refused {
			if !r.Permanent() {
				return false
			}
		}
		return len(re.Refused) > 0
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 500 && te.Code < 600
	}
	return false
}

// ReplyCode returns the SMTP reply code carried by err (for refused
// recipients, the first refusal's), or 0.
func ReplyCode(err error) int {
	var re *RefusedError
	if errors.As(err, &re) && len(re.Refused) > 0 {
		return re.Refused[0].Code
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}
