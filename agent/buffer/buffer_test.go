package buffer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-monitor/vigil/agent/buffer"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func item(i int, at time.Time) buffer.Item {
	return buffer.Item{Kind: "stats", ID: fmt.Sprintf("id-%d", i), Key: "web1", At: at, Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
}

func open(t *testing.T, dir string, opts buffer.Options) *buffer.Queue {
	t.Helper()
	q, err := buffer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// drain replays everything and returns the ids sent.
func drain(t *testing.T, q *buffer.Queue) []string {
	t.Helper()
	var ids []string
	if _, err := q.Replay(context.Background(), func(_ context.Context, it buffer.Item) error {
		ids = append(ids, it.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func ids(from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, fmt.Sprintf("id-%d", i))
	}
	return s
}

func TestOrderAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	now := func() time.Time { return t0 }
	q := open(t, dir, buffer.Options{Now: now})
	for i := 1; i <= 3; i++ {
		if err := q.Append(item(i, t0)); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	q = open(t, dir, buffer.Options{Now: now})
	if q.Len() != 3 {
		t.Fatalf("Len after reopen = %d, want 3", q.Len())
	}
	var got []buffer.Item
	n, err := q.Replay(context.Background(), func(_ context.Context, it buffer.Item) error {
		got = append(got, it)
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	if diff := cmp.Diff([]buffer.Item{item(1, t0), item(2, t0), item(3, t0)}, got); diff != "" {
		t.Errorf("replayed (-want +got):\n%s", diff)
	}
	if q.Len() != 0 || q.Bytes() != 0 {
		t.Errorf("after replay Len %d Bytes %d, want 0", q.Len(), q.Bytes())
	}
	// Appends after a full replay start a fresh segment.
	if err := q.Append(item(4, t0)); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q = open(t, dir, buffer.Options{Now: now})
	if diff := cmp.Diff(ids(4, 4), drain(t, q)); diff != "" {
		t.Errorf("after reopen (-want +got):\n%s", diff)
	}
}

func TestReplayStopsAtFailure(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, buffer.Options{Now: func() time.Time { return t0 }})
	for i := 1; i <= 4; i++ {
		if err := q.Append(item(i, t0)); err != nil {
			t.Fatal(err)
		}
	}
	down := errors.New("server down")
	var sent []string
	n, err := q.Replay(context.Background(), func(_ context.Context, it buffer.Item) error {
		if it.ID == "id-3" {
			return down
		}
		sent = append(sent, it.ID)
		return nil
	})
	if n != 2 || !errors.Is(err, down) {
		t.Fatalf("Replay = %d, %v; want 2 sent and the send error", n, err)
	}
	if q.Len() != 2 {
		t.Errorf("Len = %d, want 2", q.Len())
	}
	q.Close()
	q = open(t, dir, buffer.Options{Now: func() time.Time { return t0 }})
	if diff := cmp.Diff(ids(3, 4), drain(t, q)); diff != "" {
		t.Errorf("second replay (-want +got):\n%s", diff)
	}
}

func TestSizeLimitDropsOldest(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 16 * 400
	q := open(t, dir, buffer.Options{MaxBytes: maxBytes, Now: func() time.Time { return t0 }})
	for i := 1; i <= 500; i++ {
		if err := q.Append(item(i, t0)); err != nil {
			t.Fatal(err)
		}
		if q.Bytes() > maxBytes {
			t.Fatalf("after %d appends the queue holds %d bytes, over %d", i, q.Bytes(), maxBytes)
		}
	}
	kept, dropped := q.Len(), q.Dropped()
	if dropped == 0 || uint64(kept)+dropped != 500 {
		t.Fatalf("kept %d + dropped %d, want 500 with some dropped", kept, dropped)
	}
	got := drain(t, q)
	if diff := cmp.Diff(ids(500-kept+1, 500), got); diff != "" {
		t.Errorf("replay keeps the newest, in order (-want +got):\n%s", diff)
	}
	q.Close()
	if q2 := open(t, dir, buffer.Options{MaxBytes: maxBytes}); q2.Dropped() != dropped {
		t.Errorf("Dropped after reopen = %d, want %d", q2.Dropped(), dropped)
	}
}

func TestAgeLimit(t *testing.T) {
	now := t0
	q := open(t, t.TempDir(), buffer.Options{MaxAge: time.Hour, Now: func() time.Time { return now }})
	for i := 1; i <= 4; i++ {
		if err := q.Append(item(i, t0.Add(time.Duration(i)*30*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	now = t0.Add(150 * time.Minute) // items 1 and 2 are over an hour old
	if diff := cmp.Diff(ids(3, 4), drain(t, q)); diff != "" {
		t.Errorf("replay (-want +got):\n%s", diff)
	}
	if q.Dropped() != 2 {
		t.Errorf("Dropped = %d, want 2", q.Dropped())
	}
}

func TestTornLine(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, buffer.Options{Now: func() time.Time { return t0 }})
	for i := 1; i <= 2; i++ {
		if err := q.Append(item(i, t0)); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if len(segs) != 1 {
		t.Fatalf("segments %v, want 1", segs)
	}
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"kind":"stats","id":"torn","bo`); err != nil { // a crash mid-append
		t.Fatal(err)
	}
	f.Close()
	q = open(t, dir, buffer.Options{Now: func() time.Time { return t0 }})
	if q.Len() != 2 {
		t.Errorf("Len = %d, want 2 (torn line cut)", q.Len())
	}
	if err := q.Append(item(3, t0)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids(1, 3), drain(t, q)); diff != "" {
		t.Errorf("replay (-want +got):\n%s", diff)
	}
}

func TestTooLarge(t *testing.T) {
	q := open(t, t.TempDir(), buffer.Options{MaxBytes: 16 * 100})
	big := item(1, t0)
	big.Body = json.RawMessage(`"` + strings.Repeat("x", 200) + `"`)
	if err := q.Append(big); !errors.Is(err, buffer.ErrTooLarge) {
		t.Fatalf("Append(big) = %v, want ErrTooLarge", err)
	}
	if q.Len() != 0 || q.Dropped() != 1 {
		t.Errorf("Len %d Dropped %d, want 0 and 1", q.Len(), q.Dropped())
	}
}
