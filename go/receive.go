package rocksmq

/*
#include "rocksmq.h"
*/
import "C"

import (
	"context"
	"time"
	"unsafe"
)

// arenaPayload is the largest payload copied into its batch's shared
// allocation: a message kept alive keeps at most a batch of these.
const arenaPayload = 4 << 10

// messagesOf copies a batch's messages into Go memory (the one copy on
// this side) and frees the batch.
func messagesOf(batch *C.rmq_batch_t) []ConsumerMessage {
	if batch == nil {
		return nil
	}
	defer C.rmq_batch_free(batch)
	n := int(batch.len)
	if n == 0 {
		return nil
	}
	views := unsafe.Slice(batch.messages, n)
	// Small payloads are copied into one allocation for the batch, each
	// capped to its own bytes; large ones each into their own, without
	// zeroing it first (append).
	arena := 0
	for i := range views {
		if views[i].payload_len <= arenaPayload {
			arena += int(views[i].payload_len)
		}
	}
	shared := make([]byte, 0, arena)
	out := make([]ConsumerMessage, n)
	for i := range views {
		v := &views[i]
		m := &out[i]
		m.MsgID = UniqueID(v.id)
		m.Timestamp = time.Unix(0, int64(v.timestamp_ns))
		size := int(v.payload_len)
		src := unsafe.Slice((*byte)(unsafe.Pointer(v.payload)), size)
		if size <= arenaPayload {
			start := len(shared)
			shared = append(shared, src...)
			m.Payload = shared[start:len(shared):len(shared)]
		} else {
			m.Payload = append([]byte(nil), src...)
		}
		if v.properties_len > 0 {
			props := unsafe.Slice(v.properties, int(v.properties_len))
			m.Properties = make(map[string]string, len(props))
			for _, p := range props {
				key := C.GoStringN((*C.char)(unsafe.Pointer(p.key)), C.int(p.key_len))
				m.Properties[key] = C.GoStringN((*C.char)(unsafe.Pointer(p.value)), C.int(p.value_len))
			}
		}
	}
	return out
}

// receiveCall is one blocking receive of the C ABI.
type receiveCall func(max C.size_t, timeoutMs C.int64_t, cancel *C.rmq_cancel_t, out **C.rmq_batch_t, cerr **C.char) C.int32_t

// receive waits for at least one message (up to max) until ctx is done,
// through call; a done ctx returns ctx.Err().
func receive(ctx context.Context, op string, max int, call receiveCall) ([]ConsumerMessage, error) {
	if max <= 0 {
		return nil, &Error{Op: op, Kind: ErrInvalidArgument, Message: "max: at least 1 message must be asked for"}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var cancel *C.rmq_cancel_t
	if ctx.Done() != nil {
		cancel = C.rmq_cancel_new()
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			C.rmq_cancel_cancel(cancel, nil)
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired
			}
			C.rmq_cancel_free(cancel)
		}()
	}
	var batch *C.rmq_batch_t
	var cerr *C.char
	status := call(C.size_t(max), -1, cancel, &batch, &cerr)
	if status == C.RMQ_CANCELLED {
		C.rmq_string_free(cerr)
		return nil, ctx.Err()
	}
	if err := failure(op, status, cerr); err != nil {
		return nil, err
	}
	return messagesOf(batch), nil
}
