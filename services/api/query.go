package api

import (
	"encoding/base64"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil"
)

// maxPattern is the longest regular expression accepted in a query, in
// bytes.
const maxPattern = 1024

// listParams are the parsed query parameters of the event and alert lists
// and of the live stream. Every field is optional.
type listParams struct {
	service  *regexp.Regexp // ?service=RE, case-insensitive
	exact    []string       // ?service_exact=NAME, repeatable
	message  *regexp.Regexp // ?message=RE, case-insensitive
	folded   *textFilter    // the same, to run over folded text (compileFolded)
	level    vigil.Level    // ?level=N or a name: the minimum
	from, to int64          // ?from= ?to=, inclusive, Unix nanoseconds
	limit    int
	cursor   uint64
	desc     bool
	kinds    uint8 // ?kind=down,recovered (alerts)
	types    uint8 // ?types=events,alerts (stream)
	lastID   string
}

// param names.
const (
	pService      = "service"
	pServiceExact = "service_exact"
	pMessage      = "message"
	pLevel        = "level"
	pFrom         = "from"
	pTo           = "to"
	pLimit        = "limit"
	pCursor       = "cursor"
	pOrder        = "order"
	pKind         = "kind"
	pTypes        = "types"
	pLastEventID  = "last_event_id"
)

// Parameter sets of each route.
var (
	eventParams   = []string{pService, pServiceExact, pMessage, pLevel, pFrom, pTo, pLimit, pCursor, pOrder}
	alertParams   = []string{pService, pServiceExact, pMessage, pLevel, pKind, pFrom, pTo, pLimit, pCursor, pOrder}
	historyParams = []string{pFrom, pTo, pLimit, pCursor, pOrder}
	streamParams  = []string{pTypes, pService, pServiceExact, pMessage, pLevel, pLastEventID}
)

// parseList reads the query parameters in allowed from q, strictly: an
// unknown parameter, a parameter given twice (but service_exact), a bad
// regular expression, time, level, limit, cursor, order or kind is a
// *vigil.FieldError naming the parameter. window, when > 0, is how far
// back "from" defaults to from now; otherwise from is unbounded.
func (r *Role) parseList(q url.Values, allowed []string, window time.Duration) (*listParams, error) {
	p := &listParams{from: math.MinInt64, to: math.MaxInt64, limit: r.cfg.DefaultLimit, desc: true}
	if window > 0 {
		p.from = r.now().Add(-window).UnixNano()
	}
	for k, vs := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return nil, vigil.Invalid(k, "unknown parameter (this route takes %s)", strings.Join(allowed, ", "))
		}
		if len(vs) > 1 && k != pServiceExact {
			return nil, vigil.Invalid(k, "given %d times, want once", len(vs))
		}
	}
	var err error
	if p.service, err = parseRegexp(q, pService); err != nil {
		return nil, err
	}
	if p.message, err = parseRegexp(q, pMessage); err != nil {
		return nil, err
	}
	if p.message != nil {
		if p.folded, err = compileFolded(q.Get(pMessage)); err != nil {
			return nil, vigil.Invalid(pMessage, "%v", err)
		}
	}
	for _, n := range q[pServiceExact] {
		if err := vigil.ValidateName(n); err != nil {
			return nil, vigil.PrefixField(pServiceExact, withoutField(err))
		}
		p.exact = append(p.exact, n)
	}
	if q.Has(pLevel) {
		if p.level, err = vigil.ParseLevel(q.Get(pLevel)); err != nil {
			return nil, err
		}
	}
	if q.Has(pFrom) {
		if p.from, err = parseTime(q.Get(pFrom), pFrom); err != nil {
			return nil, err
		}
	}
	if q.Has(pTo) {
		if p.to, err = parseTime(q.Get(pTo), pTo); err != nil {
			return nil, err
		}
	}
	if p.from > p.to {
		return nil, vigil.Invalid(pFrom, "is after to")
	}
	if p.limit, err = r.parseLimit(q); err != nil {
		return nil, err
	}
	if p.cursor, err = decodeSeqCursor(q.Get(pCursor)); err != nil {
		return nil, err
	}
	switch o := strings.ToLower(q.Get(pOrder)); o {
	case "", "desc":
	case "asc":
		p.desc = false
	default:
		return nil, vigil.Invalid(pOrder, "must be asc or desc, got %q", o)
	}
	if p.kinds, err = parseSet(q.Get(pKind), pKind, alertKinds); err != nil {
		return nil, err
	}
	if p.types, err = parseSet(q.Get(pTypes), pTypes, streamTypes); err != nil {
		return nil, err
	}
	p.lastID = q.Get(pLastEventID)
	return p, nil
}

// parseRegexp compiles parameter name as a case-insensitive RE2 regular
// expression (https://github.com/google/re2/wiki/Syntax); nil when absent.
func parseRegexp(q url.Values, name string) (*regexp.Regexp, error) {
	s := q.Get(name)
	if s == "" {
		return nil, nil
	}
	if len(s) > maxPattern {
		return nil, vigil.Invalid(name, "regular expression is %d bytes, the limit is %d", len(s), maxPattern)
	}
	re, err := regexp.Compile("(?i)" + s)
	if err != nil {
		return nil, vigil.Invalid(name, "is not a valid regular expression: %v", err)
	}
	return re, nil
}

// parseTime reads an RFC 3339 time ("2026-11-21T12:00:00Z", fraction and
// offset optional) or a number of seconds since the Unix epoch ("1795000000",
// "1795000000.5"), as Unix nanoseconds.
func parseTime(s, name string) (int64, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || strings.ContainsAny(s, "xXpPnN_") {
		return 0, vigil.Invalid(name, "must be an RFC 3339 time like 2026-11-21T12:00:00Z or a number of Unix seconds, got %q", s)
	}
	// Beyond ±292 years around 1970 nanoseconds overflow: clamp, since the
	// filter only compares.
	if f >= math.MaxInt64/1e9 {
		return math.MaxInt64, nil
	}
	if f <= math.MinInt64/1e9 {
		return math.MinInt64, nil
	}
	sec, frac := math.Modf(f)
	return int64(sec)*1e9 + int64(math.Round(frac*1e9)), nil
}

// parseSet reads a comma-separated list of names into a bit set, by the
// bit numbers of names; "" is the empty set (no filter).
func parseSet(s, param string, names map[string]uint8) (uint8, error) {
	var set uint8
	for v := range strings.SplitSeq(s, ",") {
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "" {
			continue
		}
		bit, ok := names[v]
		if !ok {
			return 0, vigil.Invalid(param, "unknown value %q (want %s)", v, strings.Join(slices.Sorted(maps.Keys(names)), ", "))
		}
		set |= 1 << bit
	}
	return set, nil
}

// Alert kinds as index kinds; 0 is a kind this version does not know.
var alertKinds = map[string]uint8{
	string(vigil.AlertDown): 1, string(vigil.AlertRecovered): 2, string(vigil.AlertGap): 3, string(vigil.AlertManual): 4,
}

// encodeSeqCursor makes the opaque cursor that resumes a list after stream
// sequence seq ("" for 0: no next page).
func encodeSeqCursor(seq uint64) string {
	if seq == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(strconv.AppendUint([]byte("s"), seq, 10))
}

func decodeSeqCursor(c string) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err == nil && len(b) > 1 && b[0] == 's' {
		if n, err := strconv.ParseUint(string(b[1:]), 10, 64); err == nil && n > 0 {
			return n, nil
		}
	}
	return 0, vigil.Invalid(pCursor, "is not a cursor this server gave out")
}
