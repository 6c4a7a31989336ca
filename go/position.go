package rocksmq

/*
#include "rocksmq.h"
*/
import "C"

import (
	"fmt"
	"time"
)

// Position is where a group, consumer or reader starts, or where a seek
// goes. Positions are clamped to what the topic holds.
type Position struct {
	kind  uint32
	value uint64
}

// Earliest is the first retained message.
func Earliest() Position { return Position{kind: C.RMQ_POSITION_EARLIEST} }

// Latest is the next message produced (nothing already in the topic).
func Latest() Position { return Position{kind: C.RMQ_POSITION_LATEST} }

// AtID is message id itself (inclusive).
func AtID(id UniqueID) Position { return Position{kind: C.RMQ_POSITION_ID, value: clampID(id)} }

// AfterID is the message after id (exclusive).
func AfterID(id UniqueID) Position { return Position{kind: C.RMQ_POSITION_AFTER, value: clampID(id)} }

// AtTime is the first message produced at or after t.
func AtTime(t time.Time) Position {
	ns := t.UnixNano()
	if ns < 0 {
		ns = 0
	}
	return Position{kind: C.RMQ_POSITION_TIME, value: uint64(ns)}
}

// RawPosition is a position of any kind and value, as the C ABI spells it;
// for tests of its argument checks.
func RawPosition(kind uint32, value uint64) Position { return Position{kind: kind, value: value} }

// clampID maps ids before the first (Milvus's -1 for "earliest") to 0.
func clampID(id UniqueID) uint64 {
	if id < 0 {
		return 0
	}
	return uint64(id)
}

func (p Position) c() C.rmq_position_t {
	return C.rmq_position_t{kind: C.uint32_t(p.kind), value: C.uint64_t(p.value)}
}

func (p Position) String() string {
	switch p.kind {
	case C.RMQ_POSITION_EARLIEST:
		return "earliest"
	case C.RMQ_POSITION_LATEST:
		return "latest"
	case C.RMQ_POSITION_ID:
		return fmt.Sprintf("id %d", p.value)
	case C.RMQ_POSITION_AFTER:
		return fmt.Sprintf("after %d", p.value)
	case C.RMQ_POSITION_TIME:
		return "time " + time.Unix(0, int64(p.value)).UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("position kind %d value %d", p.kind, p.value)
}
