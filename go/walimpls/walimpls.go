// Package walimpls implements Milvus 2.6's write-ahead-log interfaces
// (github.com/milvus-io/milvus/pkg/v2/streaming/walimpls) over rocksmq's
// wal package, as the WAL named "rocksmq" (Milvus's WAL names are a closed
// enum: a replacement takes the name of the WAL it replaces). It lives in
// its own module because it depends on Milvus's.
//
// Milvus's own rmq WAL registers the same name in its init: a Milvus build
// links one or the other (docs/go.md). This package registers nothing
// itself; Register does, for a build that leaves Milvus's rmq out.
package walimpls

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus/pkg/v2/proto/streamingpb"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/message"
	"github.com/milvus-io/milvus/pkg/v2/streaming/util/types"
	milvus "github.com/milvus-io/milvus/pkg/v2/streaming/walimpls"
	"github.com/milvus-io/milvus/pkg/v2/streaming/walimpls/registry"

	rocksmq "github.com/rocksmq/rocksmq/go"
	"github.com/rocksmq/rocksmq/go/wal"
)

// Register registers b as the builder of the rocksmq WAL and its message
// id's unmarshaler. It panics if either is registered already (Milvus's
// registry does).
func Register(b *Builder) {
	registry.RegisterBuilder(b)
	RegisterMessageID()
}

// RegisterMessageID registers the unmarshaler of rocksmq's message ids.
func RegisterMessageID() {
	message.RegisterMessageIDUnmsarshaler(message.WALNameRocksmq, UnmarshalMessageID)
}

// MessageID is an rmq message id: the int64 id, marshalled as Milvus's rmq
// marshals it (base 36), so that checkpoints stay readable.
type MessageID int64

var _ message.MessageID = MessageID(0)

// UnmarshalMessageID reads a marshalled id.
func UnmarshalMessageID(data string) (message.MessageID, error) {
	id, err := wal.UnmarshalMessageID(data)
	if err != nil {
		return nil, errors.Join(message.ErrInvalidMessageID, err)
	}
	return MessageID(id), nil
}

// WALName is rocksmq's.
func (id MessageID) WALName() message.WALName { return message.WALNameRocksmq }

// LT says whether id is before other.
func (id MessageID) LT(other message.MessageID) bool { return id < other.(MessageID) }

// LTE says whether id is at or before other.
func (id MessageID) LTE(other message.MessageID) bool { return id <= other.(MessageID) }

// EQ says whether id is other.
func (id MessageID) EQ(other message.MessageID) bool { return id == other.(MessageID) }

// Marshal is Milvus's rmq encoding.
func (id MessageID) Marshal() string { return wal.MessageID(id).Marshal() }

// IntoProto is the id as Milvus's proto carries it.
func (id MessageID) IntoProto() *commonpb.MessageID {
	return &commonpb.MessageID{Id: id.Marshal(), WALName: commonpb.WALName(id.WALName())}
}

// String is the id in decimal.
func (id MessageID) String() string { return strconv.FormatInt(int64(id), 10) }

// Builder builds openers of one store's channels.
type Builder struct {
	Store *rocksmq.Store
}

var _ milvus.OpenerBuilderImpls = (*Builder)(nil)

// Name is rocksmq's WAL name.
func (b *Builder) Name() message.WALName { return message.WALNameRocksmq }

// Build is an opener of the store's channels.
func (b *Builder) Build() (milvus.OpenerImpls, error) {
	if b.Store == nil {
		return nil, errors.New("rocksmq walimpls: Builder.Store is nil")
	}
	return &opener{o: wal.NewOpener(b.Store)}, nil
}

type opener struct{ o *wal.Opener }

func (o *opener) Open(ctx context.Context, opt *milvus.OpenOption) (milvus.WALImpls, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	mode := wal.AccessModeRW
	if opt.Channel.AccessMode == types.AccessModeRO {
		mode = wal.AccessModeRO
	}
	w, err := o.o.Open(ctx, &wal.OpenOption{Channel: wal.Channel{
		Name: opt.Channel.Name, Term: opt.Channel.Term, AccessMode: mode,
	}})
	if err != nil {
		return nil, err
	}
	return &walImpl{w: w, channel: opt.Channel}, nil
}

func (o *opener) Close() { o.o.Close() }

type walImpl struct {
	w       *wal.WAL
	channel types.PChannelInfo
}

func (w *walImpl) WALName() message.WALName    { return message.WALNameRocksmq }
func (w *walImpl) Channel() types.PChannelInfo { return w.channel }
func (w *walImpl) Close()                      { w.w.Close() }

func (w *walImpl) Append(ctx context.Context, msg message.MutableMessage) (message.MessageID, error) {
	if w.channel.AccessMode != types.AccessModeRW {
		panic("write on a wal that is not in read-write mode")
	}
	pb := msg.IntoMessageProto()
	id, err := w.w.Append(ctx, pb.Payload, pb.Properties)
	if err != nil {
		return nil, err
	}
	return MessageID(id), nil
}

func (w *walImpl) Truncate(ctx context.Context, id message.MessageID) error {
	if w.channel.AccessMode != types.AccessModeRW {
		panic("truncate on a wal that is not in read-write mode")
	}
	rid, ok := id.(MessageID)
	if !ok {
		return fmt.Errorf("rocksmq walimpls: truncate: %v is not a rocksmq message id", id)
	}
	return w.w.Truncate(ctx, wal.MessageID(rid))
}

func (w *walImpl) Read(ctx context.Context, opt milvus.ReadOption) (milvus.ScannerImpls, error) {
	policy := wal.DeliverPolicyAll()
	switch p := opt.DeliverPolicy.GetPolicy().(type) {
	case *streamingpb.DeliverPolicy_All:
	case *streamingpb.DeliverPolicy_Latest:
		policy = wal.DeliverPolicyLatest()
	case *streamingpb.DeliverPolicy_StartFrom:
		id, err := wal.UnmarshalMessageID(p.StartFrom.GetId())
		if err != nil {
			return nil, err
		}
		policy = wal.DeliverPolicyStartFrom(id)
	case *streamingpb.DeliverPolicy_StartAfter:
		id, err := wal.UnmarshalMessageID(p.StartAfter.GetId())
		if err != nil {
			return nil, err
		}
		policy = wal.DeliverPolicyStartAfter(id)
	default:
		return nil, fmt.Errorf("rocksmq walimpls: unknown deliver policy %T", p)
	}
	s, err := w.w.Read(ctx, wal.ReadOption{Name: opt.Name, ReadAheadBufferSize: opt.ReadAheadBufferSize, DeliverPolicy: policy})
	if err != nil {
		return nil, err
	}
	out := &scanner{s: s, ch: make(chan message.ImmutableMessage), stop: make(chan struct{})}
	go out.run()
	return out, nil
}

type scanner struct {
	s    *wal.Scanner
	ch   chan message.ImmutableMessage
	stop chan struct{}
	once sync.Once
}

func (s *scanner) run() {
	defer close(s.ch)
	for m := range s.s.Chan() {
		select {
		case s.ch <- message.NewImmutableMesasge(MessageID(m.ID), m.Payload, m.Properties):
		case <-s.stop:
			return
		}
	}
}

func (s *scanner) Name() string                          { return s.s.Name() }
func (s *scanner) Chan() <-chan message.ImmutableMessage { return s.ch }
func (s *scanner) Error() error                          { return s.s.Error() }
func (s *scanner) Done() <-chan struct{}                 { return s.s.Done() }

func (s *scanner) Close() error {
	s.once.Do(func() { close(s.stop) })
	return s.s.Close()
}
