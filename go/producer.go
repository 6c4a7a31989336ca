package rocksmq

/*
#include "rocksmq.h"

// One crossing for the two calls that end a ticket.
static int32_t rmq_go_ticket_wait_free(rmq_ticket_t *ticket, uint64_t *first, uint64_t *last, char **err) {
	int32_t status = rmq_ticket_wait(ticket, first, last, err);
	rmq_ticket_free(ticket);
	return status;
}
*/
import "C"

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"unsafe"
)

// ProducerOptions configure a pipelined producer. Zero fields keep
// rocksmq's defaults.
type ProducerOptions struct {
	// MaxInFlight is how many calls the producer holds before a send
	// writes them (default 64). More means fewer, larger writes.
	MaxInFlight int
	// MaxInFlightBytes is how many message bytes the producer holds before
	// a send writes them (default 4 MiB).
	MaxInFlightBytes int
}

// Producer is a pipelined producer: Send returns a Ticket at once, without
// waiting for the write, so that one goroutine can have many calls in
// flight; the calls sent are written together, each topic's in one atomic
// write, when a ticket is waited on, at Flush, when the producer holds
// MaxInFlight calls or MaxInFlightBytes bytes, and at Close.
//
// As with Store.Produce: each call is atomic (its messages are stored all
// or none) and its ids are contiguous; the ids of one producer's calls to a
// topic follow the order of the calls; a ticket resolves after the write
// that stored its call (with SyncWrites, after the data is on disk). Calls
// of one producer written together succeed or fail together. A producer's
// calls and Store.Produce calls are ordered only across a Flush.
//
// Every method is safe for concurrent use; goroutines sharing a producer
// share its writes.
type Producer struct {
	// mu is held shared by every call using h, exclusively by Close while
	// it frees h.
	mu sync.RWMutex
	h  *C.rmq_producer_t

	// chunkMu guards chunk, where the next tickets are taken from.
	chunkMu sync.Mutex
	chunk   []Ticket
}

// ticketChunk is how many tickets are allocated together, under one
// finalizer: a finalizer per ticket would cost about a tenth of a send.
const ticketChunk = 64

// Ticket is a call sent with Producer.Send: Wait gives its ids once it is
// stored. Safe for concurrent use; Wait may be called again, with the same
// outcome.
type Ticket struct {
	mu sync.Mutex
	h  *C.rmq_ticket_t // nil once waited on
	// The C calls' out-parameters live here, in memory already allocated:
	// a Go variable whose address goes to C escapes to the heap.
	first, last C.uint64_t
	cerr        *C.char
	one         [1]UniqueID // ids of a one-message call, without allocating
	ids         []UniqueID
	err         error
	done        bool
}

// Producer opens a pipelined producer of the store. It may outlive the
// store: once the store is closed, sends fail with ErrClosed, and so do the
// waits of calls not yet written.
func (s *Store) Producer(opts ProducerOptions) (*Producer, error) {
	if opts.MaxInFlight < 0 || opts.MaxInFlightBytes < 0 {
		return nil, &Error{Op: "open producer", Kind: ErrInvalidArgument,
			Message: "ProducerOptions: MaxInFlight " + strconv.Itoa(opts.MaxInFlight) +
				" and MaxInFlightBytes " + strconv.Itoa(opts.MaxInFlightBytes) + " may not be negative"}
	}
	var h *C.rmq_producer_t
	err := s.use("open producer", func(sh *C.rmq_store_t) error {
		var cerr *C.char
		status := C.rmq_producer_new(sh, C.size_t(opts.MaxInFlight), C.size_t(opts.MaxInFlightBytes), &h, &cerr)
		return failure("open producer", status, cerr)
	})
	if err != nil {
		return nil, err
	}
	return &Producer{h: h}, nil
}

// Send sends messages (at least one) to topic as one call, without waiting
// for its write; the ticket's Wait gives its ids. The call is checked now:
// the topic must exist (ErrTopicNotFound) and every message fit
// maxMessageSize (ErrMessageTooLarge; nothing of the call is sent). The
// messages are copied once, into rocksmq, before Send returns: the caller
// may reuse them at once.
func (p *Producer) Send(topic string, messages []ProducerMessage) (*Ticket, error) {
	if len(messages) == 0 {
		return nil, &Error{Op: "send", Kind: ErrInvalidArgument, Message: "messages: none; a send takes at least one"}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.h == nil {
		return nil, closedError("send", "producer")
	}
	var pinner runtime.Pinner
	defer pinner.Unpin()
	t := p.ticket()
	var status C.int32_t
	if len(messages) == 1 {
		// No array to build: the payload goes to C as an argument.
		m := &messages[0]
		props, n := propertiesOf(m.Properties, &pinner)
		status = C.rmq_producer_send_one(p.h, strPtr(topic), C.size_t(len(topic)),
			(*C.uint8_t)(unsafe.SliceData(m.Payload)), C.size_t(len(m.Payload)), props, n, &t.h, &t.cerr)
	} else {
		ins := make([]C.rmq_message_in_t, len(messages))
		for i := range messages {
			fill(&ins[i], &messages[i], &pinner)
		}
		status = C.rmq_producer_send(p.h, strPtr(topic), C.size_t(len(topic)),
			&ins[0], C.size_t(len(ins)), &t.h, &t.cerr)
	}
	if status != C.RMQ_OK {
		err := failure("send", status, t.cerr)
		t.cerr = nil
		return nil, err
	}
	return t, nil
}

// ticket is a new ticket, taken from the producer's current chunk.
func (p *Producer) ticket() *Ticket {
	p.chunkMu.Lock()
	defer p.chunkMu.Unlock()
	if len(p.chunk) == 0 {
		chunk := new([ticketChunk]Ticket)
		// A ticket dropped unwaited still has its call written; once every
		// ticket of its chunk is unreachable, the finalizer frees their C
		// sides.
		runtime.SetFinalizer(chunk, freeTickets)
		p.chunk = chunk[:]
	}
	t := &p.chunk[0]
	p.chunk = p.chunk[1:]
	return t
}

// freeTickets frees the C side of the tickets of a chunk never waited on.
func freeTickets(chunk *[ticketChunk]Ticket) {
	for i := range chunk {
		if h := chunk[i].h; h != nil {
			C.rmq_ticket_free(h)
			chunk[i].h = nil
		}
	}
}

// Flush writes every call sent and not yet written; their tickets then
// resolve at once. Their outcomes are the tickets' to report.
func (p *Producer) Flush() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.h == nil {
		return closedError("flush", "producer")
	}
	var cerr *C.char
	return failure("flush", C.rmq_producer_flush(p.h, &cerr), cerr)
}

// Close writes what was sent (the tickets out resolve, with their ids or
// the write's error) and closes the producer: every later call fails with
// ErrClosed; closing a closed producer returns ErrClosed.
func (p *Producer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.h == nil {
		return closedError("close producer", "producer")
	}
	var cerr *C.char
	err := failure("close producer", C.rmq_producer_close(p.h, &cerr), cerr)
	C.rmq_producer_free(p.h)
	p.h = nil
	return err
}

// Wait waits until the call is stored (writing it, with every call of its
// producer sent before it, if it is not yet) and returns its ids, in the
// order of the call's messages. It fails with the write's error (none of
// the call was stored), or with ctx.Err() if ctx is done before the wait
// begins: a write once begun is not abandoned, so that its outcome is
// known (the ticket may be waited on again).
func (t *Ticket) Wait(ctx context.Context) ([]UniqueID, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return t.ids, t.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	status := C.rmq_go_ticket_wait_free(t.h, &t.first, &t.last, &t.cerr)
	t.h = nil
	t.done = true
	t.err = failure("wait", status, t.cerr)
	t.cerr = nil
	if t.err != nil {
		return nil, t.err
	}
	if t.first == t.last {
		t.one[0] = UniqueID(t.first)
		t.ids = t.one[:]
	} else {
		t.ids = make([]UniqueID, int(t.last-t.first)+1)
		for i := range t.ids {
			t.ids[i] = UniqueID(t.first) + UniqueID(i)
		}
	}
	return t.ids, nil
}
