package rocksmq_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	rocksmq "github.com/rocksmq/rocksmq/go"
	"github.com/rocksmq/rocksmq/go/internal/abitest"
)

// The "Bad input": every entry point checks its arguments and
// returns an error naming what is wrong.

// expect fails unless err is of kind and its message holds every part.
func expect(t *testing.T, what string, err, kind error, parts ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: got %v, want kind %v", what, err, kind)
		return
	}
	for _, part := range parts {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("%s: %q does not name %q", what, err.Error(), part)
		}
	}
}

func TestBadInputThroughTheGoPackage(t *testing.T) {
	store := open(t)
	_, err := store.CreateTopic("t")
	must(t, err)
	must(t, store.CreateGroup("t", "g", rocksmq.Earliest()))

	_, err = store.CreateTopic("\xff\xfe")
	expect(t, "invalid UTF-8 topic", err, rocksmq.ErrInvalidArgument, "topic is not valid UTF-8")
	_, err = store.CreateTopic("a\x00b")
	expect(t, "NUL in a topic", err, rocksmq.ErrInvalidArgument, "topic holds a NUL byte at 1")
	_, err = store.CreateTopic("")
	expect(t, "empty topic", err, rocksmq.ErrInvalidName, "topic name ``")
	_, err = store.CreateTopic("a/b")
	expect(t, "slash in a topic", err, rocksmq.ErrInvalidName, "a/b", "'/'")
	_, err = store.CreateTopic(strings.Repeat("x", 256))
	expect(t, "long topic", err, rocksmq.ErrInvalidName, "255")
	err = store.CreateGroup("t", "\xc3", rocksmq.Earliest())
	expect(t, "invalid UTF-8 group", err, rocksmq.ErrInvalidArgument, "group is not valid UTF-8")
	err = store.CreateGroup("t", "g2", rocksmq.RawPosition(9, 0))
	expect(t, "unknown position kind", err, rocksmq.ErrInvalidArgument, "from: kind 9 is not a position")
	err = store.CreateGroup("t", "g2", rocksmq.RawPosition(4, ^uint64(0)))
	if err != nil {
		// A time past 2554 is clamped by the clock's range, or refused by name.
		expect(t, "time past the clock", err, rocksmq.ErrInvalidArgument, "from: time")
	}
	_, err = store.Consumer("t", "g", rocksmq.AckMode(7))
	expect(t, "unknown ack mode", err, rocksmq.ErrInvalidArgument, "ack_mode: 7")
	_, err = store.Produce("t", []rocksmq.ProducerMessage{{Payload: []byte("x"), Properties: map[string]string{"\xff": "v"}}})
	expect(t, "invalid UTF-8 property key", err, rocksmq.ErrInvalidArgument, "messages[0].properties[0].key is not valid UTF-8")
	_, err = store.Produce("t", []rocksmq.ProducerMessage{{}, {Properties: map[string]string{"k": "\xff"}}})
	expect(t, "invalid UTF-8 property value", err, rocksmq.ErrInvalidArgument, "messages[1].properties[0].value")
	_, err = store.Produce("missing", []rocksmq.ProducerMessage{{}})
	expect(t, "missing topic", err, rocksmq.ErrTopicNotFound, "missing")
	_, err = store.Produce("t", []rocksmq.ProducerMessage{{Payload: make([]byte, 9<<20)}})
	expect(t, "message too large", err, rocksmq.ErrMessageTooLarge, "maxMessageSize")

	consumer, err := store.Consumer("t", "g", rocksmq.AckExplicit)
	must(t, err)
	_, err = store.Consumer("t", "g", rocksmq.AckExplicit)
	expect(t, "second consumer of a group", err, rocksmq.ErrGroupBusy, "`g`")
	_, err = consumer.Consume(0)
	expect(t, "max 0", err, rocksmq.ErrInvalidArgument, "max")
	_, err = consumer.Receive(context.Background(), -1)
	expect(t, "negative max", err, rocksmq.ErrInvalidArgument, "max")
	expect(t, "negative ack", consumer.Ack(-5), rocksmq.ErrInvalidArgument, "id")
	expect(t, "ack not delivered", consumer.Ack(3), rocksmq.ErrNotDelivered, "3")
	must(t, consumer.Close())
	// Use after close, and a second close (a double free through the Go
	// wrapper): errors naming the consumer, never a crash.
	expect(t, "ack after close", consumer.Ack(1), rocksmq.ErrClosed, "the consumer is closed")
	_, err = consumer.Consume(1)
	expect(t, "consume after close", err, rocksmq.ErrClosed, "consumer")
	_, err = consumer.Receive(context.Background(), 1)
	expect(t, "receive after close", err, rocksmq.ErrClosed, "consumer")
	expect(t, "seek after close", consumer.Seek(rocksmq.Earliest()), rocksmq.ErrClosed, "consumer")
	expect(t, "second close", consumer.Close(), rocksmq.ErrClosed, "consumer")

	reader, err := store.Reader("t", rocksmq.Earliest())
	must(t, err)
	_, err = reader.Read(0)
	expect(t, "read max 0", err, rocksmq.ErrInvalidArgument, "max")
	must(t, reader.Close())
	_, err = reader.Read(1)
	expect(t, "read after close", err, rocksmq.ErrClosed, "the reader is closed")
	expect(t, "second reader close", reader.Close(), rocksmq.ErrClosed, "reader")

	clock := rocksmq.NewManualClock(time.Unix(0, 0))
	expect(t, "clock backwards", clock.Advance(-time.Second), rocksmq.ErrInvalidArgument, "negative")
	must(t, clock.Close())
	expect(t, "clock after close", clock.Advance(time.Second), rocksmq.ErrClosed, "clock")
	expect(t, "second clock close", clock.Close(), rocksmq.ErrClosed, "clock")

	must(t, store.Close())
	_, err = store.CreateTopic("u")
	expect(t, "store after close", err, rocksmq.ErrClosed, "the store is closed")
	_, err = store.Consumer("t", "g", rocksmq.AckAuto)
	expect(t, "consumer of a closed store", err, rocksmq.ErrClosed, "store")
	expect(t, "second store close", store.Close(), rocksmq.ErrClosed, "store")
}

func TestBadInputThroughTheABI(t *testing.T) {
	want := map[string]string{
		"null store":                 "store is null",
		"null name with a length":    "topic: the pointer is null but the length is 5",
		"length no buffer has":       "topic: length 18446744073709551615 is larger than any buffer can be",
		"null out-pointer":           "created is null",
		"null messages with a count": "messages: the pointer is null but the count is 3",
		"null consumer out-pointer":  "out is null",
		"null consumer":              "consumer is null",
		"null reader":                "reader is null",
		"null cancel token":          "cancel is null",
		"null clock":                 "clock is null",
		"null path with a length":    "path: the pointer is null but the length is 4",
	}
	results := abitest.BadCalls(t.TempDir())
	if len(results) != len(want) {
		t.Fatalf("%d calls made, %d expected: %+v", len(results), len(want), results)
	}
	for _, r := range results {
		if r.Status != abitest.InvalidArgument {
			t.Errorf("%s: status %d (%s), want invalid argument", r.Case, r.Status, r.Message)
		}
		if r.Message != want[r.Case] {
			t.Errorf("%s: message %q, want %q", r.Case, r.Message, want[r.Case])
		}
	}
}
