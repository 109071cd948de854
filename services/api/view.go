package api

import (
	"slices"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil"
)

// view is the in-memory join of KV buckets vigil_pulses (records) and
// vigil_services (verdicts), keyed by service name. Names that have a record
// are listed in sorted order through an index that is rebuilt lazily, and
// only when the set of listed names changed: a pulse for a known service
// costs one map write, a page of a list costs a binary search.
type view struct {
	mu      sync.RWMutex
	entries map[string]*entry
	sorted  []string // listed names in byte order, valid when !dirty
	added   []string // names given a record since the last rebuild
	removed int      // names that lost their record since the last rebuild
}

type entry struct {
	rec     *vigil.Record // nil when the service has a verdict but no record
	verdict *vigil.Verdict
}

func newView() *view { return &view{entries: make(map[string]*entry)} }

// putRecord stores rec as the record of name; a nil rec deletes it.
func (v *view) putRecord(name string, rec *vigil.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e := v.entries[name]
	switch {
	case rec != nil && e == nil:
		v.entries[name] = &entry{rec: rec}
		v.added = append(v.added, name)
	case rec != nil:
		if e.rec == nil {
			v.added = append(v.added, name)
		}
		e.rec = rec
	case e != nil && e.rec != nil:
		e.rec = nil
		v.removed++
		if e.verdict == nil {
			delete(v.entries, name)
		}
	}
}

// putVerdict stores vd as the verdict of name; a nil vd deletes it. A
// verdict alone does not list a service.
func (v *view) putVerdict(name string, vd *vigil.Verdict) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e := v.entries[name]
	switch {
	case vd != nil && e == nil:
		v.entries[name] = &entry{verdict: vd}
	case vd != nil:
		e.verdict = vd
	case e != nil:
		e.verdict = nil
		if e.rec == nil {
			delete(v.entries, name)
		}
	}
}

func (v *view) dirty() bool { return len(v.added) > 0 || v.removed > 0 }

// reindex brings v.sorted up to date: it drops names that lost their
// record, sorts the names added since the last rebuild and merges the two
// runs, O(n + k log k). The caller holds v.mu for writing.
func (v *view) reindex() {
	if !v.dirty() {
		return
	}
	// Without removals every indexed name is still listed and no name can be
	// pending twice, so the map lookups (most of the cost) are skipped.
	check := v.removed > 0
	listed := func(name string) bool {
		if !check {
			return true
		}
		e := v.entries[name]
		return e != nil && e.rec != nil
	}
	add := v.added
	slices.Sort(add)
	out := make([]string, 0, len(v.sorted)+len(add))
	push := func(name string) {
		// A name removed and re-added between rebuilds appears in both runs
		// or twice in add; the output stays strictly increasing.
		if listed(name) && (len(out) == 0 || out[len(out)-1] < name) {
			out = append(out, name)
		}
	}
	i, j := 0, 0
	for i < len(v.sorted) && j < len(add) {
		if v.sorted[i] <= add[j] {
			push(v.sorted[i])
			i++
		} else {
			push(add[j])
			j++
		}
	}
	for ; i < len(v.sorted); i++ {
		push(v.sorted[i])
	}
	for ; j < len(add); j++ {
		push(add[j])
	}
	v.sorted, v.added, v.removed = out, nil, 0
}

// rlockIndexed takes the read lock with the sorted index up to date.
func (v *view) rlockIndexed() {
	v.mu.RLock()
	if !v.dirty() {
		return
	}
	v.mu.RUnlock()
	v.mu.Lock()
	v.reindex()
	v.mu.Unlock()
	v.mu.RLock()
	// A writer may have slipped in between; the index is then at most that
	// writer's changes behind, which a listing tolerates (the names it adds
	// show up on the next request). Never loop here: a steady stream of new
	// names must not starve readers.
}

// statusFilter is a set of statuses; the zero value accepts every status.
type statusFilter map[vigil.Status]bool

func (f statusFilter) accepts(s vigil.Status) bool { return len(f) == 0 || f[s] }

// page returns up to limit services whose names sort after the name after
// (all when after is ""), in name order, with status at now accepted by
// filter. more reports whether another accepted service follows the page.
func (v *view) page(after string, limit int, filter statusFilter, now time.Time) (items []vigil.ServiceStatus, more bool) {
	v.rlockIndexed()
	defer v.mu.RUnlock()
	start := 0
	if after != "" {
		start, _ = slices.BinarySearch(v.sorted, after)
		if start < len(v.sorted) && v.sorted[start] == after {
			start++
		}
	}
	items = make([]vigil.ServiceStatus, 0, min(limit, len(v.sorted)-start))
	for _, name := range v.sorted[start:] {
		e := v.entries[name]
		if e == nil || e.rec == nil {
			continue // removed since the last rebuild
		}
		s := vigil.Service{Record: *e.rec, Verdict: e.verdict}
		st := s.StatusAt(now)
		if !filter.accepts(st) {
			continue
		}
		if len(items) == limit {
			return items, true
		}
		items = append(items, s.StatusView(now))
	}
	return items, false
}

// counts returns how many listed services are in each status at now.
func (v *view) counts(now time.Time) map[vigil.Status]int {
	c := map[vigil.Status]int{vigil.StatusUp: 0, vigil.StatusLate: 0, vigil.StatusDown: 0, vigil.StatusCancelled: 0}
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, e := range v.entries {
		if e.rec == nil {
			continue
		}
		s := vigil.Service{Record: *e.rec, Verdict: e.verdict}
		c[s.StatusAt(now)]++
	}
	return c
}
