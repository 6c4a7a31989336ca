package rocksmq

/*
#include "rocksmq.h"
*/
import "C"

import (
	"context"
	"sync"
	"sync/atomic"
)

// AckMode is how a consumer acknowledges.
type AckMode uint32

const (
	// AckExplicit: the program calls Ack; what was delivered but not
	// acknowledged is delivered again after a restart (at-least-once).
	AckExplicit AckMode = C.RMQ_ACK_EXPLICIT
	// AckAuto: delivering a message acknowledges it, durably, before it is
	// returned (at-most-once; Milvus's behaviour).
	AckAuto AckMode = C.RMQ_ACK_AUTO
)

// chanBatch is how many messages Chan's goroutine asks for at a time.
const chanBatch = 256

// Consumer delivers the messages of one consumer group, in id order, from
// just after the group's acknowledged position. A group has one consumer
// at a time. Every method is safe for concurrent use: Ack and Seek go on
// while a Receive waits.
type Consumer struct {
	topic, group string

	// mu is held shared by every call using h, exclusively by Close while
	// it frees h.
	mu sync.RWMutex
	h  *C.rmq_consumer_t

	chanOnce  sync.Once // starts Chan's goroutine, or Close stops it from starting
	closeOnce sync.Once
	ch        chan ConsumerMessage
	done      chan struct{} // closed by Close: stops Chan's goroutine
	stopped   chan struct{} // closed when Chan's goroutine has returned (or never will start)
	chanErr   error
}

// Consumer opens the consumer of group on topic.
func (s *Store) Consumer(topic, group string, mode AckMode) (*Consumer, error) {
	var h *C.rmq_consumer_t
	err := s.use("open consumer", func(sh *C.rmq_store_t) error {
		var cerr *C.char
		status := C.rmq_consumer_open(sh, strPtr(topic), C.size_t(len(topic)),
			strPtr(group), C.size_t(len(group)), C.uint32_t(mode), &h, &cerr)
		return failure("open consumer", status, cerr)
	})
	if err != nil {
		return nil, err
	}
	return &Consumer{
		topic: topic, group: group, h: h,
		ch:      make(chan ConsumerMessage, chanBatch),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}, nil
}

// Topic is the consumer's topic.
func (c *Consumer) Topic() string { return c.topic }

// Group is the consumer's group (Milvus: Subscription).
func (c *Consumer) Group() string { return c.group }

func (c *Consumer) use(op string, f func(h *C.rmq_consumer_t) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return closedError(op, "consumer")
	}
	return f(c.h)
}

// Consume returns up to max messages readable now, without waiting.
func (c *Consumer) Consume(max int) ([]ConsumerMessage, error) {
	if max <= 0 {
		return nil, &Error{Op: "consume", Kind: ErrInvalidArgument, Message: "max: at least 1 message must be asked for"}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return nil, closedError("consume", "consumer")
	}
	var batch *C.rmq_batch_t
	var cerr *C.char
	if status := C.rmq_consumer_consume(c.h, C.size_t(max), &batch, &cerr); status != C.RMQ_OK {
		return nil, failure("consume", status, cerr)
	}
	return messagesOf(batch), nil
}

// Receive waits until at least one message is readable and returns up to
// max; it returns ctx.Err() when ctx is done first, and ErrClosed when the
// consumer or its store is closed meanwhile.
func (c *Consumer) Receive(ctx context.Context, max int) (messages []ConsumerMessage, err error) {
	err = c.use("receive", func(h *C.rmq_consumer_t) error {
		messages, err = receive(ctx, "receive", max, func(max C.size_t, timeout C.int64_t, cancel *C.rmq_cancel_t, out **C.rmq_batch_t, cerr **C.char) C.int32_t {
			return C.rmq_consumer_receive(h, max, timeout, cancel, out, cerr)
		})
		return err
	})
	return messages, err
}

// Ack acknowledges every delivered message up to id, durably.
func (c *Consumer) Ack(id UniqueID) error {
	if id < 0 {
		return &Error{Op: "ack", Kind: ErrInvalidArgument, Message: "id: negative ids are never delivered"}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return closedError("ack", "consumer")
	}
	var cerr *C.char
	if status := C.rmq_consumer_ack(c.h, C.uint64_t(id), &cerr); status != C.RMQ_OK {
		return failure("ack", status, cerr)
	}
	return nil
}

// Seek moves the consumer and its group's acknowledged position so that
// the next delivery is the message to designates (backwards too); durable.
// Messages Chan had received but not yet handed over are dropped.
func (c *Consumer) Seek(to Position) error {
	return c.use("seek", func(h *C.rmq_consumer_t) error {
		var cerr *C.char
		return failure("seek", C.rmq_consumer_seek(h, to.c(), &cerr), cerr)
	})
}

// Position is the group's acknowledged id and the last id delivered (0:
// none).
func (c *Consumer) Position() (acked, delivered UniqueID, err error) {
	err = c.use("position", func(h *C.rmq_consumer_t) error {
		var a, d C.uint64_t
		var cerr *C.char
		status := C.rmq_consumer_position(h, &a, &d, &cerr)
		acked, delivered = UniqueID(a), UniqueID(d)
		return failure("position", status, cerr)
	})
	return acked, delivered, err
}

// Chan delivers the messages as they come, from a goroutine that receives
// them; it is closed when the consumer is closed or receiving fails (Err
// says why). With AckExplicit, Ack what was handled.
func (c *Consumer) Chan() <-chan ConsumerMessage {
	c.chanOnce.Do(func() { go c.pump() })
	return c.ch
}

// Err is why Chan's channel closed: nil after Close, else the failure.
func (c *Consumer) Err() error {
	select {
	case <-c.stopped:
		return c.chanErr
	default:
		return nil
	}
}

// chanEnding, when a test sets it, runs in Chan's goroutine between the
// two signals of its end: the stopped channel and Chan's own.
var chanEnding atomic.Pointer[func()]

func (c *Consumer) pump() {
	// stopped first: Err must know why once the channel has closed.
	defer func() {
		close(c.stopped)
		if hook := chanEnding.Load(); hook != nil {
			(*hook)()
		}
		close(c.ch)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		messages, err := c.Receive(ctx, chanBatch)
		if err != nil {
			select {
			case <-c.done:
			default:
				c.chanErr = err
			}
			return
		}
		for _, m := range messages {
			select {
			case c.ch <- m:
			case <-c.done:
				return
			}
		}
	}
}

// Close closes the consumer: a waiting Receive returns ErrClosed, Chan's
// channel closes, the group is free for another consumer. Closing a
// closed consumer returns ErrClosed.
func (c *Consumer) Close() error {
	c.mu.RLock()
	h := c.h
	if h == nil {
		c.mu.RUnlock()
		return closedError("close consumer", "consumer")
	}
	c.closeOnce.Do(func() { close(c.done) })
	var cerr *C.char
	err := failure("close consumer", C.rmq_consumer_close(h, &cerr), cerr)
	c.mu.RUnlock()
	// Chan's goroutine, if it never started, never will.
	c.chanOnce.Do(func() {
		close(c.ch)
		close(c.stopped)
	})
	<-c.stopped
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h != nil {
		C.rmq_consumer_free(c.h)
		c.h = nil
	}
	return err
}
