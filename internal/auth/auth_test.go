package auth

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigil-monitor/vigil/internal/httpx"
)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, Prefix) || len(s) != len(Prefix)+43 {
			t.Fatalf("Generate() = %q, want %s and 43 base64url characters", s, Prefix)
		}
		if seen[s] {
			t.Fatalf("Generate() repeated %q", s)
		}
		seen[s] = true
	}
	if _, err := Generate(bytes.NewReader(make([]byte, 5))); err == nil {
		t.Error("Generate(short reader) = nil error, want one")
	}
	s, err := Generate(bytes.NewReader(make([]byte, 32)))
	if err != nil || s != Prefix+strings.Repeat("A", 43) {
		t.Errorf("Generate(zeros) = %q, %v; want vgl_AAA…", s, err)
	}
}

func TestHash(t *testing.T) {
	// FIPS 180-2 appendix B.1.
	if got, want := Hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("Hash(abc) = %s, want %s", got, want)
	}
}

func TestParseTokens(t *testing.T) {
	h1, h2 := Hash("one"), Hash("two")
	got, err := ParseTokens(" ci:" + h1 + ":read,\n deploy:" + h2 + ":read+ingest ")
	if err != nil {
		t.Fatal(err)
	}
	want := []Token{
		{Name: "ci", SHA256: h1, Scopes: []Scope{ScopeRead}},
		{Name: "deploy", SHA256: h2, Scopes: []Scope{ScopeRead, ScopeIngest}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ParseTokens mismatch (-want +got):\n%s", diff)
	}
	if s := FormatTokens(got); s != "ci:"+h1+":read,deploy:"+h2+":read+ingest" {
		t.Errorf("FormatTokens = %q", s)
	}
	if got, err := ParseTokens("  "); err != nil || got != nil {
		t.Errorf("ParseTokens(blank) = %v, %v; want nil, nil", got, err)
	}
	for _, bad := range []string{
		"ci:" + h1,            // no scopes
		"ci:" + h1 + ":",      // empty scope
		"ci:" + h1 + ":admin", // unknown scope
		"ci:abc:read",         // short hash
		"ci:" + strings.Repeat("g", 64) + ":read",    // not hex
		":" + h1 + ":read",                           // no name
		"c i:" + h1 + ":read",                        // splits into two bad entries
		"ci:" + h1 + ":read,ci:" + h2 + ":write",     // name twice
		"a:" + h1 + ":read,b:" + h1 + ":write",       // hash twice
		"ci/x:" + h1 + ":read",                       // bad name
		"ci:" + h1 + ":read:write",                   // too many parts
		strings.Repeat("n", 65) + ":" + h1 + ":read", // long name
	} {
		if _, err := ParseTokens(bad); err == nil {
			t.Errorf("ParseTokens(%q) = nil error, want one", bad)
		}
	}
}

func TestVerify(t *testing.T) {
	var tokens []Token
	for i := range 5 {
		tokens = append(tokens, Token{Name: "t" + strconv.Itoa(i), SHA256: Hash("secret" + strconv.Itoa(i)), Scopes: []Scope{ScopeRead}})
	}
	k, err := NewKeyring(tokens)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tokens {
		if got := k.Verify("secret" + strconv.Itoa(i)); got != i {
			t.Errorf("Verify(secret%d) = %d, want %d", i, got, i)
		}
	}
	for _, s := range []string{"", "secret", "secret5", tokens[0].SHA256} {
		if got := k.Verify(s); got != -1 {
			t.Errorf("Verify(%q) = %d, want -1", s, got)
		}
	}
	if _, err := NewKeyring(nil); err == nil {
		t.Error("NewKeyring(nil) = nil error, want one")
	}
}

// TestVerifyConstantTime checks the source of Keyring.Verify: it must
// compare with crypto/subtle inside its loop and never leave the loop
// early, so that no timing tells which key (or how much of a hash) matched.
// Timing itself is not measured: a timed assertion would be flaky.
func TestVerifyConstantTime(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "guard.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var verify *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "Verify" && fd.Recv != nil {
			verify = fd
		}
	}
	if verify == nil {
		t.Fatal("no method Verify in guard.go")
	}
	var loop *ast.RangeStmt
	ast.Inspect(verify.Body, func(n ast.Node) bool {
		if r, ok := n.(*ast.RangeStmt); ok {
			loop = r
		}
		return true
	})
	if loop == nil {
		t.Fatal("Verify has no range loop over the keys")
	}
	calls := map[string]bool{}
	ast.Inspect(loop.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ReturnStmt:
			t.Error("Verify returns from inside its loop: an early exit leaks which key matched")
		case *ast.BranchStmt:
			t.Errorf("Verify has %s inside its loop: an early exit leaks which key matched", n.Tok)
		case *ast.IfStmt:
			t.Error("Verify branches inside its loop: use subtle.ConstantTimeSelect")
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				t.Errorf("Verify compares with %s inside its loop: use subtle.ConstantTimeCompare", n.Op)
			}
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok {
				calls[x.Name+"."+n.Sel.Name] = true
			}
		}
		return true
	})
	for _, want := range []string{"subtle.ConstantTimeCompare", "subtle.ConstantTimeSelect"} {
		if !calls[want] {
			t.Errorf("Verify's loop does not call %s", want)
		}
	}
}

func TestRequiredScope(t *testing.T) {
	tests := []struct {
		method, path string
		want         Scope
	}{
		{"GET", "/v1/services", ScopeRead},
		{"HEAD", "/v1/services/x", ScopeRead},
		{"GET", "/v1/stream", ScopeRead},
		{"POST", "/v1/pulses", ScopeIngest},
		{"POST", "/v1/events", ScopeIngest},
		{"POST", "/v1/alerts", ScopeIngest},
		{"POST", "/v1/hosts/web-1/stats", ScopeIngest},
		{"POST", "/v1/hosts/a%2Fb/stats", ScopeIngest},
		{"POST", "/v1/hosts//stats", ScopeWrite},
		{"POST", "/v1/hosts/a/b/stats", ScopeWrite},
		{"DELETE", "/v1/services/db%20backup", ScopeIngest},
		{"DELETE", "/v1/services/", ScopeWrite},
		{"DELETE", "/v1/services/a/b", ScopeWrite},
		{"POST", "/v1/pulses/", ScopeWrite},
		{"PUT", "/v1/pulses", ScopeWrite},
		{"POST", "/v1/silences", ScopeWrite},
		{"DELETE", "/v1/silences/abc", ScopeWrite},
		{"POST", "/v1/deadletters/7/retry", ScopeWrite},
	}
	for _, tt := range tests {
		if got := RequiredScope(tt.method, tt.path); got != tt.want {
			t.Errorf("RequiredScope(%s, %s) = %s, want %s", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestGuard(t *testing.T) {
	secrets := map[string]string{}
	var tokens []Token
	for _, tc := range []struct {
		name   string
		scopes []Scope
	}{
		{"reader", []Scope{ScopeRead}},
		{"sender", []Scope{ScopeIngest}},
		{"admin", []Scope{ScopeWrite}},
		{"both", []Scope{ScopeRead, ScopeIngest}},
	} {
		s, err := Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		secrets[tc.name] = s
		tokens = append(tokens, Token{Name: tc.name, SHA256: Hash(s), Scopes: tc.scopes})
	}
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	g, err := NewGuard(tokens, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), reg)
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = TokenName(r.Context())
		w.WriteHeader(http.StatusAccepted)
	}))
	tests := []struct {
		name, method, path, auth string
		code                     int
		challenge, err           string
	}{
		{"no header", "GET", "/v1/services", "", 401, `Bearer realm="vigil"`, "missing bearer token: send Authorization: Bearer <token>"},
		{"basic scheme", "GET", "/v1/services", "Basic YTpi", 401, `Bearer realm="vigil"`, "missing bearer token: send Authorization: Bearer <token>"},
		{"empty bearer", "GET", "/v1/services", "Bearer  ", 401, `Bearer realm="vigil"`, "missing bearer token: send Authorization: Bearer <token>"},
		{"unknown token", "GET", "/v1/services", "Bearer vgl_nope", 401, `Bearer realm="vigil", error="invalid_token"`, "invalid token"},
		{"hash as token", "GET", "/v1/services", "Bearer " + tokens[0].SHA256, 401, `Bearer realm="vigil", error="invalid_token"`, "invalid token"},
		{"read may read", "GET", "/v1/services", "Bearer " + secrets["reader"], 202, "", ""},
		{"scheme is case-insensitive", "GET", "/v1/stream", "bearer " + secrets["reader"], 202, "", ""},
		{"read may not post", "POST", "/v1/pulses", "Bearer " + secrets["reader"], 403, `Bearer realm="vigil", error="insufficient_scope", scope="ingest"`, `token "reader" lacks scope ingest`},
		{"read may not silence", "POST", "/v1/silences", "Bearer " + secrets["reader"], 403, `Bearer realm="vigil", error="insufficient_scope", scope="write"`, `token "reader" lacks scope write`},
		{"ingest may pulse", "POST", "/v1/pulses", "Bearer " + secrets["sender"], 202, "", ""},
		{"ingest may cancel", "DELETE", "/v1/services/x", "Bearer " + secrets["sender"], 202, "", ""},
		{"ingest may not read", "GET", "/v1/services", "Bearer " + secrets["sender"], 403, `Bearer realm="vigil", error="insufficient_scope", scope="read"`, `token "sender" lacks scope read`},
		{"ingest may not silence", "POST", "/v1/silences", "Bearer " + secrets["sender"], 403, `Bearer realm="vigil", error="insufficient_scope", scope="write"`, `token "sender" lacks scope write`},
		{"read+ingest reads", "GET", "/v1/events", "Bearer " + secrets["both"], 202, "", ""},
		{"read+ingest sends", "POST", "/v1/events", "Bearer " + secrets["both"], 202, "", ""},
		{"read+ingest may not retry", "POST", "/v1/deadletters/1/retry", "Bearer " + secrets["both"], 403, `Bearer realm="vigil", error="insufficient_scope", scope="write"`, `token "both" lacks scope write`},
		{"write reads", "GET", "/v1/services", "Bearer " + secrets["admin"], 202, "", ""},
		{"write sends", "POST", "/v1/alerts", "Bearer " + secrets["admin"], 202, "", ""},
		{"write silences", "DELETE", "/v1/silences/s1", "Bearer " + secrets["admin"], 202, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = ""
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("%s %s = %d, want %d (%s)", tt.method, tt.path, rec.Code, tt.code, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			if tt.code < 400 {
				if seen == "" {
					t.Error("TokenName in the handler is empty, want the token's name")
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var body httpx.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if body.Error != tt.err {
				t.Errorf("error = %q, want %q", body.Error, tt.err)
			}
		})
	}
	for name, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the logs show the secret of token %s:\n%s", name, logs.String())
		}
	}
	if !strings.Contains(logs.String(), `token=reader`) {
		t.Errorf("the logs do not name the token refused on 403:\n%s", logs.String())
	}
	for reason, want := range map[string]float64{"missing": 3, "invalid": 2, "scope": 5} {
		var m dto.Metric
		if err := g.denied.WithLabelValues(reason).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != want {
			t.Errorf("vigil_http_auth_denied_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

func TestRequire(t *testing.T) {
	s, _ := Generate(nil)
	g, err := NewGuard([]Token{{Name: "sender", SHA256: Hash(s), Scopes: []Scope{ScopeIngest}}}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h := g.Require(ScopeRead, http.NotFoundHandler())
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("GET /metrics with an ingest token = %d, want 403", rec.Code)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.0.0.2:0": true, "[::1]:8080": true, "localhost:8080": true, "LocalHost:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "10.0.0.1:8080": false,
		"example.com:80": false, "127.0.0.1": false, "": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// BenchmarkVerify measures one token check (a SHA-256 and a constant-time
// compare with each key) against 1 and 100 configured tokens.
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			tokens := make([]Token, n)
			for i := range tokens {
				tokens[i] = Token{Name: "t" + strconv.Itoa(i), SHA256: Hash("s" + strconv.Itoa(i)), Scopes: []Scope{ScopeRead}}
			}
			k, err := NewKeyring(tokens)
			if err != nil {
				b.Fatal(err)
			}
			secret := "s" + strconv.Itoa(n-1)
			for b.Loop() {
				if k.Verify(secret) != n-1 {
					b.Fatal("no match")
				}
			}
		})
	}
}
