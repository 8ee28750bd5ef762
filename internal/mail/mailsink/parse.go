package mailsink

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/vigil-health/vigil/internal/latin1"
)

// maxDepth bounds multipart nesting.
const maxDepth = 8

// parse fills the header and body fields of a Received from a raw message.
func parse(raw []byte) Received {
	rec := Received{Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		rec.ParseErr = fmt.Errorf("read message: %w", err)
		return rec
	}
	dec := &mime.WordDecoder{CharsetReader: charsetReader}
	var errs []error
	if subj, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
		rec.Subject = subj
	} else {
		rec.Subject = msg.Header.Get("Subject")
		errs = append(errs, fmt.Errorf("subject: %w", err))
	}
	rec.MessageID = strings.TrimSpace(msg.Header.Get("Message-Id"))
	if rec.To, err = addresses(msg.Header, "To"); err != nil {
		errs = append(errs, err)
	}
	if rec.CC, err = addresses(msg.Header, "Cc"); err != nil {
		errs = append(errs, err)
	}
	if err := walk(&rec, textproto.MIMEHeader(msg.Header), msg.Body, 0); err != nil {
		errs = append(errs, err)
	}
	rec.ParseErr = errors.Join(errs...)
	return rec
}

func addresses(h mail.Header, key string) ([]string, error) {
	if h.Get(key) == "" {
		return nil, nil
	}
	list, err := h.AddressList(key)
	if err != nil {
		return nil, fmt.Errorf("%s header: %w", key, err)
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return out, nil
}

// walk decodes one entity; text/plain and text/html leaves fill Text and HTML
// (the first of each wins), multiparts are descended into.
func walk(rec *Received, h textproto.MIMEHeader, body io.Reader, depth int) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content-type %q: %w", ct, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxDepth {
			return errors.New("multipart nested too deeply")
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			if err := walk(rec, p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return nil // attachments and other parts are kept only in Raw
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r) // ignores line breaks
	}
	if cr, err := charsetReader(params["charset"], r); err == nil {
		r = cr
	} else {
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s body: %w", mediaType, err)
	}
	switch {
	case mediaType == "text/plain" && rec.Text == "":
		rec.Text = string(b)
	case mediaType == "text/html" && rec.HTML == "":
		rec.HTML = string(b)
	}
	return nil
}

// charsetReader converts the charsets the monitor's mails may use to UTF-8.
func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return r, nil
	case "iso-8859-1", "latin1", "iso8859-1":
		return latin1.NewReader(r)
	default:
		return nil, fmt.Errorf("unsupported charset %q", charset)
	}
}
