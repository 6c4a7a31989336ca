// Package server is Milvus's RocksMQ store interface
// (pkg/mq/mqimpl/rocksmq/server) over rocksmq: the 14 methods with
// Milvus's names and types, so that Milvus's client, its 2.5 message
// streams and its 2.6 rmq WAL run on it. docs/go.md lists where the
// semantics differ from Milvus's (durable positions, seeking backwards,
// names, ids from 1, ...).
package server

import (
	"errors"
	"fmt"
	"os"
	"sync"

	rocksmq "github.com/rocksmq/rocksmq/go"
)

// UniqueID is a message id.
type UniqueID = int64

// DefaultMessageID is Milvus's id for "no message": GetLatestMsg of an
// empty topic.
const DefaultMessageID UniqueID = -1

// ProducerMessage is a message to produce. Milvus's has only Payload;
// rocksmq stores Properties beside it.
type ProducerMessage struct {
	Payload    []byte
	Properties map[string]string
}

// ConsumerMessage is a consumed message.
type ConsumerMessage struct {
	MsgID      UniqueID
	Payload    []byte
	Properties map[string]string
}

// Consumer is a registered consumer: Produce and Notify signal MsgMutex
// (without blocking) when its group has something to consume.
type Consumer struct {
	Topic     string
	GroupName string
	MsgMutex  chan struct{}
}

// RocksMQ is Milvus's store interface.
type RocksMQ interface {
	CreateTopic(topicName string) error
	DestroyTopic(topicName string) error
	CreateConsumerGroup(topicName string, groupName string) error
	DestroyConsumerGroup(topicName string, groupName string) error
	Close()

	RegisterConsumer(consumer *Consumer) error
	GetLatestMsg(topicName string) (int64, error)
	CheckTopicValid(topicName string) error

	Produce(topicName string, messages []ProducerMessage) ([]UniqueID, error)
	Consume(topicName string, groupName string, n int) ([]ConsumerMessage, error)
	Seek(topicName string, groupName string, msgID UniqueID) error
	SeekToLatest(topicName, groupName string) error
	ExistConsumerGroup(topicName string, groupName string) (bool, *Consumer, error)

	Notify(topicName, groupName string)
}

var _ RocksMQ = (*RMQ)(nil)

type groupKey struct{ topic, group string }

// RMQ is the RocksMQ over a rocksmq store.
type RMQ struct {
	store *rocksmq.Store

	mu sync.Mutex
	// consumers are the groups' consumers, acknowledging as they deliver
	// (Milvus's Consume moves the group's position), opened on first use.
	consumers map[groupKey]*rocksmq.Consumer
	// registered are the consumers RegisterConsumer gave, by topic.
	registered map[string][]*Consumer
}

// NewRocksMQ opens the store at path (Milvus: NewRocksMQ(name string)).
func NewRocksMQ(path string) (*RMQ, error) {
	return NewRocksMQWithOptions(rocksmq.Options{Path: path})
}

// NewRocksMQWithOptions opens a store with opts.
func NewRocksMQWithOptions(opts rocksmq.Options) (*RMQ, error) {
	store, err := rocksmq.Open(opts)
	if err != nil {
		return nil, err
	}
	return New(store), nil
}

// New is the RocksMQ over store, which it closes on Close.
func New(store *rocksmq.Store) *RMQ {
	return &RMQ{
		store:      store,
		consumers:  map[groupKey]*rocksmq.Consumer{},
		registered: map[string][]*Consumer{},
	}
}

// Store is the store underneath.
func (r *RMQ) Store() *rocksmq.Store { return r.store }

// Rmq is the process's RocksMQ, as Milvus's global (InitRocksMQ).
var Rmq *RMQ

var once sync.Once

// InitRocksMQ opens Rmq at path once, creating the directory; a file at
// path is an error.
func InitRocksMQ(path string) error {
	var err error
	once.Do(func() {
		info, statErr := os.Stat(path)
		switch {
		case os.IsNotExist(statErr):
			if err = os.MkdirAll(path, os.ModePerm); err != nil {
				return
			}
		case statErr != nil:
			err = statErr
			return
		case !info.IsDir():
			err = fmt.Errorf("can't create a directory because there exists a file with the same name: %s", path)
			return
		}
		Rmq, err = NewRocksMQ(path)
	})
	return err
}

// CloseRocksMQ closes Rmq if open.
func CloseRocksMQ() {
	if Rmq != nil {
		Rmq.Close()
	}
}

// CreateTopic creates topicName; creating an existing topic is not an error.
func (r *RMQ) CreateTopic(topicName string) error {
	_, err := r.store.CreateTopic(topicName)
	return err
}

// DestroyTopic destroys topicName with its groups; their registered
// consumers are forgotten.
func (r *RMQ) DestroyTopic(topicName string) error {
	r.mu.Lock()
	for key, c := range r.consumers {
		if key.topic == topicName {
			_ = c.Close()
			delete(r.consumers, key)
		}
	}
	delete(r.registered, topicName)
	r.mu.Unlock()
	return r.store.DestroyTopic(topicName)
}

// CreateConsumerGroup creates groupName of topicName at its earliest
// message (Milvus's groups start there).
func (r *RMQ) CreateConsumerGroup(topicName, groupName string) error {
	return r.store.CreateGroup(topicName, groupName, rocksmq.Earliest())
}

// DestroyConsumerGroup destroys groupName of topicName and closes its
// registered consumer's MsgMutex, as Milvus does.
func (r *RMQ) DestroyConsumerGroup(topicName, groupName string) error {
	r.mu.Lock()
	key := groupKey{topicName, groupName}
	if c, ok := r.consumers[key]; ok {
		_ = c.Close()
		delete(r.consumers, key)
	}
	list := r.registered[topicName]
	for i, c := range list {
		if c.GroupName == groupName {
			close(c.MsgMutex)
			r.registered[topicName] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	return r.store.DestroyGroup(topicName, groupName)
}

// Close closes the groups' consumers and the store.
func (r *RMQ) Close() {
	r.mu.Lock()
	for key, c := range r.consumers {
		_ = c.Close()
		delete(r.consumers, key)
	}
	r.mu.Unlock()
	_ = r.store.Close()
}

// RegisterConsumer registers consumer: Produce to its topic signals its
// MsgMutex. A second registration of a group replaces the first.
func (r *RMQ) RegisterConsumer(consumer *Consumer) error {
	if consumer == nil {
		return &rocksmq.Error{Op: "register consumer", Kind: rocksmq.ErrInvalidArgument, Message: "consumer is nil"}
	}
	if _, err := r.store.TopicExists(consumer.Topic); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.registered[consumer.Topic]
	for i, c := range list {
		if c.GroupName == consumer.GroupName {
			list[i] = consumer
			return nil
		}
	}
	r.registered[consumer.Topic] = append(list, consumer)
	return nil
}

// GetLatestMsg is the id of topicName's last message, DefaultMessageID if
// it has none.
func (r *RMQ) GetLatestMsg(topicName string) (int64, error) {
	id, err := r.store.LatestID(topicName)
	if err != nil {
		return DefaultMessageID, err
	}
	if id == 0 {
		return DefaultMessageID, nil
	}
	return id, nil
}

// CheckTopicValid fails unless topicName exists.
func (r *RMQ) CheckTopicValid(topicName string) error {
	exists, err := r.store.TopicExists(topicName)
	if err != nil {
		return err
	}
	if !exists {
		return &rocksmq.Error{Op: "check topic", Kind: rocksmq.ErrTopicNotFound,
			Message: fmt.Sprintf("topic `%s` does not exist", topicName)}
	}
	return nil
}

// Produce appends messages to topicName as one atomic write and signals
// the topic's registered consumers. A nil batch is an error, as in Milvus.
func (r *RMQ) Produce(topicName string, messages []ProducerMessage) ([]UniqueID, error) {
	if messages == nil {
		return []UniqueID{}, &rocksmq.Error{Op: "produce", Kind: rocksmq.ErrInvalidArgument, Message: "messages are empty"}
	}
	batch := make([]rocksmq.ProducerMessage, len(messages))
	for i, m := range messages {
		batch[i] = rocksmq.ProducerMessage{Payload: m.Payload, Properties: m.Properties}
	}
	ids, err := r.store.Produce(topicName, batch)
	if err != nil {
		return []UniqueID{}, err
	}
	r.notifyTopic(topicName)
	return ids, nil
}

// notifyTopic signals every registered consumer of topic.
func (r *RMQ) notifyTopic(topic string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.registered[topic] {
		signal(c.MsgMutex)
	}
}

func signal(ch chan struct{}) {
	defer func() {
		// A group destroyed meanwhile closed its channel.
		_ = recover()
	}()
	select {
	case ch <- struct{}{}:
	default:
	}
}

// consumer is groupName's consumer, opened on first use.
func (r *RMQ) consumer(topicName, groupName string) (*rocksmq.Consumer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := groupKey{topicName, groupName}
	if c, ok := r.consumers[key]; ok {
		return c, nil
	}
	c, err := r.store.Consumer(topicName, groupName, rocksmq.AckAuto)
	if err != nil {
		return nil, err
	}
	r.consumers[key] = c
	return c, nil
}

// forget drops a group's consumer after it failed with a closed, destroyed
// or missing group or topic, so that the next call opens it anew.
func (r *RMQ) forget(topicName, groupName string, c *rocksmq.Consumer, err error) {
	if !errors.Is(err, rocksmq.ErrClosed) && !errors.Is(err, rocksmq.ErrGroupNotFound) &&
		!errors.Is(err, rocksmq.ErrTopicDestroyed) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := groupKey{topicName, groupName}
	if r.consumers[key] == c {
		delete(r.consumers, key)
		_ = c.Close()
	}
}

// Consume returns up to n messages from groupName's position and moves the
// position past them (they are acknowledged).
func (r *RMQ) Consume(topicName, groupName string, n int) ([]ConsumerMessage, error) {
	c, err := r.consumer(topicName, groupName)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return []ConsumerMessage{}, nil
	}
	messages, err := c.Consume(n)
	if err != nil {
		r.forget(topicName, groupName, c, err)
		return nil, err
	}
	out := make([]ConsumerMessage, len(messages))
	for i, m := range messages {
		out[i] = ConsumerMessage{MsgID: m.MsgID, Payload: m.Payload, Properties: m.Properties}
	}
	return out, nil
}

// Seek moves groupName so that its next message is msgID (clamped to the
// retained messages), backwards or forwards.
func (r *RMQ) Seek(topicName, groupName string, msgID UniqueID) error {
	return r.seek(topicName, groupName, rocksmq.AtID(msgID))
}

// SeekToLatest moves groupName past the topic's last message.
func (r *RMQ) SeekToLatest(topicName, groupName string) error {
	return r.seek(topicName, groupName, rocksmq.Latest())
}

func (r *RMQ) seek(topicName, groupName string, to rocksmq.Position) error {
	c, err := r.consumer(topicName, groupName)
	if err != nil {
		return err
	}
	if err := c.Seek(to); err != nil {
		r.forget(topicName, groupName, c, err)
		return err
	}
	return nil
}

// ExistConsumerGroup says whether groupName exists and has a registered
// consumer, and returns that consumer (Milvus's answer).
func (r *RMQ) ExistConsumerGroup(topicName, groupName string) (bool, *Consumer, error) {
	exists, err := r.store.GroupExists(topicName, groupName)
	if err != nil || !exists {
		return false, nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.registered[topicName] {
		if c.GroupName == groupName {
			return true, c, nil
		}
	}
	return false, nil, nil
}

// Notify signals groupName's registered consumer, if any.
func (r *RMQ) Notify(topicName, groupName string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.registered[topicName] {
		if c.GroupName == groupName {
			signal(c.MsgMutex)
		}
	}
}
