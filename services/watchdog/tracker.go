package watchdog

import (
	"container/heap"
	"time"

	"github.com/vigil-monitor/vigil"
)

// action is what the leader must do for a service.
type action uint8

const (
	actNone     action = iota
	actRegister        // first pulse, or a pulse after a cancel: verdict up, no alert
	actRecover         // a pulse after a down alert: recovered alert + verdict up
	actCancel          // a cancel record: verdict cancelled, no alert
	actDown            // deadline + grace passed: down alert + verdict down
)

func (a action) String() string {
	return [...]string{"none", "register", "recover", "cancel", "down"}[a]
}

// entry is the watchdog's compact state of one service: the fields of its
// last Record and of its Verdict that judging needs (kept small: the goal is
// ≤ 1 KiB per tracked service), and its place in the due heap.
type entry struct {
	token, name string
	owner       *vigil.Owner // interned
	host        string
	origin      string

	seq      uint64 // pulse record sequence
	at       int64  // pulse time, unix ns
	nextIn   int64  // ns
	grace    int64  // ns
	cancelAt int64  // unix ns, op cancel only
	op       vigil.Op

	vStatus  vigil.Status // "" when no verdict yet
	vSeq     uint64
	vRev     uint64 // KV revision of the verdict (0 = none)
	vDownSeq uint64 // open outage: the pulse whose silence caused it
	vSince   int64
	vRearm   int64

	due int64  // unix ns when act is due; 0 = not in heap
	act action // what is due
	idx int    // heap index, -1 when absent
}

// deadline is the pulse deadline, or the verdict's rearm for this pulse.
func (e *entry) deadline() int64 {
	d := e.at + e.nextIn
	if e.vRearm > d && e.vSeq == e.seq {
		return e.vRearm
	}
	return d
}

// downAt is when the service turns down: deadline + grace.
func (e *entry) downAt() int64 { return e.deadline() + e.grace }

// evaluate returns what is due for e and when, from its record and verdict
// alone. It is the whole state machine; every change to e re-runs it.
func (e *entry) evaluate(now int64) (action, int64) {
	if e.seq == 0 { // verdict seen, record not (yet)
		return actNone, 0
	}
	open := e.vDownSeq != 0
	if e.op == vigil.OpCancel {
		if e.vStatus == vigil.StatusCancelled && e.vSeq == e.seq {
			return actNone, 0
		}
		return actCancel, now
	}
	switch {
	case open && e.seq > e.vDownSeq:
		return actRecover, now
	case open:
		return actNone, 0 // down already raised for this silence
	case e.vStatus != vigil.StatusUp:
		return actRegister, now
	}
	return actDown, e.downAt()
}

// tracker holds every service's entry and a min-heap of due actions. It is
// not safe for concurrent use; Role guards it with a mutex.
type tracker struct {
	byToken map[string]*entry
	due     dueHeap
	owners  map[vigil.Owner]*vigil.Owner
	strs    map[string]string // interned hosts and origins
}

func newTracker() *tracker {
	return &tracker{
		byToken: make(map[string]*entry),
		owners:  make(map[vigil.Owner]*vigil.Owner),
		strs:    make(map[string]string),
	}
}

func (t *tracker) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := t.strs[s]; ok {
		return v
	}
	if len(t.strs) < 1<<16 {
		t.strs[s] = s
	}
	return s
}

func (t *tracker) get(token, name string) *entry {
	e := t.byToken[token]
	if e == nil {
		if name == token {
			name = token // share the bytes for plain names
		}
		e = &entry{token: token, name: name, idx: -1}
		t.byToken[token] = e
	}
	return e
}

// applyRecord folds a record (seq = its stream sequence) into the service's
// entry. Older sequences than the one held are ignored.
func (t *tracker) applyRecord(token, name string, r *vigil.Record, seq uint64, now int64) {
	e := t.get(token, name)
	if seq <= e.seq {
		return
	}
	e.seq, e.op = seq, r.Op
	e.at, e.nextIn, e.grace = r.At.UnixNano(), int64(r.NextIn), int64(r.GraceD())
	e.cancelAt = 0
	if r.Op == vigil.OpCancel {
		e.cancelAt = r.CancelledAt.UnixNano()
	}
	e.owner = nil
	if r.Owner != nil {
		o, ok := t.owners[*r.Owner]
		if !ok {
			o = &vigil.Owner{Type: r.Owner.Type, Target: r.Owner.Target}
			t.owners[*o] = o
		}
		e.owner = o
	}
	e.host, e.origin = t.intern(r.Host), t.intern(r.Origin)
	t.schedule(e, now)
}

// applyVerdict folds a verdict stored at revision rev into the entry; older
// revisions than the one held are ignored.
func (t *tracker) applyVerdict(token, name string, v *vigil.Verdict, rev uint64, now int64) {
	e := t.get(token, name)
	if rev <= e.vRev {
		return
	}
	e.vRev, e.vStatus, e.vSeq, e.vDownSeq = rev, v.Status, v.Seq, v.DownSeq
	e.vSince, e.vRearm = v.Since.UnixNano(), 0
	if !v.Rearm.IsZero() {
		e.vRearm = v.Rearm.UnixNano()
	}
	t.schedule(e, now)
}

// remove forgets a service (its record was deleted from the bucket).
func (t *tracker) remove(token string) {
	e := t.byToken[token]
	if e == nil {
		return
	}
	if e.idx >= 0 {
		heap.Remove(&t.due, e.idx)
	}
	delete(t.byToken, token)
}

// schedule re-evaluates e and fixes its place in the heap.
func (t *tracker) schedule(e *entry, now int64) {
	act, at := e.evaluate(now)
	e.act = act
	switch {
	case act == actNone && e.idx >= 0:
		heap.Remove(&t.due, e.idx)
		e.due = 0
	case act == actNone:
		e.due = 0
	case e.idx >= 0:
		e.due = at
		heap.Fix(&t.due, e.idx)
	default:
		e.due = at
		heap.Push(&t.due, e)
	}
}

// nextDue returns the earliest due time, or false when nothing is scheduled.
func (t *tracker) nextDue() (int64, bool) {
	if len(t.due) == 0 {
		return 0, false
	}
	return t.due[0].due, true
}

// popDue removes and returns up to max entries due at or before now. The
// caller acts on them and then calls schedule for each.
func (t *tracker) popDue(now int64, max int) []*entry {
	var out []*entry
	for len(t.due) > 0 && t.due[0].due <= now && len(out) < max {
		e := heap.Pop(&t.due).(*entry)
		e.due = 0
		out = append(out, e)
	}
	return out
}

// dueHeap orders entries by due time.
type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}

func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}

func (h *dueHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.idx = -1
	*h = old[:n-1]
	return e
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
