// Milvus's own RocksMQ client tests (milvus-io/milvus pkg/v2,
// pkg/mq/mqimpl/rocksmq/client: client_impl_test.go, consumer_impl_test.go,
// producer_impl_test.go, streaming_test.go), ported: one Go test per
// Milvus test, with its name. Milvus's mock server (every call fails) is
// failingServer here; its mock client (no server) is a client without one.
// Where rocksmq differs on purpose, a comment starting "Difference:" says
// so and the test asserts rocksmq's behaviour.
package client

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	rocksmq "github.com/rocksmq/rocksmq/go"
	"github.com/rocksmq/rocksmq/go/server"
)

var names atomic.Int64

func newTopicName() string    { return fmt.Sprintf("topic_%d", names.Add(1)) }
func newConsumerName() string { return fmt.Sprintf("consumer_%d", names.Add(1)) }

func newRocksMQ(t *testing.T) *server.RMQ {
	t.Helper()
	rmq, err := server.NewRocksMQWithOptions(rocksmq.Options{Path: t.TempDir(), CompressionTypes: []int{0, 0, 0, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	return rmq
}

// failingServer is Milvus's newMockRocksMQ: every call fails.
type failingServer struct{ server.RocksMQ }

var errMock = errors.New("mock server")

func (failingServer) CreateTopic(string) error { return errMock }
func (failingServer) ExistConsumerGroup(string, string) (bool, *server.Consumer, error) {
	return false, nil, errMock
}

// seekFailing is Milvus's mock of TestClient_SubscribeError: the group
// does not exist, creating and registering succeed, SeekToLatest fails.
type seekFailing struct{ server.RocksMQ }

func (seekFailing) ExistConsumerGroup(string, string) (bool, *server.Consumer, error) {
	return false, nil, nil
}
func (seekFailing) CreateConsumerGroup(string, string) error { return nil }
func (seekFailing) RegisterConsumer(*server.Consumer) error  { return nil }
func (seekFailing) SeekToLatest(string, string) error        { return errors.New("test error") }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestClient(t *testing.T) {
	// Difference: without a server (Options.Server nil and server.Rmq not
	// initialised) NewClient fails with ErrServerNil; Milvus's returns a
	// client whose every call then fails.
	client, err := NewClient(Options{})
	if client != nil || !errors.Is(err, ErrServerNil) {
		t.Fatalf("got %v, %v", client, err)
	}
	client, err = NewClient(Options{Server: newRocksMQ(t)})
	must(t, err)
	if client == nil {
		t.Fatal("a client")
	}
}

func TestClient_CreateProducer(t *testing.T) {
	var client0 client
	producer0, err := client0.CreateProducer(ProducerOptions{})
	if producer0 != nil || err == nil {
		t.Fatal("an empty topic is refused")
	}
	client, err := NewClient(Options{Server: failingServer{}})
	must(t, err)
	producer, err := client.CreateProducer(ProducerOptions{Topic: newTopicName()})
	if producer != nil || !errors.Is(err, errMock) {
		t.Fatalf("the server's failure: %v", err)
	}
	rmq := newRocksMQ(t)
	defer rmq.Close()
	client1, err := NewClient(Options{Server: rmq})
	must(t, err)
	defer client1.Close()
	producer1, err := client1.CreateProducer(ProducerOptions{Topic: newTopicName()})
	must(t, err)
	defer producer1.Close()
}

func TestClient_Subscribe(t *testing.T) {
	client, err := NewClient(Options{Server: failingServer{}})
	must(t, err)
	consumer, err := client.Subscribe(ConsumerOptions{
		Topic: newTopicName(), SubscriptionName: newConsumerName(),
		SubscriptionInitialPosition: SubscriptionPositionEarliest,
	})
	if consumer != nil || err == nil {
		t.Fatal("the server's failure")
	}
	rmq := newRocksMQ(t)
	defer rmq.Close()
	client1, err := NewClient(Options{Server: rmq})
	must(t, err)
	defer client1.Close()
	// Difference: a subscription needs its topic (groups belong to topics
	// that exist); Milvus's Subscribe to a topic never created succeeds.
	topic, topic1 := newTopicName(), newTopicName()
	opt := ConsumerOptions{Topic: topic, SubscriptionName: newConsumerName(),
		SubscriptionInitialPosition: SubscriptionPositionEarliest}
	_, err = client1.Subscribe(opt)
	if !errors.Is(err, rocksmq.ErrTopicNotFound) {
		t.Fatalf("got %v", err)
	}
	must(t, rmq.CreateTopic(topic))
	must(t, rmq.CreateTopic(topic1))
	consumer1, err := client1.Subscribe(opt)
	must(t, err)
	consumer2, err := client1.Subscribe(opt)
	must(t, err)
	if consumer1 == nil || consumer2 == nil {
		t.Fatal("two consumers of one subscription")
	}
	opt1 := ConsumerOptions{Topic: topic1, SubscriptionName: newConsumerName(),
		SubscriptionInitialPosition: SubscriptionPositionLatest}
	consumer3, err := client1.Subscribe(opt1)
	must(t, err)
	consumer4, err := client1.Subscribe(opt1)
	must(t, err)
	if consumer3 == nil || consumer4 == nil {
		t.Fatal("two consumers of one subscription")
	}
	producer1, err := client1.CreateProducer(ProducerOptions{Topic: newTopicName()})
	must(t, err)
	if producer1 == nil {
		t.Fatal("a producer")
	}
}

func TestClient_SubscribeError(t *testing.T) {
	client, err := NewClient(Options{Server: seekFailing{}})
	must(t, err)
	consumer, err := client.Subscribe(ConsumerOptions{
		Topic: newTopicName(), SubscriptionName: newConsumerName(),
		SubscriptionInitialPosition: SubscriptionPositionLatest,
	})
	if consumer != nil || err == nil || err.Error() != "test error" {
		t.Fatalf("got %v, %v", consumer, err)
	}
}

func TestClient_SeekLatest(t *testing.T) {
	rmq := newRocksMQ(t)
	defer rmq.Close()
	client, err := NewClient(Options{Server: rmq})
	must(t, err)
	defer client.Close()
	topicName := newTopicName()
	producer, err := client.CreateProducer(ProducerOptions{Topic: topicName})
	must(t, err)
	// The producer first: Difference, as in TestClient_Subscribe.
	consumer1, err := client.Subscribe(ConsumerOptions{Topic: topicName, SubscriptionName: newConsumerName(),
		SubscriptionInitialPosition: SubscriptionPositionEarliest})
	must(t, err)
	id, err := producer.Send(&ProducerMessage{Payload: make([]byte, 10), Properties: map[string]string{}})
	must(t, err)
	msgRead, ok := <-consumer1.Chan()
	if !ok || *msgRead.ID() != (server.RmqID{MessageID: id}) {
		t.Fatalf("got %v", msgRead)
	}
	consumer1.Close()
	consumer2, err := client.Subscribe(ConsumerOptions{Topic: topicName, SubscriptionName: newConsumerName(),
		SubscriptionInitialPosition: SubscriptionPositionLatest})
	must(t, err)
	msgChan := consumer2.Chan()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for loop := true; loop; {
		select {
		case msg := <-msgChan:
			if len(msg.Payload()) != 8 {
				t.Fatalf("got the message produced before the subscription: %d bytes", len(msg.Payload()))
			}
			loop = false
		case <-ticker.C:
			_, err = producer.Send(&ProducerMessage{Payload: make([]byte, 8)})
			must(t, err)
		}
	}
	_, err = client.CreateProducer(ProducerOptions{Topic: newTopicName()})
	must(t, err)
}

func TestClient_consume(t *testing.T) {
	rmq := newRocksMQ(t)
	defer rmq.Close()
	client, err := NewClient(Options{Server: rmq})
	must(t, err)
	defer client.Close()
	topicName := newTopicName()
	producer, err := client.CreateProducer(ProducerOptions{Topic: topicName})
	must(t, err)
	consumer, err := client.Subscribe(ConsumerOptions{Topic: topicName, SubscriptionName: newConsumerName(),
		SubscriptionInitialPosition: SubscriptionPositionEarliest})
	must(t, err)
	id, err := producer.Send(&ProducerMessage{Payload: make([]byte, 10)})
	must(t, err)
	msg, ok := <-consumer.Chan()
	if !ok || msg.ID().MessageID != id {
		t.Fatalf("got %v", msg)
	}
}

func TestRocksmq_Properties(t *testing.T) {
	rmq := newRocksMQ(t)
	defer rmq.Close()
	client, err := NewClient(Options{Server: rmq})
	must(t, err)
	defer client.Close()
	topicName := newTopicName()
	producer, err := client.CreateProducer(ProducerOptions{Topic: topicName})
	must(t, err)
	consumer, err := client.Subscribe(ConsumerOptions{Topic: topicName, SubscriptionName: newConsumerName(),
		SubscriptionInitialPosition: SubscriptionPositionEarliest})
	must(t, err)
	// Milvus's payload is a marshalled TimeTickMsg; any bytes do here, the
	// store carries properties beside them.
	payload := []byte{0x0a, 0x06, 0x08, 0xb0, 0x09, 0x18, 0x64}
	for _, trace := range []string{"a", "b"} {
		_, err = producer.Send(&ProducerMessage{Payload: payload, Properties: map[string]string{"uber-trace-id": trace}})
		must(t, err)
		msg, ok := <-consumer.Chan()
		if !ok || len(msg.Properties()) != 1 || msg.Properties()["uber-trace-id"] != trace {
			t.Fatalf("got %v", msg)
		}
		if string(msg.Payload()) != string(payload) {
			t.Fatal("the payload as it was sent")
		}
	}
}

func TestConsumer_newConsumer(t *testing.T) {
	if EarliestMessageID() != -1 {
		t.Fatal(EarliestMessageID())
	}
	mockClient := &client{}
	for _, c := range []struct {
		client  *client
		options ConsumerOptions
	}{
		{nil, ConsumerOptions{Topic: newTopicName(), SubscriptionName: newConsumerName()}},
		{mockClient, ConsumerOptions{}},
		{mockClient, ConsumerOptions{Topic: newTopicName()}},
	} {
		consumer, err := newConsumer(c.client, c.options, nil)
		if consumer != nil || !errors.Is(err, ErrInvalidConfiguration) {
			t.Fatalf("got %v, %v", consumer, err)
		}
	}
	rmq := newRocksMQ(t)
	defer rmq.Close()
	cl, err := NewClient(Options{Server: rmq})
	must(t, err)
	defer cl.Close()
	consumerName := newConsumerName()
	consumer1, err := newConsumer(cl.(*client), ConsumerOptions{Topic: newTopicName(), SubscriptionName: consumerName,
		SubscriptionInitialPosition: SubscriptionPositionEarliest}, make(chan struct{}, 1))
	must(t, err)
	if consumer1.Subscription() != consumerName {
		t.Fatal(consumer1.Subscription())
	}
	// Milvus's getExistedConsumer is newConsumer with the registered
	// consumer's channel: the same checks.
	if _, err := newConsumer(cl.(*client), ConsumerOptions{Topic: ""}, nil); err == nil {
		t.Fatal("an empty topic")
	}
	if _, err := newConsumer(cl.(*client), ConsumerOptions{Topic: newTopicName()}, nil); err == nil {
		t.Fatal("an empty subscription")
	}
}

func TestConsumer_Subscription(t *testing.T) {
	// Milvus's mock client has no server: subscribing fails.
	consumer, err := (&client{}).Subscribe(ConsumerOptions{Topic: newTopicName(), SubscriptionName: newConsumerName(),
		SubscriptionInitialPosition: SubscriptionPositionEarliest})
	if consumer != nil || !errors.Is(err, ErrServerNil) {
		t.Fatalf("got %v, %v", consumer, err)
	}
}

func TestConsumer_Seek(t *testing.T) {
	rmq := newRocksMQ(t)
	defer rmq.Close()
	cl, err := NewClient(Options{Server: rmq})
	must(t, err)
	defer cl.Close()
	consumer, err := newConsumer(cl.(*client), ConsumerOptions{Topic: newTopicName(), SubscriptionName: newConsumerName(),
		SubscriptionInitialPosition: SubscriptionPositionEarliest}, make(chan struct{}, 1))
	must(t, err)
	// Neither the topic nor the group exists.
	if err := consumer.Seek(0); !errors.Is(err, rocksmq.ErrTopicNotFound) {
		t.Fatalf("got %v", err)
	}
}

func TestProducer(t *testing.T) {
	producer, err := newProducer(nil, ProducerOptions{Topic: newTopicName()})
	if producer != nil || !errors.Is(err, ErrInvalidConfiguration) {
		t.Fatal("a nil client")
	}
	producer, err = newProducer(&client{}, ProducerOptions{})
	if producer != nil || !errors.Is(err, ErrInvalidConfiguration) {
		t.Fatal("an empty topic")
	}
}

func TestProducerTopic(t *testing.T) {
	// Milvus's mock client has no server: creating a producer fails.
	producer, err := (&client{}).CreateProducer(ProducerOptions{Topic: newTopicName()})
	if producer != nil || !errors.Is(err, ErrServerNil) {
		t.Fatalf("got %v, %v", producer, err)
	}
	topicName := newTopicName()
	p, err := newProducer(&client{}, ProducerOptions{Topic: topicName})
	must(t, err)
	if p.Topic() != topicName {
		t.Fatal(p.Topic())
	}
}

func TestStreaming(t *testing.T) {
	// Difference: Milvus's client marshals a streaming message's
	// properties into its payload (and refuses a payload it cannot
	// unmarshal); rocksmq stores properties beside the payload, so
	// SendForStreamingService sends both as they are and nothing is there
	// to refuse.
	rmq := newRocksMQ(t)
	defer rmq.Close()
	cl, err := NewClient(Options{Server: rmq})
	must(t, err)
	defer cl.Close()
	producer, err := cl.CreateProducer(ProducerOptions{Topic: "topic"})
	must(t, err)
	consumer, err := cl.Subscribe(ConsumerOptions{Topic: "topic", SubscriptionName: "s",
		SubscriptionInitialPosition: SubscriptionPositionEarliest})
	must(t, err)
	_, err = producer.SendForStreamingService(&ProducerMessage{Payload: []byte("payload"), Properties: map[string]string{"key": "value"}})
	must(t, err)
	msg := <-consumer.Chan()
	if string(msg.Payload()) != "payload" || msg.Properties()["key"] != "value" {
		t.Fatalf("got %q %v", msg.Payload(), msg.Properties())
	}
}
