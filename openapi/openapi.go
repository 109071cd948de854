// Package openapi holds the OpenAPI 3.1 document of vigil's native HTTP
// API (openapi.json, kept by hand in this directory and embedded in the
// binary) and serves it at Path.
//
// The document describes every route of every role. The tests of
// cmd/vigil walk the real router of vigil all and fail when a route and
// the document disagree (package openapitest has the helpers), and check
// real answers against the document's schemas.
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the document
	"encoding/hex"
	"net/http"
	"time"
)

// Path is where vigil serves the document.
const Path = "/v1/openapi.json"

//go:embed openapi.json
var document []byte

// JSON returns a copy of the document.
func JSON() []byte { return bytes.Clone(document) }

// Handler serves the document as application/json with a strong ETag, so
// clients can revalidate with If-None-Match; it answers GET and HEAD.
func Handler() http.Handler {
	sum := sha256.Sum256(document)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(document))
	})
}
