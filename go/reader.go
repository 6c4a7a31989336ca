package rocksmq

/*
#include "rocksmq.h"
*/
import "C"

import (
	"context"
	"sync"
)

// Reader reads a topic from a position, without a group: it never moves
// any group's position. Safe for concurrent use.
type Reader struct {
	topic string
	mu    sync.RWMutex
	h     *C.rmq_reader_t
}

// Reader opens a reader of topic starting at from.
func (s *Store) Reader(topic string, from Position) (*Reader, error) {
	var h *C.rmq_reader_t
	err := s.use("open reader", func(sh *C.rmq_store_t) error {
		var cerr *C.char
		status := C.rmq_reader_open(sh, strPtr(topic), C.size_t(len(topic)), from.c(), &h, &cerr)
		return failure("open reader", status, cerr)
	})
	if err != nil {
		return nil, err
	}
	return &Reader{topic: topic, h: h}, nil
}

// Topic is the reader's topic.
func (r *Reader) Topic() string { return r.topic }

func (r *Reader) use(op string, f func(h *C.rmq_reader_t) error) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.h == nil {
		return closedError(op, "reader")
	}
	return f(r.h)
}

// Read returns up to max messages readable now, without waiting.
func (r *Reader) Read(max int) (messages []ConsumerMessage, err error) {
	if max <= 0 {
		return nil, &Error{Op: "read", Kind: ErrInvalidArgument, Message: "max: at least 1 message must be asked for"}
	}
	err = r.use("read", func(h *C.rmq_reader_t) error {
		var batch *C.rmq_batch_t
		var cerr *C.char
		if err := failure("read", C.rmq_reader_read(h, C.size_t(max), &batch, &cerr), cerr); err != nil {
			return err
		}
		messages = messagesOf(batch)
		return nil
	})
	return messages, err
}

// Receive waits until at least one message is readable and returns up to
// max; ctx.Err() when ctx is done first, ErrClosed when the reader or its
// store is closed meanwhile.
func (r *Reader) Receive(ctx context.Context, max int) (messages []ConsumerMessage, err error) {
	err = r.use("receive", func(h *C.rmq_reader_t) error {
		messages, err = receive(ctx, "receive", max, func(max C.size_t, timeout C.int64_t, cancel *C.rmq_cancel_t, out **C.rmq_batch_t, cerr **C.char) C.int32_t {
			return C.rmq_reader_receive(h, max, timeout, cancel, out, cerr)
		})
		return err
	})
	return messages, err
}

// Seek moves the reader to to.
func (r *Reader) Seek(to Position) error {
	return r.use("seek", func(h *C.rmq_reader_t) error {
		var cerr *C.char
		return failure("seek", C.rmq_reader_seek(h, to.c(), &cerr), cerr)
	})
}

// NextID is the id of the next message the reader returns.
func (r *Reader) NextID() (id UniqueID, err error) {
	err = r.use("next id", func(h *C.rmq_reader_t) error {
		var out C.uint64_t
		var cerr *C.char
		status := C.rmq_reader_next_id(h, &out, &cerr)
		id = UniqueID(out)
		return failure("next id", status, cerr)
	})
	return id, err
}

// Close closes the reader: a waiting Receive returns ErrClosed. Closing a
// closed reader returns ErrClosed.
func (r *Reader) Close() error {
	r.mu.RLock()
	h := r.h
	if h == nil {
		r.mu.RUnlock()
		return closedError("close reader", "reader")
	}
	var cerr *C.char
	err := failure("close reader", C.rmq_reader_close(h, &cerr), cerr)
	r.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h != nil {
		C.rmq_reader_free(r.h)
		r.h = nil
	}
	return err
}
