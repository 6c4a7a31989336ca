package rocksmq

/*
#include <stdlib.h>
#include "rocksmq.h"
*/
import "C"

import (
	"errors"
	"fmt"
)

// The kinds of failure, each matched with errors.Is: every error a call
// returns is an *Error whose Kind is one of these.
var (
	// ErrInvalidArgument: an argument is wrong (a nil or closed handle's
	// use, a name that is not UTF-8 or holds NUL, a count of 0, an unknown
	// position). The message names the argument.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidName: a topic or group name breaks the naming rule (1 to
	// 255 bytes of A-Z a-z 0-9 . _ -).
	ErrInvalidName = errors.New("invalid name")
	// ErrTopicNotFound: no topic has this name.
	ErrTopicNotFound = errors.New("topic not found")
	// ErrTopicDestroyed: the topic was destroyed while it was being read.
	ErrTopicDestroyed = errors.New("topic destroyed")
	// ErrGroupNotFound: the topic has no consumer group of this name.
	ErrGroupNotFound = errors.New("consumer group not found")
	// ErrGroupExists: the consumer group exists already.
	ErrGroupExists = errors.New("consumer group exists")
	// ErrGroupBusy: the consumer group has an open consumer (one at a time).
	ErrGroupBusy = errors.New("consumer group busy")
	// ErrNotDelivered: an acknowledgement named a message not delivered yet.
	ErrNotDelivered = errors.New("message not delivered")
	// ErrMessageTooLarge: a message is over maxMessageSize; nothing of its
	// batch was written.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrDamaged: damaged data (a damaged topic or message, corruption).
	ErrDamaged = errors.New("damaged")
	// ErrClosed: the store, consumer or reader is closed.
	ErrClosed = errors.New("closed")
	// ErrConfig: the configuration has a bad value (the message names the key).
	ErrConfig = errors.New("invalid configuration")
	// ErrLocked: another process or handle holds the store's directory.
	ErrLocked = errors.New("store locked")
	// ErrStorage: RocksDB or the operating system failed (I/O error, disk
	// full, ...), or the directory holds a store of another format.
	ErrStorage = errors.New("storage error")
	// ErrUnsupported: the engine cannot do what was asked.
	ErrUnsupported = errors.New("unsupported")
	// ErrPanic: rocksmq panicked (a defect); the handle may be used again.
	ErrPanic = errors.New("rocksmq panicked")
)

// Error is a failed call: what was being done, the kind of failure, and
// rocksmq's message naming what was wrong.
type Error struct {
	// Op is the call, e.g. "produce" or "create consumer group".
	Op string
	// Kind is one of the Err* values.
	Kind error
	// Message is rocksmq's description, naming the argument or the thing.
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("rocksmq: %s: %s", e.Op, e.Message)
}

// Unwrap returns the kind, so that errors.Is(err, ErrTopicNotFound) works.
func (e *Error) Unwrap() error { return e.Kind }

var kinds = map[C.int32_t]error{
	C.RMQ_INVALID_ARGUMENT:  ErrInvalidArgument,
	C.RMQ_INVALID_NAME:      ErrInvalidName,
	C.RMQ_TOPIC_NOT_FOUND:   ErrTopicNotFound,
	C.RMQ_TOPIC_DESTROYED:   ErrTopicDestroyed,
	C.RMQ_GROUP_NOT_FOUND:   ErrGroupNotFound,
	C.RMQ_GROUP_EXISTS:      ErrGroupExists,
	C.RMQ_GROUP_BUSY:        ErrGroupBusy,
	C.RMQ_NOT_DELIVERED:     ErrNotDelivered,
	C.RMQ_MESSAGE_TOO_LARGE: ErrMessageTooLarge,
	C.RMQ_DAMAGED:           ErrDamaged,
	C.RMQ_CLOSED:            ErrClosed,
	C.RMQ_CONFIG:            ErrConfig,
	C.RMQ_LOCKED:            ErrLocked,
	C.RMQ_STORAGE:           ErrStorage,
	C.RMQ_UNSUPPORTED:       ErrUnsupported,
	C.RMQ_PANIC:             ErrPanic,
}

// failure turns a status and its message (freed here) into an error; nil
// for RMQ_OK.
func failure(op string, status C.int32_t, message *C.char) error {
	if status == C.RMQ_OK {
		return nil
	}
	text := "no message"
	if message != nil {
		text = C.GoString(message)
		C.rmq_string_free(message)
	}
	kind, known := kinds[status]
	if !known {
		kind = ErrStorage
		text = fmt.Sprintf("unknown status %d: %s", int32(status), text)
	}
	return &Error{Op: op, Kind: kind, Message: text}
}

// closedError is the error of a call on a handle this package closed.
func closedError(op, what string) error {
	return &Error{Op: op, Kind: ErrClosed, Message: "the " + what + " is closed"}
}
