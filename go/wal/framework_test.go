// The checks of Milvus's walimpls conformance framework
// (pkg/streaming/walimpls/test_framework.go, NewWALImplsTestFramework),
// ported to this package's types: 3 channels in parallel, 3 terms each;
// per term 5 appends in flight with 2 scanners reading everything, then
// 10 scanners closed at once, then the StartFrom, StartAfter and Latest
// policies; read-only openings panic on Append and Truncate; Truncate after
// Append, then reopen. The framework itself runs on the walimpls adapter
// (the sub-module go/walimpls); this port keeps the checks in the package's
// own suite, which needs no Milvus module.
package wal

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	rocksmq "github.com/rocksmq/rocksmq/go"
)

type written struct {
	id    MessageID
	props map[string]string
}

func TestWALImplsFramework(t *testing.T) {
	store, err := rocksmq.OpenPath(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	opener := NewOpener(store)
	defer opener.Close()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			oneWAL(t, opener, name, 1000)
		}(fmt.Sprintf("test_%d_%d", i, time.Now().UnixNano()%1000000))
	}
	wg.Wait()
}

func oneWAL(t *testing.T, opener *Opener, pchannel string, count int) {
	ctx := context.Background()
	var all []written
	term := 1
	for ; term <= 3; term++ {
		channel := Channel{Name: pchannel, Term: int64(term), AccessMode: AccessModeRW}
		w, err := opener.Open(ctx, &OpenOption{Channel: channel})
		if err != nil {
			t.Error(err)
			return
		}
		if w.Channel() != channel {
			t.Errorf("channel %+v, want %+v", w.Channel(), channel)
		}
		all = readAndWrite(t, ctx, w, all, term, count)
		w.Close()

		channel.AccessMode = AccessModeRO
		w, err = opener.Open(ctx, &OpenOption{Channel: channel})
		if err != nil {
			t.Error(err)
			return
		}
		panics(t, "append on a read-only wal", func() { _, _ = w.Append(ctx, nil, nil) })
		panics(t, "truncate on a read-only wal", func() { _ = w.Truncate(ctx, 0) })
		w.Close()
	}
	channel := Channel{Name: pchannel, Term: int64(term), AccessMode: AccessModeRW}
	w, err := opener.Open(ctx, &OpenOption{Channel: channel})
	if err != nil {
		t.Error(err)
		return
	}
	id, err := w.Append(ctx, nil, map[string]string{})
	if err != nil {
		t.Error(err)
	}
	if err := w.Truncate(ctx, id); err != nil {
		t.Error(err)
	}
	w.Close()
	w, err = opener.Open(ctx, &OpenOption{Channel: channel})
	if err != nil {
		t.Error(err)
		return
	}
	w.Close()
}

func panics(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s does not panic", what)
		}
	}()
	f()
}

func readAndWrite(t *testing.T, ctx context.Context, w *WAL, before []written, term, count int) []written {
	var wg sync.WaitGroup
	var appended, read1, read2 []written
	wg.Add(3)
	go func() { defer wg.Done(); appended = appendAll(t, ctx, w, term, count) }()
	go func() { defer wg.Done(); read1 = readAll(t, ctx, w, "scanner1", term) }()
	go func() { defer wg.Done(); read2 = readAll(t, ctx, w, "scanner2", term) }()
	wg.Wait()
	fastClose(t, ctx, w)

	sorted(t, read1)
	sorted(t, read2)
	sort.Slice(appended, func(i, j int) bool { return appended[i].id.LT(appended[j].id) })
	all := append(before, appended...)
	sorted(t, all)
	same(t, all, read1)
	same(t, all, read2)

	from := len(all) / 2
	fromID := all[from].id
	for _, c := range []struct {
		policy DeliverPolicy
		first  int
	}{{DeliverPolicyStartFrom(fromID), from}, {DeliverPolicyStartAfter(fromID), from + 1}} {
		s, err := w.Read(ctx, ReadOption{Name: "scanner_deliver", DeliverPolicy: c.policy})
		if err != nil {
			t.Error(err)
			return all
		}
		for i := c.first; i < len(all); i++ {
			m, ok := <-s.Chan()
			if !ok || !m.ID.EQ(all[i].id) {
				t.Errorf("policy from %d: message %d is %v (open %v), want %v", c.first, i, m.ID, ok, all[i].id)
				break
			}
		}
		_ = s.Close()
	}
	s, err := w.Read(ctx, ReadOption{Name: "scanner_deliver_latest", DeliverPolicy: DeliverPolicyLatest()})
	if err != nil {
		t.Error(err)
		return all
	}
	select {
	case m := <-s.Chan():
		t.Errorf("latest should block, got %v", m.ID)
	case <-time.After(time.Second):
	}
	_ = s.Close()
	return all
}

func appendAll(t *testing.T, ctx context.Context, w *WAL, term, count int) []written {
	out := make([]written, count)
	inFlight := make(chan struct{}, 5)
	var wg sync.WaitGroup
	for i := 0; i < count-1; i++ {
		inFlight <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-inFlight }()
			props := map[string]string{"id": strconv.Itoa(i), "const": "t"}
			id, err := w.Append(ctx, []byte("insert"), props)
			if err != nil {
				t.Error(err)
			}
			out[i] = written{id: id, props: props}
		}(i)
	}
	wg.Wait()
	// The last message of a term is a "time tick" carrying the term: the
	// scanners read until it.
	props := map[string]string{"id": strconv.Itoa(count - 1), "const": "t", "term": strconv.Itoa(term)}
	id, err := w.Append(ctx, []byte("timetick"), props)
	if err != nil {
		t.Error(err)
	}
	out[count-1] = written{id: id, props: props}
	return out
}

func readAll(t *testing.T, ctx context.Context, w *WAL, name string, term int) []written {
	s, err := w.Read(ctx, ReadOption{Name: name, DeliverPolicy: DeliverPolicyAll(), ReadAheadBufferSize: 128})
	if err != nil {
		t.Error(err)
		return nil
	}
	defer s.Close()
	if s.Name() != name {
		t.Errorf("scanner name %q", s.Name())
	}
	var out []written
	for {
		m, ok := <-s.Chan()
		if !ok {
			t.Errorf("%s closed early: %v", name, s.Error())
			return out
		}
		out = append(out, written{id: m.ID, props: m.Properties})
		if string(m.Payload) == "timetick" && m.Properties["term"] == strconv.Itoa(term) {
			return out
		}
	}
}

func fastClose(t *testing.T, ctx context.Context, w *WAL) {
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := w.Read(ctx, ReadOption{Name: fmt.Sprintf("scanner-fast-close-%d", i), DeliverPolicy: DeliverPolicyAll(), ReadAheadBufferSize: 128})
			if err != nil {
				t.Error(err)
				return
			}
			_ = s.Close()
			select {
			case <-s.Done():
			default:
				t.Error("Done is closed once Close returns")
			}
		}(i)
	}
	wg.Wait()
}

func sorted(t *testing.T, messages []written) {
	for i := 1; i < len(messages); i++ {
		if !messages[i-1].id.LT(messages[i].id) {
			t.Errorf("message %d (%v) is not after %v", i, messages[i].id, messages[i-1].id)
			return
		}
	}
}

func same(t *testing.T, want, got []written) {
	if len(want) != len(got) {
		t.Errorf("read %d messages, %d written", len(got), len(want))
		return
	}
	for i := range want {
		if !want[i].id.EQ(got[i].id) || want[i].props["id"] != got[i].props["id"] || got[i].props["const"] != "t" {
			t.Errorf("message %d: read %v %v, written %v %v", i, got[i].id, got[i].props, want[i].id, want[i].props)
			return
		}
	}
}

func TestMessageIDEncoding(t *testing.T) {
	for _, id := range []MessageID{0, 1, 35, 36, 1 << 40, 1<<63 - 1} {
		back, err := UnmarshalMessageID(id.Marshal())
		if err != nil || back != id {
			t.Fatalf("%d: %v %v", id, back, err)
		}
		v, err := ParseVarint(id.VarintBytes())
		if err != nil || v != id {
			t.Fatalf("varint %d: %v %v", id, v, err)
		}
	}
	// Milvus's rmq encodes 35 as "z" and 36 as "10" (base 36).
	if MessageID(35).Marshal() != "z" || MessageID(36).Marshal() != "10" {
		t.Fatal("base 36")
	}
	// A zig-zag varint: -1 is one byte 0x01, 1 is 0x02.
	if fmt.Sprint(MessageID(-1).VarintBytes(), MessageID(1).VarintBytes()) != "[1] [2]" {
		t.Fatal("zig-zag")
	}
	if _, err := UnmarshalMessageID("-1"); err == nil {
		t.Fatal("rmq reads ids as unsigned")
	}
	if _, err := ParseVarint([]byte{0x80}); err == nil {
		t.Fatal("a truncated varint")
	}
}

func TestTruncateLetsRetentionDelete(t *testing.T) {
	clock := rocksmq.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store, err := rocksmq.Open(rocksmq.Options{Path: t.TempDir(), Clock: clock, PageSizeBytes: 1024,
		RetentionTimeMinutes: rocksmq.Ptr(1.0), RetentionSizeMB: rocksmq.Ptr[int64](-1), RetentionCheckIntervalSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	w, err := NewOpener(store).Open(ctx, &OpenOption{Channel: Channel{Name: "ch", Term: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []MessageID
	for i := 0; i < 6; i++ {
		id, err := w.Append(ctx, make([]byte, 512), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := clock.Advance(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	report, err := store.RunRetention()
	if err != nil || report.Pages() != 0 {
		t.Fatalf("nothing truncated, nothing deleted: %v %v", report.Pages(), err)
	}
	if err := w.Truncate(ctx, ids[3]); err != nil {
		t.Fatal(err)
	}
	// Truncating less later changes nothing.
	if err := w.Truncate(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	report, err = store.RunRetention()
	if err != nil || report.Messages() != 4 {
		t.Fatalf("the truncated pages go: %d messages, %v", report.Messages(), err)
	}
	s, err := w.Read(ctx, ReadOption{DeliverPolicy: DeliverPolicyAll()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m := <-s.Chan(); m.ID != ids[4] {
		t.Fatalf("first retained %v", m.ID)
	}
}

// Error, read right after Chan closed, is why the scanner ended: the
// reason is set before the channel closes (it once closed first, and a
// caller that ran at once saw nil).
func TestErrorIsSetWhenChanCloses(t *testing.T) {
	hook := func() { time.Sleep(20 * time.Millisecond) }
	scanEnding.Store(&hook)
	defer scanEnding.Store(nil)
	store, err := rocksmq.OpenPath(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	w, err := NewOpener(store).Open(ctx, &OpenOption{Channel: Channel{Name: "ch", Term: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := w.Read(ctx, ReadOption{Name: "s", DeliverPolicy: DeliverPolicyAll()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := store.DestroyTopic("ch"); err != nil {
		t.Fatal(err)
	}
	for range s.Chan() {
	}
	if err := s.Error(); !errors.Is(err, rocksmq.ErrTopicDestroyed) {
		t.Fatalf("Error after Chan closed: got %v, want topic destroyed", err)
	}
}
