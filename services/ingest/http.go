package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-monitor/vigil"
)

// headerIdempotencyKey makes client retries safe: items of a request retried
// with the same key within the bucket's dedup window are stored once.
const headerIdempotencyKey = "Idempotency-Key"

// maxPooledBuf is the largest body buffer kept for reuse, in bytes; batch
// buffers beyond it are left to the garbage collector.
const maxPooledBuf = 64 << 10

func (r *Role) handlePulses(w http.ResponseWriter, hr *http.Request) {
	req, buf := r.readRequest(w, hr)
	body, err := r.acceptPulses(hr.Context(), req)
	r.putBuf(buf)
	code, body := r.answer(body, err, http.StatusAccepted, true)
	writeJSON(w, code, body)
}

func (r *Role) handleAlert(w http.ResponseWriter, hr *http.Request) {
	req, buf := r.readRequest(w, hr)
	body, err := r.raiseAlert(hr.Context(), req)
	r.putBuf(buf)
	code, body := r.answer(body, err, http.StatusAccepted, false)
	writeJSON(w, code, body)
}

func (r *Role) handleCancel(w http.ResponseWriter, hr *http.Request) {
	req := request{key: hr.Header.Get(headerIdempotencyKey)}
	name := chi.URLParam(hr, "name")
	// chi routes on the escaped path when the URL has one (a name with "/"
	// or "%"), and then hands out the parameter still escaped.
	var err error
	if hr.URL.RawPath != "" {
		name, err = url.PathUnescape(name)
	}
	var body []byte
	if err != nil {
		err = vigil.Invalid("service", "bad escaping in the path: %v", err)
	} else {
		req.service = name
		body, err = r.cancel(hr.Context(), req)
	}
	code, body := r.answer(body, err, http.StatusOK, false)
	writeJSON(w, code, body)
}

// readRequest reads the body of hr into a pooled buffer, at most MaxBody
// bytes; the caller returns buf with putBuf once the request is done.
func (r *Role) readRequest(w http.ResponseWriter, hr *http.Request) (request, *bytes.Buffer) {
	req := request{
		contentType: hr.Header.Get("Content-Type"),
		key:         hr.Header.Get(headerIdempotencyKey),
		form:        formJSON,
	}
	if hr.ContentLength > r.cfg.MaxBody {
		req.readErr = fmt.Errorf("body of %d bytes is over the limit of %d bytes: %w", hr.ContentLength, r.cfg.MaxBody, vigil.ErrTooLarge)
		return req, nil
	}
	buf, _ := r.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	if hr.ContentLength > 0 {
		buf.Grow(int(hr.ContentLength) + 1) // +1 so ReadFrom sees EOF without growing
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, hr.Body, r.cfg.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		req.readErr = fmt.Errorf("body is over the limit of %d bytes: %w", r.cfg.MaxBody, vigil.ErrTooLarge)
	case err != nil && !errors.Is(err, io.EOF):
		req.readErr = fmt.Errorf("read body: %w", vigil.Invalid("", "could not read the body: %v", err))
	}
	req.body = buf.Bytes()
	return req, buf
}

func (r *Role) putBuf(buf *bytes.Buffer) {
	if buf != nil && buf.Cap() <= maxPooledBuf {
		r.bufs.Put(buf)
	}
}

func writeJSON(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
