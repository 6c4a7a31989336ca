package client

import "sync"

// ConsumerOptions configure a subscription.
type ConsumerOptions struct {
	Topic            string
	SubscriptionName string
	SubscriptionInitialPosition
	// MessageChannel, if set, is where Chan delivers.
	MessageChannel chan Message
}

// Consumer is a subscription's consumer.
type Consumer interface {
	Subscription() string
	Topic() string
	MsgMutex() chan struct{}
	Chan() <-chan Message
	Seek(UniqueID) error
	Close()
	GetLatestMsgID() (int64, error)
	CheckTopicValid(topic string) error
}

type consumer struct {
	c         *client
	topic     string
	group     string
	msgMutex  chan struct{}
	messageCh chan Message
	startOnce sync.Once
	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

func newConsumer(c *client, options ConsumerOptions, msgMutex chan struct{}) (*consumer, error) {
	switch {
	case c == nil:
		return nil, invalid("client is nil")
	case options.Topic == "":
		return nil, invalid("Topic is empty")
	case options.SubscriptionName == "":
		return nil, invalid("SubscriptionName is empty")
	}
	messageCh := options.MessageChannel
	if messageCh == nil {
		messageCh = make(chan Message, 1)
	}
	return &consumer{
		c: c, topic: options.Topic, group: options.SubscriptionName,
		msgMutex: msgMutex, messageCh: messageCh, done: make(chan struct{}),
	}, nil
}

func (c *consumer) Subscription() string    { return c.group }
func (c *consumer) Topic() string           { return c.topic }
func (c *consumer) MsgMutex() chan struct{} { return c.msgMutex }

// Chan delivers the subscription's messages, from a goroutine started on
// the first call.
func (c *consumer) Chan() <-chan Message {
	c.startOnce.Do(func() {
		c.c.wg.Add(1)
		c.wg.Add(1)
		go c.c.consume(c)
	})
	return c.messageCh
}

// Seek moves the subscription so that its next message is id, and wakes
// its delivery.
func (c *consumer) Seek(id UniqueID) error {
	if err := c.c.server.Seek(c.topic, c.group, id); err != nil {
		return err
	}
	c.c.server.Notify(c.topic, c.group)
	return nil
}

// Close stops the delivery and destroys the subscription's group, as
// Milvus's does.
func (c *consumer) Close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.wg.Wait()
		_ = c.c.server.DestroyConsumerGroup(c.topic, c.group)
	})
}

// GetLatestMsgID is the id of the topic's last message.
func (c *consumer) GetLatestMsgID() (int64, error) { return c.c.server.GetLatestMsg(c.topic) }

// CheckTopicValid fails unless topic exists.
func (c *consumer) CheckTopicValid(topic string) error { return c.c.server.CheckTopicValid(topic) }
