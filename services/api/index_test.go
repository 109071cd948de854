package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-monitor/vigil"
)

// refEntry is what the reference implementation keeps of a message.
type refEntry struct {
	seq   uint64
	svc   string
	at    int64
	level vigil.Level
	kind  uint8
	msg   string
}

// reference answers a query by brute force over every entry.
func reference(all []refEntry, q *query, svcs map[string]bool, re *regexp.Regexp) (seqs []uint64, next uint64) {
	var out []uint64
	for i := range all {
		e := all[i]
		if q.desc {
			e = all[len(all)-1-i]
		}
		if q.cursor != 0 && (q.desc && e.seq >= q.cursor || !q.desc && e.seq <= q.cursor) {
			continue
		}
		if svcs != nil && !svcs[e.svc] {
			continue
		}
		if int32(e.level) < q.level || e.at < q.from || e.at > q.to {
			continue
		}
		if q.kinds != 0 && q.kinds&(1<<e.kind) == 0 {
			continue
		}
		if re != nil && !re.MatchString(e.msg) {
			continue
		}
		out = append(out, e.seq)
	}
	if len(out) > q.limit {
		return out[:q.limit], out[q.limit-1]
	}
	return out, 0
}

func TestIndexMatchesReference(t *testing.T) {
	if s := unsafe.Sizeof(logEntry{}); s != 48 {
		t.Errorf("logEntry is %d bytes, the docs say 48", s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ix := newLogIndex()
	names := []string{"db.backup", "web", "Größe ✓", "web-2", "_x", "a/b"}
	var all []refEntry
	at := int64(1_000_000)
	seq := uint64(0)
	for range 2000 {
		seq += 1 + uint64(rng.IntN(2)) // gaps, as after deletes
		at += int64(rng.IntN(1000))
		late := int64(0)
		if rng.IntN(10) == 0 {
			late = int64(rng.IntN(5000)) // out of order by up to 5 µs
		}
		e := refEntry{
			seq: seq, svc: names[rng.IntN(len(names))], at: at - late, level: vigil.Level(rng.IntN(5)),
			kind: uint8(rng.IntN(5)), msg: fmt.Sprintf("message %d with \"quotes\"; level %d\nline", seq, rng.IntN(100)),
		}
		if rng.IntN(50) == 0 {
			e.svc = "" // no service
		}
		all = append(all, e)
		ix.add(e.seq, vigil.Token(e.svc), e.at, e.level, e.kind, e.msg)
	}
	ix.add(all[10].seq, "web", 0, 0, 0, "replayed") // an old sequence is ignored
	ctx := context.Background()
	check := func(t *testing.T, q *query, svcs map[string]bool, re *regexp.Regexp) uint64 {
		t.Helper()
		want, wantNext := reference(all, q, svcs, re)
		got, gotNext := ix.find(ctx, q)
		if diff := cmp.Diff(want, got); diff != "" || gotNext != wantNext {
			t.Fatalf("find(%+v) (-want +got):\n%s\nnext = %d, want %d", *q, diff, gotNext, wantNext)
		}
		return gotNext
	}
	ids := func(svcs map[string]bool) []uint32 {
		if svcs == nil {
			return nil
		}
		var names []string
		for n := range svcs {
			names = append(names, n)
		}
		return ix.lookup(names)
	}
	mid := all[len(all)/2].at
	for i := range 100 {
		q := &query{from: math.MinInt64, to: math.MaxInt64, limit: 5 + rng.IntN(100), desc: rng.IntN(2) == 0}
		var svcs map[string]bool
		var refMsg *regexp.Regexp
		switch rng.IntN(4) {
		case 0:
			svcs = map[string]bool{names[rng.IntN(len(names))]: true}
		case 1:
			svcs = map[string]bool{names[0]: true, names[2]: true, names[5]: true}
		}
		q.svcs = ids(svcs)
		if rng.IntN(2) == 0 {
			q.level = int32(rng.IntN(5))
		}
		if rng.IntN(2) == 0 {
			q.from = mid - int64(rng.IntN(500_000))
			q.to = q.from + int64(rng.IntN(1_000_000))
		}
		if rng.IntN(3) == 0 {
			q.kinds = uint8(rng.IntN(32))
		}
		if rng.IntN(3) == 0 {
			pattern := fmt.Sprintf("LEVEL %d\\b", rng.IntN(100))
			q.msg, refMsg = mustFolded(t, pattern), regexp.MustCompile("(?i)"+pattern)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			// Page through to the end with the cursor.
			for page := 0; ; page++ {
				next := check(t, q, svcs, refMsg)
				if next == 0 {
					break
				}
				if page > len(all) {
					t.Fatal("pagination does not end")
				}
				q.cursor = next
			}
		})
	}

	// Trimming drops what retention removed and keeps the rest answering.
	first := all[800].seq
	ix.trim(first)
	all = all[800:]
	for i := range 100 {
		q := &query{from: math.MinInt64, to: math.MaxInt64, limit: 25, desc: i%2 == 0}
		svcs := map[string]bool{names[i%len(names)]: true}
		q.svcs = ids(svcs)
		check(t, q, svcs, nil)
		check(t, &query{from: math.MinInt64, to: math.MaxInt64, limit: 25, desc: i%2 == 0}, nil, nil)
	}
	// Adding after a trim keeps positions straight.
	for range 100 {
		seq++
		at += 10
		e := refEntry{seq: seq, svc: "web", at: at, msg: "after trim"}
		all = append(all, e)
		ix.add(e.seq, "web", e.at, 0, 0, e.msg)
	}
	svcs := map[string]bool{"web": true}
	check(t, &query{svcs: ids(svcs), from: math.MinInt64, to: math.MaxInt64, limit: 1000}, svcs, nil)
	check(t, &query{svcs: ids(svcs), from: math.MinInt64, to: math.MaxInt64, limit: 1000, desc: true}, svcs, nil)
	ix.trim(seq + 1)
	if got, _ := ix.find(ctx, &query{from: math.MinInt64, to: math.MaxInt64, limit: 10}); len(got) != 0 {
		t.Errorf("after trimming everything find = %v, want nothing", got)
	}
}

func TestIndexScanBudget(t *testing.T) {
	ix := newLogIndex()
	for i := range 3 * checkEvery {
		ix.add(uint64(i+1), "s", int64(i), 0, 0, "m")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := &query{from: math.MinInt64, to: math.MaxInt64, limit: 10, desc: true, msg: mustFolded(t, "nothing")}
	got, next := ix.find(ctx, q)
	if len(got) != 0 || next != uint64(3*checkEvery-checkEvery+1) {
		t.Errorf("find with an ended budget = %v, next %d; want nothing and the cursor where it stopped (%d)", got, next, 2*checkEvery+1)
	}
	// The next page goes on from there.
	q.cursor = next
	if _, next2 := ix.find(ctx, q); next2 >= next || next2 == 0 {
		t.Errorf("second page stops at %d, want below %d", next2, next)
	}
}

func mustFolded(t *testing.T, pattern string) *textFilter {
	t.Helper()
	re, err := compileFolded(pattern)
	if err != nil {
		t.Fatalf("compileFolded(%q): %v", pattern, err)
	}
	return re
}

// TestFoldedMatchesCaseInsensitive checks that a pattern compiled by
// compileFolded over folded text matches exactly where (?i)pattern
// matches the original.
func TestFoldedMatchesCaseInsensitive(t *testing.T) {
	texts := []string{
		"Disk FULL on /var", "disk full", "DİSK", "straße STRASSE", "Kelvin \u212a k K", "ſ s S", "ΣΑΣ σας ς",
		"Größe ✓", "request took 1.2 s; upstream \"Billing\" answered 503", "a\nb", "\xff\xfe bad utf-8 A", "",
		"ǅ ǆ Ǆ", "µ Μ μ", "ﬀ ff", "Ω ω Ω",
	}
	patterns := []string{
		"disk full", "^disk", "FULL$", "d.sk", "[a-c]", "[^a-z ]", `\bfull\b`, `\w+`, `\W`, `\D+`, `\S`, `\pL`, `\p{Lu}`, `\P{Ll}`,
		"straSSe", "k", "\u212a", "s", "ſ", "σ", "ς", "Σ", "größe", "GRÖSSE", `upstream "billing"`, "(?-i:123)", "(?s)a.b", "a.b",
		"ǅ", "ǆ", "µ", "ω", "Ω", "ff", "[ǅ-ǆ]", "x*", "(full|FULL)+", `\x{212A}`, "[[:upper:]]", "[[:lower:]]+", "1\\.2",
		"disk|billing|nope", "(disk|ss)+ ", `\d{3} took`, "a{0}b", "(?:k|x)?s", "full|", "(?m)^disk", "é|e",
	}
	for _, p := range []string{"(?-i:Disk)", "(?-i)[a-c]", "a(?-i)K"} {
		if _, err := compileFolded(p); !errors.Is(err, errCaseSensitive) {
			t.Errorf("compileFolded(%q) = %v, want errCaseSensitive", p, err)
		}
	}
	for _, p := range patterns {
		folded := mustFolded(t, p)
		ref := regexp.MustCompile("(?i)" + p)
		for _, s := range texts {
			want := ref.MatchString(s)
			if got := folded.match(appendFolded(nil, s)); got != want {
				t.Errorf("pattern %q on %q: folded match = %v, (?i) match = %v", p, s, got, want)
			}
		}
	}
}

// TestIndexParallelScan checks the regex scan split over cores (ranges of
// parallelMin entries and more) against the reference.
func TestIndexParallelScan(t *testing.T) {
	const n = parallelMin + parallelMin/2
	ix := newLogIndex()
	all := make([]refEntry, 0, n)
	for i := range n {
		e := refEntry{seq: uint64(i + 1), svc: "s" + fmt.Sprint(i%3), at: int64(i), msg: fmt.Sprintf("m %d", i)}
		if i%9973 == 0 {
			e.msg = "Rare Needle " + fmt.Sprint(i)
		}
		all = append(all, e)
		ix.add(e.seq, vigil.Token(e.svc), e.at, 0, 0, e.msg)
	}
	ctx := context.Background()
	for _, pattern := range []string{"needle", `^m \d*7$`, "nothing at all"} {
		ref := regexp.MustCompile("(?i)" + pattern)
		var hits []refEntry // the reference, with the regex applied once
		for _, e := range all {
			if ref.MatchString(e.msg) {
				hits = append(hits, e)
			}
		}
		for _, desc := range []bool{true, false} {
			for _, limit := range []int{1, 3, 1000} {
				q := &query{from: math.MinInt64, to: math.MaxInt64, limit: limit, desc: desc, msg: mustFolded(t, pattern)}
				for page := 0; page < 4; page++ {
					want, wantNext := reference(hits, q, nil, nil)
					got, next := ix.find(ctx, q)
					if diff := cmp.Diff(want, got); diff != "" || next != wantNext {
						t.Fatalf("%q desc=%v limit=%d page %d (-want +got):\n%s\nnext %d, want %d", pattern, desc, limit, page, diff, next, wantNext)
					}
					if next == 0 {
						break
					}
					q.cursor = next
				}
			}
		}
	}
}
