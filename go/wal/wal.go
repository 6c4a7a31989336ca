// Package wal is Milvus 2.6's write-ahead-log shape (pkg/streaming/
// walimpls) over rocksmq, without Milvus's modules: open a channel by name
// and term, read-only or read-write; Append a message and get its id; Read
// with a deliver policy (all, latest, start from an id, start after one)
// into a scanner with Chan, Error, Done and Close; Truncate up to an id.
//
// A channel is a topic. Truncate acknowledges up to the id in the
// channel's truncation group, so that retention (the acked policy) may
// delete what is truncated once every other group has it too. Ids are
// rmq's: MessageID.Marshal is Milvus's rmq encoding, so that a Milvus
// switching to rocksmq reads its checkpoints.
package wal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	rocksmq "github.com/rocksmq/rocksmq/go"
)

// Name is the WAL's name, the one Milvus's rmq WAL registers.
const Name = "rocksmq"

// TruncateGroup is the consumer group whose position Truncate moves.
const TruncateGroup = "wal-truncate"

// MessageID is a message id of the WAL (rmq's: an int64).
type MessageID int64

// LT says whether id is before other.
func (id MessageID) LT(other MessageID) bool { return id < other }

// LTE says whether id is at or before other.
func (id MessageID) LTE(other MessageID) bool { return id <= other }

// EQ says whether id is other.
func (id MessageID) EQ(other MessageID) bool { return id == other }

// Marshal is rmq's encoding of the id in Milvus 2.6 (message.EncodeInt64:
// the int64 in base 36).
func (id MessageID) Marshal() string { return strconv.FormatInt(int64(id), 36) }

// String is the id in decimal.
func (id MessageID) String() string { return strconv.FormatInt(int64(id), 10) }

// UnmarshalMessageID reads Marshal's encoding (Milvus's rmq reads it as an
// unsigned base-36 number).
func UnmarshalMessageID(data string) (MessageID, error) {
	v, err := strconv.ParseUint(data, 36, 64)
	if err != nil {
		return 0, fmt.Errorf("rocksmq wal: message id %q is not an rmq id: %w", data, err)
	}
	return MessageID(v), nil
}

// VarintBytes is the id as a zig-zag varint (encoding/binary.PutVarint),
// the binary form of an int64 id in earlier streaming formats.
func (id MessageID) VarintBytes() []byte {
	b := make([]byte, 10)
	return b[:putVarint(b, int64(id))]
}

// ParseVarint reads VarintBytes' encoding; all of data must be the id.
func ParseVarint(data []byte) (MessageID, error) {
	v, n := varint(data)
	if n <= 0 || n != len(data) {
		return 0, fmt.Errorf("rocksmq wal: %d bytes are not one zig-zag varint", len(data))
	}
	return MessageID(v), nil
}

// AccessMode is how a channel is opened.
type AccessMode int

const (
	// AccessModeRW may Append and Truncate.
	AccessModeRW AccessMode = iota
	// AccessModeRO may only Read: Append and Truncate panic (walimpls'
	// contract).
	AccessModeRO
)

// Channel is a physical channel: its name, the term of its opening, and
// its access mode.
type Channel struct {
	Name       string
	Term       int64
	AccessMode AccessMode
}

// OpenOption says which channel to open.
type OpenOption struct {
	Channel Channel
}

// Opener opens channels of one store.
type Opener struct {
	store *rocksmq.Store
}

// NewOpener is an opener of store's channels.
func NewOpener(store *rocksmq.Store) *Opener { return &Opener{store: store} }

// Open opens a channel; a read-write opening creates its topic and its
// truncation group.
func (o *Opener) Open(ctx context.Context, opt *OpenOption) (*WAL, error) {
	if opt == nil {
		return nil, errors.New("rocksmq wal: open: OpenOption is nil")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &WAL{store: o.store, channel: opt.Channel}
	if opt.Channel.AccessMode == AccessModeRW {
		if _, err := o.store.CreateTopic(opt.Channel.Name); err != nil {
			return nil, err
		}
		err := o.store.CreateGroup(opt.Channel.Name, TruncateGroup, rocksmq.Earliest())
		if err != nil && !errors.Is(err, rocksmq.ErrGroupExists) {
			return nil, err
		}
	} else if exists, err := o.store.TopicExists(opt.Channel.Name); err != nil {
		return nil, err
	} else if !exists {
		return nil, &rocksmq.Error{Op: "open wal", Kind: rocksmq.ErrTopicNotFound,
			Message: fmt.Sprintf("channel `%s` was never opened read-write", opt.Channel.Name)}
	}
	return w, nil
}

// Close does nothing: the store is the caller's.
func (o *Opener) Close() {}

// WAL is one opened channel.
type WAL struct {
	store   *rocksmq.Store
	channel Channel
	mu      sync.Mutex
	closed  bool
}

// WALName is Name.
func (w *WAL) WALName() string { return Name }

// Channel is the opened channel.
func (w *WAL) Channel() Channel { return w.channel }

func (w *WAL) check(op string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return &rocksmq.Error{Op: op, Kind: rocksmq.ErrClosed, Message: "the wal is closed"}
	}
	return nil
}

// Append appends a message (payload and properties) and returns its id.
// It panics on a read-only channel, as walimpls requires.
func (w *WAL) Append(ctx context.Context, payload []byte, properties map[string]string) (MessageID, error) {
	if w.channel.AccessMode != AccessModeRW {
		panic("rocksmq wal: append on a channel opened read-only")
	}
	if err := w.check("append"); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	id, err := w.store.ProduceOne(w.channel.Name, payload, properties)
	return MessageID(id), err
}

// Truncate marks every message up to id (inclusive) as no longer needed by
// the WAL. It panics on a read-only channel.
func (w *WAL) Truncate(ctx context.Context, id MessageID) error {
	if w.channel.AccessMode != AccessModeRW {
		panic("rocksmq wal: truncate on a channel opened read-only")
	}
	if err := w.check("truncate"); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// One consumer at a time per group: concurrent truncations wait their
	// turn here rather than fail with ErrGroupBusy.
	w.mu.Lock()
	defer w.mu.Unlock()
	consumer, err := w.store.Consumer(w.channel.Name, TruncateGroup, rocksmq.AckExplicit)
	if err != nil {
		return err
	}
	defer consumer.Close()
	acked, _, err := consumer.Position()
	if err != nil || int64(id) <= acked {
		return err
	}
	return consumer.Seek(rocksmq.AfterID(int64(id)))
}

// Close closes the WAL; its scanners go on until closed.
func (w *WAL) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
