// Package buffer is the agent's offline buffer: a bounded, ordered queue of
// items on disk that the agent appends to while the server is unreachable
// and replays, oldest first, when it is back.
//
// The queue is a directory of segment files of newline-delimited JSON items
// ("0000000000000001.ndjson", …) and a small "head" file naming the first
// unsent item (segment and byte offset) and the count of items dropped so
// far. Appends go to the newest segment and are fsynced; a segment is
// deleted once replayed. When the queue would grow past its byte limit the
// oldest segment is dropped whole, and items older than the age limit are
// dropped at replay; both are counted. A crash may leave a torn last line,
// which Open cuts off; it may also forget that the last items were sent (the
// head is written without fsync), so a replay can resend an item: items
// carry ids the server deduplicates.
package buffer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Item is one buffered message. Kind says what it is ("stats", "alert"),
// ID is its dedup id (Nats-Msg-Id, Idempotency-Key), Key what the transport
// needs to address it (the host id of stats), At when it was queued, and
// Body the JSON message itself.
type Item struct {
	Kind string          `json:"kind"`
	ID   string          `json:"id"`
	Key  string          `json:"key,omitempty"`
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// Options bound a queue.
type Options struct {
	// MaxBytes bounds the queue's size on disk (default 50 MiB).
	MaxBytes int64
	// MaxAge drops items older than it at replay (default 24 h; negative:
	// never).
	MaxAge time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Queue is an open buffer directory. Its methods are safe for concurrent
// use; Replay holds the queue while it sends.
type Queue struct {
	dir  string
	opts Options

	mu      sync.Mutex
	segs    []*segment // oldest first; the last one takes appends
	head    head
	w       *os.File // the newest segment, open for appending
	pending int      // items not yet replayed
}

type segment struct {
	n     uint64
	size  int64
	items int
}

// head is the "head" file: the first unsent item is at byte Offset of
// segment Segment; Dropped counts items dropped since the queue was made.
type head struct {
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
	Dropped uint64 `json:"dropped"`
}

const (
	segSuffix = ".ndjson"
	headFile  = "head"
	// segmentParts is how many segments the byte limit is cut into: the
	// granularity of dropping the oldest items.
	segmentParts = 16
)

// ErrTooLarge is returned by Append for an item bigger than a whole
// segment; it is dropped and counted.
var ErrTooLarge = errors.New("buffer: item larger than the buffer allows")

// Open opens (creating if needed) the queue in dir. It cuts a torn last
// line off the newest segment and counts the pending items. Errors come
// from the file system.
func Open(dir string, opts Options) (*Queue, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 50 << 20
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	q := &Queue{dir: dir, opts: opts}
	if b, err := os.ReadFile(filepath.Join(dir, headFile)); err == nil {
		if err := json.Unmarshal(b, &q.head); err != nil {
			q.head = head{} // a torn head only costs resending: ids dedup
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		q.segs = append(q.segs, &segment{n: n})
	}
	slices.SortFunc(q.segs, func(a, b *segment) int { return cmpU64(a.n, b.n) })
	// Segments before the head were replayed but not yet deleted.
	for len(q.segs) > 0 && q.segs[0].n < q.head.Segment {
		_ = os.Remove(q.path(q.segs[0].n))
		q.segs = q.segs[1:]
	}
	if len(q.segs) == 0 || q.segs[0].n != q.head.Segment {
		q.head.Offset = 0
	}
	for i, s := range q.segs {
		if err := q.scan(s, i == len(q.segs)-1); err != nil {
			return nil, err
		}
		from := int64(0)
		if i == 0 {
			from = q.head.Offset
		}
		q.pending += s.countFrom(q, from)
	}
	if len(q.segs) > 0 {
		q.head.Segment = q.segs[0].n
	}
	return q, nil
}

// scan sets s.size and s.items; for the newest segment it also cuts off a
// torn last line.
func (q *Queue) scan(s *segment, newest bool) error {
	b, err := os.ReadFile(q.path(s.n))
	if err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i+1 != len(b) {
		if !newest {
			return nil // an older segment is never appended to: leave it
		}
		b = b[:i+1]
		if err := os.Truncate(q.path(s.n), int64(len(b))); err != nil {
			return fmt.Errorf("buffer: cut torn line: %w", err)
		}
	}
	s.size = int64(len(b))
	s.items = bytes.Count(b, []byte{'\n'})
	return nil
}

// countFrom counts the items of s at or after byte offset from.
func (s *segment) countFrom(q *Queue, from int64) int {
	if from == 0 {
		return s.items
	}
	b, err := os.ReadFile(q.path(s.n))
	if err != nil || from > int64(len(b)) {
		return 0
	}
	return bytes.Count(b[from:], []byte{'\n'})
}

func (q *Queue) path(n uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%016d%s", n, segSuffix))
}

// Append adds it at the end of the queue and fsyncs it. If the queue
// would exceed MaxBytes, its oldest segments are dropped first (and
// counted). An item larger than a segment (MaxBytes/16) is not stored:
// Append returns ErrTooLarge and counts it as dropped.
func (q *Queue) Append(it Item) error {
	line, err := json.Marshal(it)
	if err != nil {
		return fmt.Errorf("buffer: encode: %w", err)
	}
	line = append(line, '\n')
	q.mu.Lock()
	defer q.mu.Unlock()
	segMax := q.opts.MaxBytes / segmentParts
	if int64(len(line)) > segMax {
		q.head.Dropped++
		q.saveHead()
		return fmt.Errorf("%w: %d bytes, segments hold %d", ErrTooLarge, len(line), segMax)
	}
	for q.size()+int64(len(line)) > q.opts.MaxBytes && len(q.segs) > 0 {
		q.dropOldest()
	}
	if len(q.segs) == 0 || q.tail().size+int64(len(line)) > segMax {
		if err := q.rotate(); err != nil {
			return err
		}
	}
	if q.w == nil {
		f, err := os.OpenFile(q.path(q.tail().n), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
		q.w = f
	}
	if _, err := q.w.Write(line); err != nil {
		return fmt.Errorf("buffer: append: %w", err)
	}
	if err := q.w.Sync(); err != nil {
		return fmt.Errorf("buffer: sync: %w", err)
	}
	t := q.tail()
	t.size += int64(len(line))
	t.items++
	q.pending++
	return nil
}

func (q *Queue) tail() *segment { return q.segs[len(q.segs)-1] }

// size is the bytes on disk not yet replayed.
func (q *Queue) size() int64 {
	var n int64
	for _, s := range q.segs {
		n += s.size
	}
	if len(q.segs) > 0 {
		n -= q.head.Offset
	}
	return n
}

// rotate starts a new newest segment.
func (q *Queue) rotate() error {
	if q.w != nil {
		if err := q.w.Close(); err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
		q.w = nil
	}
	n := q.head.Segment
	if len(q.segs) > 0 {
		n = q.tail().n + 1
	} else if n == 0 {
		n = 1
	}
	q.segs = append(q.segs, &segment{n: n})
	if len(q.segs) == 1 {
		q.head.Segment, q.head.Offset = n, 0
		q.saveHead()
	}
	return nil
}

// dropOldest deletes the oldest segment and counts its unsent items.
func (q *Queue) dropOldest() {
	s := q.segs[0]
	lost := s.countFrom(q, q.head.Offset)
	if len(q.segs) == 1 && q.w != nil {
		_ = q.w.Close()
		q.w = nil
	}
	_ = os.Remove(q.path(s.n))
	q.segs = q.segs[1:]
	q.pending -= lost
	q.head.Dropped += uint64(lost) //nolint:gosec // a count
	q.head.Offset = 0
	if len(q.segs) > 0 {
		q.head.Segment = q.segs[0].n
	} else {
		q.head.Segment = s.n + 1
	}
	q.saveHead()
}

// saveHead writes the head file through a rename, without fsync: losing
// the last update only resends items the server deduplicates.
func (q *Queue) saveHead() {
	b, _ := json.Marshal(q.head)
	tmp := filepath.Join(q.dir, headFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		_ = os.Rename(tmp, filepath.Join(q.dir, headFile))
	}
}

// Len returns the number of items waiting to be replayed.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}

// Bytes returns the queue's size on disk in bytes, not counting replayed
// items of a segment still in use.
func (q *Queue) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size()
}

// Dropped returns how many items were dropped since the queue was made:
// for the size limit, the age limit, or as too large.
func (q *Queue) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head.Dropped
}

// Replay calls send with every waiting item, oldest first, and removes each
// one send accepts. It stops at the first error from send, leaving that
// item first in the queue, and returns the number sent and that error.
// Items older than MaxAge are dropped and counted without being sent; an
// undecodable line is dropped and counted too.
func (q *Queue) Replay(ctx context.Context, send func(context.Context, Item) error) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sent := 0
	for len(q.segs) > 0 {
		s := q.segs[0]
		f, err := os.Open(q.path(s.n))
		if err != nil {
			return sent, fmt.Errorf("buffer: %w", err)
		}
		if _, err := f.Seek(q.head.Offset, io.SeekStart); err != nil {
			f.Close()
			return sent, fmt.Errorf("buffer: %w", err)
		}
		n, err := q.replaySegment(ctx, bufio.NewReaderSize(f, 64<<10), send)
		f.Close()
		sent += n
		if err != nil {
			return sent, err
		}
		// The segment is done: delete it, unless it still takes appends
		// (then reset it, so the file does not grow forever).
		if len(q.segs) == 1 {
			if q.w != nil {
				_ = q.w.Close()
				q.w = nil
			}
			_ = os.Remove(q.path(s.n))
			q.segs = nil
			q.head.Segment, q.head.Offset = s.n+1, 0
			q.saveHead()
			break
		}
		_ = os.Remove(q.path(s.n))
		q.segs = q.segs[1:]
		q.head.Segment, q.head.Offset = q.segs[0].n, 0
		q.saveHead()
	}
	return sent, nil
}

// replaySegment sends the items of one segment from the reader's position,
// advancing the head after each one.
func (q *Queue) replaySegment(ctx context.Context, r *bufio.Reader, send func(context.Context, Item) error) (int, error) {
	sent := 0
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return sent, nil // a torn tail is only ever at the end: Open cut it
		}
		if err != nil {
			return sent, fmt.Errorf("buffer: read: %w", err)
		}
		var it Item
		skip := json.Unmarshal(line, &it) != nil
		if !skip && q.opts.MaxAge > 0 && q.opts.Now().Sub(it.At) > q.opts.MaxAge {
			skip = true
		}
		if skip {
			q.head.Dropped++
		} else {
			if err := ctx.Err(); err != nil {
				return sent, err
			}
			if err := send(ctx, it); err != nil {
				return sent, err
			}
			sent++
		}
		q.head.Offset += int64(len(line))
		q.pending--
		q.saveHead()
	}
}

// Close closes the newest segment file.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.w == nil {
		return nil
	}
	err := q.w.Close()
	q.w = nil
	return err
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
