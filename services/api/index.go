package api

import (
	"context"
	"math"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vigil-monitor/vigil"
)

// logIndex is the in-memory index of one stream of the read side
// (VIGIL_EVENTS or VIGIL_ALERTS) that the list queries run on. It keeps,
// per message, a compact entry (sequence, time, level, kind, service id and
// where its message text lies), the message texts case-folded (see
// appendFolded) in an arena of large chunks, and a posting list per
// service. A page filtered by one service
// walks that service's posting list, O(page); any other filter is a tight
// loop over the entries that tests the cheap fields first and the message
// regex last. Full messages are not kept: a page's items are fetched from
// the stream by sequence.
//
// Entries are in stream order and only ever appended at the tail (by the
// stream's follower) or dropped at the head (trim, after retention removed
// messages from the stream). A query takes a snapshot of the slice headers
// under the read lock and scans without it: appends never write inside a
// snapshot, so a slow regex scan never blocks the follower.
//
// Memory: 48 bytes per entry, 4 per posting, plus the message bytes; the
// arena and the entry slice grow by doubling, so allow up to twice that.
type logIndex struct {
	mu      sync.RWMutex
	entries []logEntry
	base    uint64   // absolute position of entries[0]
	chunks  [][]byte // message arena; chunks[i] is chunk number chunk0+i
	chunk0  uint32
	names   []string          // service id → name; id 0 is "no service"
	ids     map[string]uint32 // service token → id
	posts   [][]uint32        // service id → positions (absolute, mod 2^32), ascending
	late    int64             // the most an entry's time lags behind an earlier entry's, ns
	ready   atomic.Bool       // caught up with the stream once
}

// logEntry is one indexed message. key is the largest time of this and every
// earlier entry: times are only nearly in stream order (several ingest
// replicas, clocks), key is exactly monotone and is what binary searches
// use, while filters test the real time.
type logEntry struct {
	seq   uint64
	at    int64 // Unix nanoseconds: an event's received, an alert's at
	key   int64
	off   uint32 // message offset in its chunk
	chunk uint32 // absolute chunk number of the message
	level int32
	svc   uint32
	mlen  uint16
	kind  uint8
}

// chunkSize is the size of one arena chunk, in bytes.
const chunkSize = 1 << 20

// maxIndexedMsg is the longest message prefix kept for regex filters, in
// bytes (messages are at most vigil.MaxMessageLen; alerts from elsewhere
// might not be).
const maxIndexedMsg = math.MaxUint16

func newLogIndex() *logIndex {
	return &logIndex{names: []string{""}, ids: map[string]uint32{}, posts: [][]uint32{nil}}
}

// serviceID returns the id of the service with subject token tok, adding
// it when new; "" and vigil.NoService are id 0. A token that is no valid
// service token is also id 0.
func (ix *logIndex) serviceID(tok string) uint32 {
	if tok == "" || tok == vigil.NoService {
		return 0
	}
	if id, ok := ix.ids[tok]; ok {
		return id
	}
	name, err := vigil.NameFromToken(tok)
	if err != nil {
		return 0
	}
	id := uint32(len(ix.names))
	ix.names = append(ix.names, name)
	ix.ids[tok] = id
	ix.posts = append(ix.posts, nil)
	return id
}

// add appends one message. Messages must come in increasing sequence; an
// older or repeated sequence (a follower replaying after a reset) is
// ignored.
func (ix *logIndex) add(seq uint64, tok string, at int64, level vigil.Level, kind uint8, msg string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := len(ix.entries)
	if n > 0 && seq <= ix.entries[n-1].seq {
		return
	}
	svc := ix.serviceID(tok)
	if len(msg) > maxIndexedMsg {
		msg = msg[:maxIndexedMsg]
	}
	// A fold is the smallest rune of its orbit, never longer in UTF-8, so
	// the folded message fits in len(msg) bytes.
	if len(ix.chunks) == 0 || len(ix.chunks[len(ix.chunks)-1])+len(msg) > chunkSize {
		ix.chunks = append(ix.chunks, make([]byte, 0, chunkSize))
	}
	c := len(ix.chunks) - 1
	off := len(ix.chunks[c])
	ix.chunks[c] = appendFolded(ix.chunks[c], msg)
	mlen := len(ix.chunks[c]) - off // folding may shorten it
	key := at
	if n > 0 && ix.entries[n-1].key > key {
		key = ix.entries[n-1].key
		ix.late = max(ix.late, key-at)
	}
	lv := int32(min(max(level, 0), vigil.MaxEventLevel))
	ix.entries = append(ix.entries, logEntry{
		seq: seq, at: at, key: key, off: uint32(off), chunk: ix.chunk0 + uint32(c),
		level: lv, svc: svc, mlen: uint16(mlen), kind: kind,
	})
	if svc != 0 {
		ix.posts[svc] = append(ix.posts[svc], uint32(ix.base+uint64(n)))
	}
}

// trim drops the entries below stream sequence first, once retention has
// removed them from the stream, and the arena chunks and postings that only
// they used.
func (ix *logIndex) trim(first uint64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	k := sort.Search(len(ix.entries), func(i int) bool { return ix.entries[i].seq >= first })
	if k == 0 {
		return
	}
	oldBase := uint32(ix.base)
	ix.entries = ix.entries[k:]
	ix.base += uint64(k)
	if len(ix.entries)*4 < cap(ix.entries) {
		ix.entries = slices.Clone(ix.entries) // let the dropped head go
	}
	live := ix.chunk0 + uint32(len(ix.chunks)) - 1
	if len(ix.entries) > 0 {
		live = ix.entries[0].chunk
	}
	if d := live - ix.chunk0; d > 0 {
		// A copy, never clear in place: snapshots may still read the old array.
		ix.chunks = slices.Clone(ix.chunks[d:])
		ix.chunk0 = live
	}
	for id, p := range ix.posts {
		// Every posting is ≥ the old base, so its offset from it is exact.
		j := sort.Search(len(p), func(i int) bool { return uint64(p[i]-oldBase) >= uint64(k) })
		switch {
		case j == 0:
		case j == len(p):
			ix.posts[id] = nil
		case (len(p)-j)*4 < cap(p):
			ix.posts[id] = slices.Clone(p[j:])
		default:
			ix.posts[id] = p[j:]
		}
	}
}

// query is one list request on an index.
type query struct {
	// svcs are the service ids accepted; nil accepts every entry, an empty
	// non-nil slice none.
	svcs     []uint32
	level    int32
	kinds    uint8 // bit 1<<kind per accepted kind; 0 accepts every kind
	from, to int64 // inclusive, Unix nanoseconds
	msg      *textFilter
	desc     bool
	cursor   uint64 // exclusive bound in stream sequence; 0 for none
	limit    int
}

// snapshot is what a query reads without the lock.
type snapshot struct {
	entries []logEntry
	base    uint64
	chunks  [][]byte
	chunk0  uint32
	late    int64
	posts   [][]uint32 // the postings of the query's services, or nil
}

func (s *snapshot) msg(e *logEntry) []byte {
	return s.chunks[e.chunk-s.chunk0][e.off : e.off+uint32(e.mlen)]
}

// matchServices returns the ids of the services whose names match re, in
// id order.
func (ix *logIndex) matchServices(re *regexp.Regexp) []uint32 {
	ix.mu.RLock()
	names := ix.names
	ix.mu.RUnlock()
	ids := []uint32{}
	for id, n := range names[1:] {
		if re.MatchString(n) {
			ids = append(ids, uint32(id+1))
		}
	}
	return ids
}

// lookup returns the ids of the named services the index knows.
func (ix *logIndex) lookup(names []string) []uint32 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ids := []uint32{}
	for _, n := range names {
		if id, ok := ix.ids[vigil.Token(n)]; ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// postingThreshold is the most services a query walks by posting list;
// beyond it, one pass over the entries with a set of ids is faster.
const postingThreshold = 8

// checkEvery is how many entries a scan examines between two looks at its
// context.
const checkEvery = 4096

// find returns the sequences of the entries q selects, at most q.limit, in
// q's order, and the cursor of the next page: the last item's sequence when
// more follow, 0 at the end. When ctx ends first (the scan budget), it
// returns what it found so far and the sequence of the last entry it
// examined as the cursor, so the client goes on from there.
func (ix *logIndex) find(ctx context.Context, q *query) (seqs []uint64, next uint64) {
	if q.svcs != nil && len(q.svcs) == 0 {
		return nil, 0
	}
	ix.mu.RLock()
	s := snapshot{entries: ix.entries, base: ix.base, chunks: ix.chunks, chunk0: ix.chunk0, late: ix.late}
	if q.svcs != nil && len(q.svcs) <= postingThreshold {
		for _, id := range q.svcs {
			s.posts = append(s.posts, ix.posts[id])
		}
	}
	ix.mu.RUnlock()
	lo, hi := s.bounds(q)
	if lo >= hi {
		return nil, 0
	}
	if s.posts != nil {
		return s.findPosted(ctx, q, lo, hi)
	}
	var accept []bool
	if q.svcs != nil {
		accept = make([]bool, slices.Max(q.svcs)+1)
		for _, id := range q.svcs {
			accept[id] = true
		}
	}
	p := runtime.GOMAXPROCS(0)
	if q.msg == nil || hi-lo < parallelMin || p < 2 {
		return merge(q, []scanned{s.scan(ctx, q, accept, lo, hi, nil)})
	}
	// A regex over many entries: split the range into p parts in scan
	// order and scan them at once. Once the first part alone fills the
	// page, the others stop.
	p = min(p, maxParallel)
	parts := make([]scanned, p)
	var stop atomic.Bool
	var wg sync.WaitGroup
	size := (hi - lo + p - 1) / p
	for k := range p {
		a, b := lo+k*size, min(hi, lo+(k+1)*size)
		if q.desc {
			a, b = max(lo, hi-(k+1)*size), hi-k*size
		}
		wg.Go(func() {
			if k == 0 {
				parts[0] = s.scan(ctx, q, accept, a, b, nil)
				if parts[0].more {
					stop.Store(true)
				}
				return
			}
			parts[k] = s.scan(ctx, q, accept, a, b, &stop)
		})
	}
	wg.Wait()
	return merge(q, parts)
}

// parallelMin is the fewest entries a regex scan splits over several
// cores; maxParallel the most parts.
const (
	parallelMin = 1 << 16
	maxParallel = 8
)

// scanned is the outcome of scanning one part of the entries: up to limit
// matches in scan order, whether there was one more, and, when the scan
// stopped early (budget or stop), the sequence of the last entry examined.
type scanned struct {
	seqs    []uint64
	more    bool
	stopped uint64
}

// scan examines the entries [lo, hi) in q's order. It stops at the
// (limit+1)th match, when ctx ends, or when stop is set.
func (s *snapshot) scan(ctx context.Context, q *query, accept []bool, lo, hi int, stop *atomic.Bool) scanned {
	var r scanned
	step, i := 1, lo
	if q.desc {
		step, i = -1, hi-1
	}
	for n := 0; i >= lo && i < hi; i, n = i+step, n+1 {
		if n == checkEvery {
			n = 0
			if ctx.Err() != nil || stop != nil && stop.Load() {
				r.stopped = s.entries[i-step].seq
				return r
			}
		}
		e := &s.entries[i]
		if accept != nil && (int(e.svc) >= len(accept) || !accept[e.svc]) {
			continue
		}
		if !s.match(q, e) {
			continue
		}
		if len(r.seqs) == q.limit {
			r.more = true
			return r
		}
		r.seqs = append(r.seqs, e.seq)
	}
	return r
}

// merge joins the parts of a scan, in scan order, into one page and its
// cursor. A part that stopped early ends the page there: what follows it
// was not fully examined (a stopped part after a full page is never
// reached).
func merge(q *query, parts []scanned) ([]uint64, uint64) {
	var seqs []uint64
	for _, p := range parts {
		for _, seq := range p.seqs {
			if len(seqs) == q.limit {
				return seqs, seqs[len(seqs)-1]
			}
			seqs = append(seqs, seq)
		}
		if p.more {
			return seqs, seqs[len(seqs)-1]
		}
		if p.stopped != 0 {
			return seqs, p.stopped
		}
	}
	return seqs, 0
}

// findPosted is find over the posting lists of a few services, merged in
// stream order.
func (s *snapshot) findPosted(ctx context.Context, q *query, lo, hi int) ([]uint64, uint64) {
	// Cut each list to the positions in [lo, hi).
	lists := make([][]uint32, 0, len(s.posts))
	for _, p := range s.posts {
		a := sort.Search(len(p), func(i int) bool { return s.phys(p[i]) >= lo })
		b := sort.Search(len(p), func(i int) bool { return s.phys(p[i]) >= hi })
		if a < b {
			lists = append(lists, p[a:b])
		}
	}
	r := results{q: q}
	last := uint64(0)
	for n := 0; ; n++ {
		if n == checkEvery {
			n = 0
			if ctx.Err() != nil {
				return r.seqs, last
			}
		}
		// The next position in order among the lists' ends.
		best, bi := -1, -1
		for li, p := range lists {
			if len(p) == 0 {
				continue
			}
			var x int
			if q.desc {
				x = s.phys(p[len(p)-1])
			} else {
				x = s.phys(p[0])
			}
			if best < 0 || (q.desc && x > best) || (!q.desc && x < best) {
				best, bi = x, li
			}
		}
		if bi < 0 {
			break
		}
		if q.desc {
			lists[bi] = lists[bi][:len(lists[bi])-1]
		} else {
			lists[bi] = lists[bi][1:]
		}
		e := &s.entries[best]
		last = e.seq
		if s.match(q, e) && r.add(e.seq) {
			break
		}
	}
	return r.done()
}

// phys returns the index in s.entries of absolute position p (mod 2^32).
func (s *snapshot) phys(p uint32) int { return int(p - uint32(s.base)) }

// bounds returns the index range [lo, hi) of s.entries that can hold
// entries within q's time window and beyond its cursor.
func (s *snapshot) bounds(q *query) (lo, hi int) {
	es := s.entries
	// Entries before lo have key < from, so time < from. Entries from hi on
	// have key > to+late, and an entry's time is at least key-late.
	lo = sort.Search(len(es), func(i int) bool { return es[i].key >= q.from })
	upper := q.to
	if upper <= math.MaxInt64-s.late {
		upper += s.late
	} else {
		upper = math.MaxInt64
	}
	hi = sort.Search(len(es), func(i int) bool { return es[i].key > upper })
	if q.cursor != 0 {
		if q.desc {
			hi = min(hi, sort.Search(len(es), func(i int) bool { return es[i].seq >= q.cursor }))
		} else {
			lo = max(lo, sort.Search(len(es), func(i int) bool { return es[i].seq > q.cursor }))
		}
	}
	return lo, hi
}

// match tests e against every filter but the service, cheapest first.
func (s *snapshot) match(q *query, e *logEntry) bool {
	if e.level < q.level || e.at < q.from || e.at > q.to {
		return false
	}
	if q.kinds != 0 && q.kinds&(1<<e.kind) == 0 {
		return false
	}
	return q.msg == nil || q.msg.match(s.msg(e))
}

// results collects one page plus one look-ahead item.
type results struct {
	q    *query
	seqs []uint64
	more bool
}

// add adds a match and reports whether the page is complete (a match past
// the limit proves there is a next page).
func (r *results) add(seq uint64) bool {
	if len(r.seqs) == r.q.limit {
		r.more = true
		return true
	}
	r.seqs = append(r.seqs, seq)
	return false
}

func (r *results) done() ([]uint64, uint64) {
	if !r.more || len(r.seqs) == 0 {
		return r.seqs, 0
	}
	return r.seqs, r.seqs[len(r.seqs)-1]
}

// size returns the number of entries and of distinct services indexed.
func (ix *logIndex) size() (entries, services int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.entries), len(ix.names) - 1
}
