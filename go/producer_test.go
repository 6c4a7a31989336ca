package rocksmq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	rocksmq "github.com/rocksmq/rocksmq/go"
)

// The pipelined producer: Send returns a ticket at once; each call is
// atomic, its ids contiguous and in the order of the producer's calls to
// the topic; errors are errors.Is-able kinds; goroutines share a producer;
// closing the producer or the store with tickets out resolves every ticket.

// call is a call sent: its messages, and its ticket.
type call struct {
	topic    string
	messages []rocksmq.ProducerMessage
	ticket   *rocksmq.Ticket
}

func callMessages(tag string, n int) []rocksmq.ProducerMessage {
	messages := make([]rocksmq.ProducerMessage, n)
	for i := range messages {
		messages[i].Payload = []byte(fmt.Sprintf("%s message %d", tag, i))
		if i%2 == 1 {
			messages[i].Properties = map[string]string{"call": tag, "i": fmt.Sprint(i)}
		}
	}
	return messages
}

// stored is every message of topic, by id.
func stored(t *testing.T, store *rocksmq.Store, topic string) map[rocksmq.UniqueID]rocksmq.ConsumerMessage {
	t.Helper()
	reader, err := store.Reader(topic, rocksmq.Earliest())
	must(t, err)
	defer reader.Close()
	all := map[rocksmq.UniqueID]rocksmq.ConsumerMessage{}
	for {
		messages, err := reader.Read(1000)
		must(t, err)
		if len(messages) == 0 {
			return all
		}
		for _, m := range messages {
			all[m.MsgID] = m
		}
	}
}

// checkStored fails unless each call's messages are at its ids, whole.
func checkStored(t *testing.T, all map[rocksmq.UniqueID]rocksmq.ConsumerMessage, ids []rocksmq.UniqueID, messages []rocksmq.ProducerMessage) {
	t.Helper()
	if len(ids) != len(messages) {
		t.Fatalf("%d ids for %d messages", len(ids), len(messages))
	}
	for i, id := range ids {
		if i > 0 && id != ids[i-1]+1 {
			t.Fatalf("ids %v are not contiguous", ids)
		}
		got, ok := all[id]
		if !ok || !bytes.Equal(got.Payload, messages[i].Payload) || len(got.Properties) != len(messages[i].Properties) {
			t.Fatalf("message %d: got %+v, sent %+v", id, got, messages[i])
		}
		for k, v := range messages[i].Properties {
			if got.Properties[k] != v {
				t.Fatalf("message %d: property %s is %q, sent %q", id, k, got.Properties[k], v)
			}
		}
	}
}

func TestProducerIDsInCallOrder(t *testing.T) {
	store := open(t)
	for _, topic := range []string{"t", "u"} {
		_, err := store.CreateTopic(topic)
		must(t, err)
	}
	// Few calls in flight: some sends write what the producer holds.
	producer, err := store.Producer(rocksmq.ProducerOptions{MaxInFlight: 5})
	must(t, err)
	defer producer.Close()
	var calls []call
	for i := 0; i < 40; i++ {
		topic := "t"
		if i%3 == 0 {
			topic = "u"
		}
		messages := callMessages(fmt.Sprint(i), 1+i%4)
		ticket, err := producer.Send(topic, messages)
		must(t, err)
		calls = append(calls, call{topic, messages, ticket})
	}
	// Waited on in reverse: the ids are those of the send order.
	ids := make([][]rocksmq.UniqueID, len(calls))
	for i := len(calls) - 1; i >= 0; i-- {
		ids[i], err = calls[i].ticket.Wait(context.Background())
		must(t, err)
	}
	for _, topic := range []string{"t", "u"} {
		all := stored(t, store, topic)
		next, count := rocksmq.UniqueID(1), 0
		for i, c := range calls {
			if c.topic != topic {
				continue
			}
			if ids[i][0] != next {
				t.Fatalf("topic %s, call %d: first id %d, want %d", topic, i, ids[i][0], next)
			}
			checkStored(t, all, ids[i], c.messages)
			next += rocksmq.UniqueID(len(c.messages))
			count += len(c.messages)
		}
		if len(all) != count {
			t.Fatalf("topic %s holds %d messages, %d were sent", topic, len(all), count)
		}
	}
	// A wait may be repeated, with the same outcome.
	again, err := calls[7].ticket.Wait(context.Background())
	must(t, err)
	if fmt.Sprint(again) != fmt.Sprint(ids[7]) {
		t.Fatalf("a second wait gave %v, the first %v", again, ids[7])
	}
}

func TestProducerErrors(t *testing.T) {
	store, err := rocksmq.Open(rocksmq.Options{Path: t.TempDir(), MaxMessageSizeBytes: 64})
	must(t, err)
	defer store.Close()
	_, err = store.CreateTopic("t")
	must(t, err)
	_, err = store.Producer(rocksmq.ProducerOptions{MaxInFlight: -1})
	expect(t, "negative MaxInFlight", err, rocksmq.ErrInvalidArgument, "MaxInFlight -1")
	producer, err := store.Producer(rocksmq.ProducerOptions{})
	must(t, err)
	first, err := producer.Send("t", callMessages("first", 1))
	must(t, err)

	_, err = producer.Send("nope", callMessages("x", 1))
	expect(t, "unknown topic", err, rocksmq.ErrTopicNotFound, "nope")
	_, err = producer.Send("t", []rocksmq.ProducerMessage{{Payload: []byte("small")}, {Payload: make([]byte, 65)}})
	expect(t, "too large", err, rocksmq.ErrMessageTooLarge)
	_, err = producer.Send("t", []rocksmq.ProducerMessage{{Payload: make([]byte, 65)}})
	expect(t, "too large, alone", err, rocksmq.ErrMessageTooLarge)
	_, err = producer.Send("t", nil)
	expect(t, "no message", err, rocksmq.ErrInvalidArgument, "messages: none")
	_, err = producer.Send("a\x00b", callMessages("x", 1))
	expect(t, "NUL in a topic", err, rocksmq.ErrInvalidArgument, "topic holds a NUL byte at 1")
	_, err = producer.Send("t", []rocksmq.ProducerMessage{{Properties: map[string]string{"k": "\xff"}}})
	expect(t, "invalid UTF-8 property", err, rocksmq.ErrInvalidArgument, "messages[0].properties[0].value is not valid UTF-8")

	// Only the good calls are stored.
	second, err := producer.Send("t", callMessages("second", 2))
	must(t, err)
	ids, err := first.Wait(context.Background())
	must(t, err)
	ids2, err := second.Wait(context.Background())
	must(t, err)
	if fmt.Sprint(ids, ids2) != "[1] [2 3]" {
		t.Fatalf("ids %v %v", ids, ids2)
	}
	if n := len(stored(t, store, "t")); n != 3 {
		t.Fatalf("%d messages stored, 3 sent", n)
	}

	// A done context fails the wait before it begins; the ticket stays.
	pending, err := producer.Send("t", callMessages("pending", 1))
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = pending.Wait(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait: %v", err)
	}

	// Closing writes what was sent; later calls fail with ErrClosed.
	must(t, producer.Close())
	expect(t, "close twice", producer.Close(), rocksmq.ErrClosed, "producer is closed")
	_, err = producer.Send("t", callMessages("late", 1))
	expect(t, "send after close", err, rocksmq.ErrClosed, "producer is closed")
	expect(t, "flush after close", producer.Flush(), rocksmq.ErrClosed, "producer is closed")
	ids, err = pending.Wait(context.Background())
	must(t, err)
	if fmt.Sprint(ids) != "[4]" {
		t.Fatalf("the call pending at close got %v", ids)
	}

	// A producer outlives its store: sends and unwritten calls fail.
	producer, err = store.Producer(rocksmq.ProducerOptions{})
	must(t, err)
	defer producer.Close()
	unwritten, err := producer.Send("t", callMessages("unwritten", 1))
	must(t, err)
	must(t, store.Close())
	_, err = producer.Send("t", callMessages("after", 1))
	expect(t, "send after the store's close", err, rocksmq.ErrClosed)
	_, err = unwritten.Wait(context.Background())
	expect(t, "wait after the store's close", err, rocksmq.ErrClosed)
	_, err = store.Producer(rocksmq.ProducerOptions{})
	expect(t, "producer of a closed store", err, rocksmq.ErrClosed, "store is closed")
}

func TestProducerSharedByGoroutines(t *testing.T) {
	const goroutines, calls = 8, 200
	store := open(t)
	_, err := store.CreateTopic("t")
	must(t, err)
	producer, err := store.Producer(rocksmq.ProducerOptions{MaxInFlight: 16})
	must(t, err)
	defer producer.Close()
	sent := make([][]call, goroutines)
	ids := make([][][]rocksmq.UniqueID, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				messages := callMessages(fmt.Sprintf("%d/%d", g, i), 1+i%3)
				ticket, err := producer.Send("t", messages)
				if err != nil {
					t.Error(err)
					return
				}
				sent[g] = append(sent[g], call{"t", messages, ticket})
				if i%7 == 6 { // some waits while the others send
					if _, err := ticket.Wait(context.Background()); err != nil {
						t.Error(err)
						return
					}
				}
			}
			for _, c := range sent[g] {
				got, err := c.ticket.Wait(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				ids[g] = append(ids[g], got)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	all := stored(t, store, "t")
	total := 0
	for g := range sent {
		last := rocksmq.UniqueID(0)
		for i, c := range sent[g] {
			if ids[g][i][0] <= last {
				t.Fatalf("goroutine %d, call %d: ids %v after %d", g, i, ids[g][i], last)
			}
			checkStored(t, all, ids[g][i], c.messages)
			last = ids[g][i][len(ids[g][i])-1]
			total += len(c.messages)
		}
	}
	if len(all) != total {
		t.Fatalf("%d messages stored, %d sent", len(all), total)
	}
}

func TestProducerStoreClosedWhileTicketsAreOut(t *testing.T) {
	const goroutines = 4
	dir := t.TempDir()
	store, err := rocksmq.OpenPath(dir)
	must(t, err)
	_, err = store.CreateTopic("t")
	must(t, err)
	producer, err := store.Producer(rocksmq.ProducerOptions{MaxInFlight: 8})
	must(t, err)
	defer producer.Close()
	results := make([][]resolved, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []*call
			for i := 0; ; i++ {
				messages := callMessages(fmt.Sprintf("%d/%d", g, i), 2)
				ticket, err := producer.Send("t", messages)
				if err != nil {
					if !errors.Is(err, rocksmq.ErrClosed) {
						t.Errorf("send: %v", err)
					}
					break
				}
				out = append(out, &call{"t", messages, ticket})
				if len(out) == 3 { // up to three tickets out at a time
					c := out[0]
					out = out[1:]
					results[g] = append(results[g], resolve(t, c))
				}
			}
			for _, c := range out {
				results[g] = append(results[g], resolve(t, c))
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	must(t, store.Close())
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a send or wait hangs after the store's close")
	}
	store, err = rocksmq.OpenPath(dir)
	must(t, err)
	defer store.Close()
	all := stored(t, store, "t")
	total := 0
	for g := range results {
		for _, r := range results[g] {
			if r.ids != nil {
				checkStored(t, all, r.ids, r.messages)
				total += len(r.ids)
			}
		}
	}
	if len(all) != total {
		t.Fatalf("%d messages stored, %d resolved with ids", len(all), total)
	}
	if total == 0 {
		t.Fatal("no call was stored before the close")
	}
}

// resolved is a call waited on: its messages, and its ids (none if it
// failed).
type resolved struct {
	messages []rocksmq.ProducerMessage
	ids      []rocksmq.UniqueID
}

// resolve waits on c: its ids, or none if it failed with ErrClosed.
func resolve(t *testing.T, c *call) resolved {
	ids, err := c.ticket.Wait(context.Background())
	if err != nil && !errors.Is(err, rocksmq.ErrClosed) {
		t.Errorf("wait: %v", err)
	}
	return resolved{c.messages, ids}
}

func TestProducerTicketsDroppedUnwaitedAreWritten(t *testing.T) {
	store := open(t)
	_, err := store.CreateTopic("t")
	must(t, err)
	producer, err := store.Producer(rocksmq.ProducerOptions{})
	must(t, err)
	for i := 0; i < 100; i++ {
		if _, err := producer.Send("t", callMessages(fmt.Sprint(i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	// The finalizers free the tickets' C side; the calls stay sent.
	runtime.GC()
	runtime.GC()
	must(t, producer.Close())
	if n := len(stored(t, store, "t")); n != 100 {
		t.Fatalf("%d messages stored, 100 sent", n)
	}
}
