package rocksmq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	rocksmq "github.com/rocksmq/rocksmq/go"
)

func open(t *testing.T) *rocksmq.Store {
	t.Helper()
	store, err := rocksmq.OpenPath(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustBe(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("got %v, want an error of kind %v", err, kind)
	}
}

func TestProduceConsumeAck(t *testing.T) {
	store := open(t)
	created, err := store.CreateTopic("events")
	must(t, err)
	if !created {
		t.Fatal("a new topic is created")
	}
	must(t, store.CreateGroup("events", "indexer", rocksmq.Earliest()))
	ids, err := store.Produce("events", []rocksmq.ProducerMessage{
		{Payload: []byte("a"), Properties: map[string]string{"collection": "books"}},
		{Payload: []byte("b")},
		{},
	})
	must(t, err)
	if fmt.Sprint(ids) != "[1 2 3]" {
		t.Fatalf("ids %v", ids)
	}
	consumer, err := store.Consumer("events", "indexer", rocksmq.AckExplicit)
	must(t, err)
	defer consumer.Close()
	messages, err := consumer.Consume(10)
	must(t, err)
	if len(messages) != 3 || string(messages[0].Payload) != "a" || messages[0].Properties["collection"] != "books" ||
		len(messages[2].Payload) != 0 || messages[2].Properties != nil {
		t.Fatalf("messages %+v", messages)
	}
	if messages[0].Timestamp.IsZero() || time.Since(messages[0].Timestamp) > time.Minute {
		t.Fatalf("timestamp %v", messages[0].Timestamp)
	}
	must(t, consumer.Ack(2))
	acked, delivered, err := consumer.Position()
	must(t, err)
	if acked != 2 || delivered != 3 {
		t.Fatalf("acked %d delivered %d", acked, delivered)
	}
	mustBe(t, consumer.Ack(4), rocksmq.ErrNotDelivered)
	latest, err := store.LatestID("events")
	must(t, err)
	if latest != 3 {
		t.Fatalf("latest %d", latest)
	}
}

func TestAcknowledgedPositionSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	store, err := rocksmq.OpenPath(dir)
	must(t, err)
	_, err = store.CreateTopic("t")
	must(t, err)
	must(t, store.CreateGroup("t", "g", rocksmq.Earliest()))
	_, err = store.Produce("t", []rocksmq.ProducerMessage{{Payload: []byte("1")}, {Payload: []byte("2")}})
	must(t, err)
	consumer, err := store.Consumer("t", "g", rocksmq.AckAuto)
	must(t, err)
	got, err := consumer.Consume(1)
	must(t, err)
	if got[0].MsgID != 1 {
		t.Fatal(got)
	}
	must(t, store.Close())
	// Closing a consumer of a closed store frees it; a second close fails.
	must(t, consumer.Close())
	mustBe(t, consumer.Close(), rocksmq.ErrClosed)

	store, err = rocksmq.OpenPath(dir)
	must(t, err)
	defer store.Close()
	consumer, err = store.Consumer("t", "g", rocksmq.AckAuto)
	must(t, err)
	defer consumer.Close()
	got, err = consumer.Consume(10)
	must(t, err)
	if len(got) != 1 || got[0].MsgID != 2 {
		t.Fatalf("after reopen: %+v", got)
	}
}

func TestReceiveWaitsAndWakes(t *testing.T) {
	store := open(t)
	_, err := store.CreateTopic("t")
	must(t, err)
	must(t, store.CreateGroup("t", "g", rocksmq.Earliest()))
	consumer, err := store.Consumer("t", "g", rocksmq.AckExplicit)
	must(t, err)
	defer consumer.Close()

	// A message wakes it.
	done := make(chan []rocksmq.ConsumerMessage)
	go func() {
		messages, err := consumer.Receive(context.Background(), 8)
		if err != nil {
			t.Error(err)
		}
		done <- messages
	}()
	time.Sleep(50 * time.Millisecond)
	_, err = store.ProduceOne("t", []byte("x"), nil)
	must(t, err)
	if got := <-done; len(got) != 1 || got[0].MsgID != 1 {
		t.Fatalf("%+v", got)
	}

	// A deadline ends it with the context's error.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = consumer.Receive(ctx, 1)
	mustBe(t, err, context.DeadlineExceeded)

	// Cancelling ends it.
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	_, err = consumer.Receive(ctx, 1)
	mustBe(t, err, context.Canceled)

	// Acknowledging goes on while a receive waits.
	go func() {
		time.Sleep(50 * time.Millisecond)
		if err := consumer.Ack(1); err != nil {
			t.Error(err)
		}
		_, _ = store.ProduceOne("t", []byte("y"), nil)
	}()
	got, err := consumer.Receive(context.Background(), 1)
	must(t, err)
	if got[0].MsgID != 2 {
		t.Fatalf("%+v", got)
	}
}

func TestCloseWakesEveryWaitingGoroutine(t *testing.T) {
	store := open(t)
	_, err := store.CreateTopic("t")
	must(t, err)
	var consumers []*rocksmq.Consumer
	var readers []*rocksmq.Reader
	for i := 0; i < 4; i++ {
		group := fmt.Sprintf("g%d", i)
		must(t, store.CreateGroup("t", group, rocksmq.Earliest()))
		c, err := store.Consumer("t", group, rocksmq.AckAuto)
		must(t, err)
		consumers = append(consumers, c)
		r, err := store.Reader("t", rocksmq.Earliest())
		must(t, err)
		readers = append(readers, r)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range consumers {
		wg.Add(3)
		go func(c *rocksmq.Consumer) {
			defer wg.Done()
			_, err := c.Receive(context.Background(), 1)
			errs <- err
		}(consumers[i])
		go func(r *rocksmq.Reader) {
			defer wg.Done()
			_, err := r.Receive(context.Background(), 1)
			errs <- err
		}(readers[i])
		go func(c *rocksmq.Consumer) {
			defer wg.Done()
			for range c.Chan() {
			}
			errs <- c.Err()
		}(consumers[i])
	}
	time.Sleep(100 * time.Millisecond)
	must(t, store.Close())
	wg.Wait()
	close(errs)
	for err := range errs {
		mustBe(t, err, rocksmq.ErrClosed)
	}
	for i := range consumers {
		must(t, consumers[i].Close())
		must(t, readers[i].Close())
	}
}

func TestChanDeliversInOrderAndStopsOnClose(t *testing.T) {
	store := open(t)
	_, err := store.CreateTopic("t")
	must(t, err)
	must(t, store.CreateGroup("t", "g", rocksmq.Earliest()))
	consumer, err := store.Consumer("t", "g", rocksmq.AckExplicit)
	must(t, err)
	const n = 1000
	go func() {
		for i := 0; i < n; i++ {
			if _, err := store.ProduceOne("t", []byte(fmt.Sprint(i)), nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	next := rocksmq.UniqueID(1)
	for m := range consumer.Chan() {
		if m.MsgID != next || string(m.Payload) != fmt.Sprint(next-1) {
			t.Fatalf("got %d %q, want %d", m.MsgID, m.Payload, next)
		}
		must(t, consumer.Ack(m.MsgID))
		if next == n {
			break
		}
		next++
	}
	must(t, consumer.Close())
	if _, open := <-consumer.Chan(); open {
		t.Fatal("Chan stays open after Close")
	}
	if consumer.Err() != nil {
		t.Fatalf("Err after Close: %v", consumer.Err())
	}
}

func TestSeekByIDAndByTime(t *testing.T) {
	clock := rocksmq.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store, err := rocksmq.Open(rocksmq.Options{Path: t.TempDir(), Clock: clock})
	must(t, err)
	defer store.Close()
	_, err = store.CreateTopic("t")
	must(t, err)
	for i := 0; i < 10; i++ {
		_, err := store.ProduceOne("t", []byte{byte(i)}, nil)
		must(t, err)
		must(t, clock.Advance(time.Minute))
	}
	must(t, store.CreateGroup("t", "g", rocksmq.Latest()))
	consumer, err := store.Consumer("t", "g", rocksmq.AckAuto)
	must(t, err)
	defer consumer.Close()
	must(t, consumer.Seek(rocksmq.AtID(4)))
	got, err := consumer.Consume(1)
	must(t, err)
	if got[0].MsgID != 4 {
		t.Fatal(got)
	}
	// Backwards, by time: message 3 was produced at 00:02.
	must(t, consumer.Seek(rocksmq.AtTime(time.Date(2026, 1, 1, 0, 2, 0, 0, time.UTC))))
	got, err = consumer.Consume(1)
	must(t, err)
	if got[0].MsgID != 3 {
		t.Fatal(got)
	}
	reader, err := store.Reader("t", rocksmq.AfterID(8))
	must(t, err)
	defer reader.Close()
	got, err = reader.Read(10)
	must(t, err)
	if len(got) != 2 || got[0].MsgID != 9 {
		t.Fatal(got)
	}
	next, err := reader.NextID()
	must(t, err)
	if next != 11 {
		t.Fatalf("next id %d", next)
	}
}

func TestRetentionAndStats(t *testing.T) {
	clock := rocksmq.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store, err := rocksmq.Open(rocksmq.Options{
		Path: t.TempDir(), Clock: clock, PageSizeBytes: 1024,
		RetentionTimeMinutes: rocksmq.Ptr(1.0), RetentionSizeMB: rocksmq.Ptr[int64](-1), RetentionCheckIntervalSeconds: 3600,
	})
	must(t, err)
	defer store.Close()
	_, err = store.CreateTopic("t")
	must(t, err)
	must(t, store.CreateGroup("t", "g", rocksmq.Earliest()))
	batch := make([]rocksmq.ProducerMessage, 8)
	for i := range batch {
		batch[i].Payload = bytes.Repeat([]byte{'x'}, 512)
	}
	_, err = store.Produce("t", batch)
	must(t, err)
	consumer, err := store.Consumer("t", "g", rocksmq.AckAuto)
	must(t, err)
	_, err = consumer.Consume(6)
	must(t, err)
	must(t, clock.Advance(2*time.Minute))
	report, err := store.RunRetention()
	must(t, err)
	if report.Pages() != 3 || report.Messages() != 6 {
		t.Fatalf("retention deleted %d pages, %d messages: only the acknowledged pages go", report.Pages(), report.Messages())
	}
	stats, err := store.TopicStats("t")
	must(t, err)
	if stats.FirstID != 7 || stats.Messages != 2 || stats.Groups[0].AckedID != 6 || stats.Groups[0].Lag != 2 {
		t.Fatalf("stats %+v", stats)
	}
	pages, err := store.Pages("t")
	must(t, err)
	if len(pages) != 1 || pages[0].FirstID != 7 {
		t.Fatalf("pages %+v", pages)
	}
	all, err := store.Stats()
	must(t, err)
	if len(all.Topics) != 1 || all.DiskBytes == 0 {
		t.Fatalf("store stats %+v", all)
	}
	_, err = store.Compact()
	must(t, err)
	must(t, consumer.Close())
}

func TestConcurrentProducers(t *testing.T) {
	store := open(t)
	_, err := store.CreateTopic("t")
	must(t, err)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if _, err := store.Produce("t", []rocksmq.ProducerMessage{{Payload: []byte("a")}, {Payload: []byte("b")}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	latest, err := store.LatestID("t")
	must(t, err)
	if latest != 8*200*2 {
		t.Fatalf("latest %d", latest)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	store, err := rocksmq.OpenPath(dir)
	must(t, err)
	defer store.Close()
	_, err = rocksmq.OpenPath(dir)
	mustBe(t, err, rocksmq.ErrLocked)
	_, err = rocksmq.Open(rocksmq.Options{Path: t.TempDir(), YAML: "rocksmq:\n  compressionTypes: [0, 42]\n"})
	mustBe(t, err, rocksmq.ErrConfig)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("compressionTypes[1] = 42")) {
		t.Fatalf("the error names the key: %v", err)
	}
	_, err = rocksmq.Open(rocksmq.Options{Path: t.TempDir(), YAML: "rocksmq:\n  path: x\n", PageSizeBytes: 1024})
	mustBe(t, err, rocksmq.ErrInvalidArgument)
}

// Err, read right after Chan's channel closed, is why it closed: the
// reason is set before the channel closes (it once closed first, and a
// reader that ran at once saw nil).
func TestErrIsSetWhenChanCloses(t *testing.T) {
	// Chan's goroutine dawdles at its end, as a busy scheduler may make it.
	defer rocksmq.SetChanEnding(func() { time.Sleep(20 * time.Millisecond) })()
	store := open(t)
	for i := 0; i < 20; i++ {
		topic := fmt.Sprintf("t%d", i)
		_, err := store.CreateTopic(topic)
		must(t, err)
		must(t, store.CreateGroup(topic, "g", rocksmq.Earliest()))
		consumer, err := store.Consumer(topic, "g", rocksmq.AckAuto)
		must(t, err)
		ch := consumer.Chan()
		must(t, store.DestroyTopic(topic))
		for range ch {
		}
		if err := consumer.Err(); !errors.Is(err, rocksmq.ErrTopicDestroyed) {
			t.Fatalf("round %d: Err after Chan closed: got %v, want topic destroyed", i, err)
		}
		_ = consumer.Close()
	}
}
