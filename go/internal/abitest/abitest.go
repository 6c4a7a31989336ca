// Package abitest calls the C ABI directly with the arguments the Go
// package never passes (null handles and out-pointers, null buffers with
// lengths, lengths no buffer has, unknown kinds), for the bad-input tests:
// Go test files cannot use cgo themselves.
package abitest

/*
#cgo CFLAGS: -I${SRCDIR}/../../../capi/include
#cgo LDFLAGS: -L${SRCDIR}/../../lib -lrocksmq_capi -lstdc++ -lm -ldl -lpthread
#include <stdlib.h>
#include "rocksmq.h"
*/
import "C"

import "unsafe"

// Result is one call's status and message.
type Result struct {
	Case    string
	Status  int
	Message string
}

func result(name string, status C.int32_t, err *C.char) Result {
	r := Result{Case: name, Status: int(status)}
	if err != nil {
		r.Message = C.GoString(err)
		C.rmq_string_free(err)
	}
	return r
}

// Statuses of the ABI, for the tests' expectations.
const (
	OK              = int(C.RMQ_OK)
	InvalidArgument = int(C.RMQ_INVALID_ARGUMENT)
	InvalidName     = int(C.RMQ_INVALID_NAME)
	Closed          = int(C.RMQ_CLOSED)
)

// BadCalls opens a store in dir and makes every kind of bad call on it,
// returning what each returned.
func BadCalls(dir string) []Result {
	var out []Result
	add := func(r Result) { out = append(out, r) }
	path := C.CString(dir)
	defer C.free(unsafe.Pointer(path))
	var store *C.rmq_store_t
	var err *C.char
	if status := C.rmq_store_open((*C.uint8_t)(unsafe.Pointer(path)), C.size_t(len(dir)), nil, 0, nil, &store, &err); status != C.RMQ_OK {
		return []Result{result("open", status, err)}
	}
	defer C.rmq_store_free(store)
	topic := C.CString("t")
	defer C.free(unsafe.Pointer(topic))
	t := (*C.uint8_t)(unsafe.Pointer(topic))
	var created C.bool
	var id C.uint64_t

	err = nil
	add(result("null store", C.rmq_topic_create(nil, t, 1, &created, &err), err))
	err = nil
	add(result("null name with a length", C.rmq_topic_create(store, nil, 5, &created, &err), err))
	err = nil
	add(result("length no buffer has", C.rmq_topic_create(store, t, C.size_t(^uint(0)), &created, &err), err))
	err = nil
	add(result("null out-pointer", C.rmq_topic_create(store, t, 1, nil, &err), err))
	err = nil
	add(result("null messages with a count", C.rmq_produce(store, t, 1, nil, 3, &id, &err), err))
	err = nil
	var consumerOut *C.rmq_consumer_t
	add(result("null consumer out-pointer", C.rmq_consumer_open(store, t, 1, t, 1, C.RMQ_ACK_AUTO, nil, &err), err))
	err = nil
	add(result("null consumer", C.rmq_consumer_ack(nil, 1, &err), err))
	err = nil
	var batch *C.rmq_batch_t
	add(result("null reader", C.rmq_reader_read(nil, 1, &batch, &err), err))
	err = nil
	add(result("null cancel token", C.rmq_cancel_cancel(nil, &err), err))
	err = nil
	add(result("null clock", C.rmq_clock_advance(nil, 1, &err), err))
	err = nil
	add(result("null path with a length", C.rmq_store_open(nil, 4, nil, 0, nil, &store, &err), err))
	_ = consumerOut
	// The free functions take null as a no-op.
	C.rmq_store_free(nil)
	C.rmq_consumer_free(nil)
	C.rmq_reader_free(nil)
	C.rmq_batch_free(nil)
	C.rmq_cancel_free(nil)
	C.rmq_clock_free(nil)
	C.rmq_string_free(nil)
	return out
}
