// Package client is Milvus's RocksMQ client (pkg/mq/mqimpl/rocksmq/client)
// over any server.RocksMQ: producers that Send, and consumers whose Chan
// delivers what the server's Consume returns, woken by the server's
// MsgMutex signal. As in Milvus, closing a consumer destroys its group.
package client

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rocksmq/rocksmq/go/server"
)

// UniqueID is a message id.
type UniqueID = server.UniqueID

// RocksMQ is the server interface the client runs on.
type RocksMQ = server.RocksMQ

// EarliestMessageID is Milvus's id before every message.
func EarliestMessageID() UniqueID { return -1 }

// SubscriptionInitialPosition is where a new subscription starts.
type SubscriptionInitialPosition int

const (
	// SubscriptionPositionLatest: after the topic's last message.
	SubscriptionPositionLatest SubscriptionInitialPosition = iota
	// SubscriptionPositionEarliest: at the first retained message.
	SubscriptionPositionEarliest
	// SubscriptionPositionUnknown: where the group is (a seek follows).
	SubscriptionPositionUnknown
)

// ErrServerNil is the error of a client without a server.
var ErrServerNil = errors.New("rocksmq client: Options.Server is nil and server.Rmq is not initialised")

// ErrInvalidConfiguration is the kind of the error of a missing option or
// client (Milvus's InvalidConfiguration result).
var ErrInvalidConfiguration = errors.New("rocksmq client: invalid configuration")

// invalid is an ErrInvalidConfiguration saying what is missing.
func invalid(what string) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfiguration, what)
}

// Options configure a client.
type Options struct {
	// Server is the store; nil means server.Rmq.
	Server RocksMQ
}

// Message is a delivered message (Milvus's common.Message).
type Message interface {
	Topic() string
	Properties() map[string]string
	Payload() []byte
	ID() *server.RmqID
}

// RmqMessage is the Message the client delivers.
type RmqMessage struct {
	msgID      UniqueID
	topic      string
	payload    []byte
	properties map[string]string
}

// Topic is the message's topic.
func (m *RmqMessage) Topic() string { return m.topic }

// Properties are the message's properties.
func (m *RmqMessage) Properties() map[string]string { return m.properties }

// Payload is the message's payload.
func (m *RmqMessage) Payload() []byte { return m.payload }

// ID is the message's id.
func (m *RmqMessage) ID() *server.RmqID { return &server.RmqID{MessageID: m.msgID} }

// ProducerMessage is a message to send.
type ProducerMessage struct {
	Payload    []byte
	Properties map[string]string
}

// Client creates producers and consumers on a server.
type Client interface {
	CreateProducer(options ProducerOptions) (Producer, error)
	Subscribe(options ConsumerOptions) (Consumer, error)
	Close()
}

type client struct {
	server    RocksMQ
	wg        sync.WaitGroup
	closeCh   chan struct{}
	closeOnce sync.Once
}

// NewClient is a client of options.Server (server.Rmq if nil).
func NewClient(options Options) (Client, error) {
	if options.Server == nil {
		if server.Rmq == nil {
			return nil, ErrServerNil
		}
		options.Server = server.Rmq
	}
	return &client{server: options.Server, closeCh: make(chan struct{})}, nil
}

// CreateProducer creates the topic (if needed) and a producer of it.
func (c *client) CreateProducer(options ProducerOptions) (Producer, error) {
	p, err := newProducer(c, options)
	if err != nil {
		return nil, err
	}
	if c.server == nil {
		return nil, ErrServerNil
	}
	if err := c.server.CreateTopic(options.Topic); err != nil {
		return nil, err
	}
	return p, nil
}

// Subscribe creates (or joins) the subscription's group, registers the
// consumer, and moves to the latest message if asked.
func (c *client) Subscribe(options ConsumerOptions) (Consumer, error) {
	if _, err := newConsumer(c, options, nil); err != nil {
		return nil, err
	}
	if c.server == nil {
		return nil, ErrServerNil
	}
	exists, registered, err := c.server.ExistConsumerGroup(options.Topic, options.SubscriptionName)
	if err != nil {
		return nil, err
	}
	var cons *consumer
	if exists {
		cons, _ = newConsumer(c, options, registered.MsgMutex)
	} else {
		cons, _ = newConsumer(c, options, make(chan struct{}, 1))
		if err := c.server.CreateConsumerGroup(options.Topic, options.SubscriptionName); err != nil {
			return nil, err
		}
		if err := c.server.RegisterConsumer(&server.Consumer{
			Topic: options.Topic, GroupName: options.SubscriptionName, MsgMutex: cons.msgMutex,
		}); err != nil {
			return nil, err
		}
	}
	if options.SubscriptionInitialPosition == SubscriptionPositionLatest {
		if err := c.server.SeekToLatest(options.Topic, options.SubscriptionName); err != nil {
			return nil, err
		}
	}
	return cons, nil
}

// Close stops every consumer's delivery.
func (c *client) Close() {
	c.closeOnce.Do(func() {
		close(c.closeCh)
		c.wg.Wait()
	})
}

// minimalConsume is the least a delivery asks the server for.
const minimalConsume = 16

// consume delivers cons's messages to its channel until it or the client
// is closed: what Consume returns, then a wait for MsgMutex (or 100 ms, as
// Milvus's does, for a signal lost to a full channel).
func (c *client) consume(cons *consumer) {
	defer c.wg.Done()
	defer cons.wg.Done()
	var pending []server.ConsumerMessage
	for {
		if len(pending) == 0 {
			n := cap(cons.messageCh) - len(cons.messageCh)
			if n < minimalConsume {
				n = minimalConsume
			}
			pending, _ = c.server.Consume(cons.topic, cons.group, n)
		}
		var out chan<- Message
		var next Message
		var signal <-chan struct{}
		var timer <-chan time.Time
		if len(pending) > 0 {
			out = cons.messageCh
			m := pending[0]
			next = &RmqMessage{msgID: m.MsgID, topic: cons.topic, payload: m.Payload, properties: m.Properties}
		} else {
			signal = cons.msgMutex
			timer = time.After(100 * time.Millisecond)
		}
		select {
		case <-cons.done:
			return
		case <-c.closeCh:
			return
		case out <- next:
			pending = pending[1:]
		case _, ok := <-signal:
			if !ok {
				return
			}
		case <-timer:
		}
	}
}
