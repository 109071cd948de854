package smtptest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
)

// Subject returns the Subject header with RFC 2047 encoded words decoded.
func (m Message) Subject() string {
	s, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return m.Header.Get("Subject")
	}
	return s
}

// Text returns the body of a single-part message decoded from its
// Content-Transfer-Encoding (quoted-printable, base64, 7bit or 8bit), with
// CRLF line ends turned into LF. It returns an error for a multipart message
// or an unknown encoding.
func (m Message) Text() (string, error) {
	if ct := m.Header.Get("Content-Type"); strings.HasPrefix(strings.ToLower(ct), "multipart/") {
		return "", fmt.Errorf("smtptest: Text of a %s message", ct)
	}
	var r io.Reader = bytes.NewReader(m.Body)
	switch cte := strings.ToLower(strings.TrimSpace(m.Header.Get("Content-Transfer-Encoding"))); cte {
	case "", "7bit", "8bit", "binary":
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r) // ignores CR and LF
	default:
		return "", fmt.Errorf("smtptest: unknown Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("smtptest: decode body: %w", err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n"), nil
}
