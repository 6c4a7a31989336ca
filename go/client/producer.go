package client

import "github.com/rocksmq/rocksmq/go/server"

// ProducerOptions configure a producer.
type ProducerOptions struct {
	Topic string
}

// Producer sends messages to one topic.
type Producer interface {
	Topic() string
	Send(message *ProducerMessage) (UniqueID, error)
	SendForStreamingService(message *ProducerMessage) (UniqueID, error)
	Close()
}

type producer struct {
	topic string
	c     *client
}

func newProducer(c *client, options ProducerOptions) (*producer, error) {
	switch {
	case c == nil:
		return nil, invalid("client is nil")
	case options.Topic == "":
		return nil, invalid("Topic is empty")
	}
	return &producer{topic: options.Topic, c: c}, nil
}

func (p *producer) Topic() string { return p.topic }

// Send produces one message and returns its id.
func (p *producer) Send(message *ProducerMessage) (UniqueID, error) {
	ids, err := p.c.server.Produce(p.topic, []server.ProducerMessage{{
		Payload: message.Payload, Properties: message.Properties,
	}})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// SendForStreamingService is Send: rocksmq keeps properties beside the
// payload, so the streaming service's messages need no other encoding.
func (p *producer) SendForStreamingService(message *ProducerMessage) (UniqueID, error) {
	return p.Send(message)
}

// Close does nothing: a producer holds no resource.
func (p *producer) Close() {}
