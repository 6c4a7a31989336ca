package rocksmq

/*
#include "rocksmq.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
)

// ManualClock is a clock a store reads instead of the system's, moved by
// hand: tests of retention by time move it instead of sleeping.
type ManualClock struct {
	mu sync.Mutex
	h  *C.rmq_clock_t
}

// NewManualClock is a clock stopped at start. Free it with Close once
// every store using it is closed.
func NewManualClock(start time.Time) *ManualClock {
	c := &ManualClock{h: C.rmq_clock_new(C.uint64_t(start.UnixNano()))}
	runtime.SetFinalizer(c, (*ManualClock).Close)
	return c
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return closedError("advance clock", "clock")
	}
	if d < 0 {
		return &Error{Op: "advance clock", Kind: ErrInvalidArgument, Message: "d: " + d.String() + " is negative; a clock only moves forward"}
	}
	var cerr *C.char
	return failure("advance clock", C.rmq_clock_advance(c.h, C.uint64_t(d), &cerr), cerr)
}

// Close frees the clock (stores keep their own reference to it).
func (c *ManualClock) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return closedError("close clock", "clock")
	}
	C.rmq_clock_free(c.h)
	c.h = nil
	return nil
}
