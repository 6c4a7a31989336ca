package wal

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	rocksmq "github.com/rocksmq/rocksmq/go"
)

// DeliverPolicy is where a scanner starts.
type DeliverPolicy struct {
	kind int
	id   MessageID
}

// DeliverPolicyAll starts at the first retained message.
func DeliverPolicyAll() DeliverPolicy { return DeliverPolicy{kind: 0} }

// DeliverPolicyLatest starts at the next message appended.
func DeliverPolicyLatest() DeliverPolicy { return DeliverPolicy{kind: 1} }

// DeliverPolicyStartFrom starts at id (inclusive).
func DeliverPolicyStartFrom(id MessageID) DeliverPolicy { return DeliverPolicy{kind: 2, id: id} }

// DeliverPolicyStartAfter starts after id (exclusive).
func DeliverPolicyStartAfter(id MessageID) DeliverPolicy { return DeliverPolicy{kind: 3, id: id} }

func (p DeliverPolicy) position() rocksmq.Position {
	switch p.kind {
	case 1:
		return rocksmq.Latest()
	case 2:
		return rocksmq.AtID(int64(p.id))
	case 3:
		return rocksmq.AfterID(int64(p.id))
	}
	return rocksmq.Earliest()
}

// ReadOption configure a scanner.
type ReadOption struct {
	// Name names the scanner.
	Name string
	// ReadAheadBufferSize is Chan's capacity (default 1024).
	ReadAheadBufferSize int
	DeliverPolicy       DeliverPolicy
}

// Message is a message a scanner delivers.
type Message struct {
	ID         MessageID
	Payload    []byte
	Properties map[string]string
	Timestamp  time.Time
}

// Scanner delivers a channel's messages from its policy's position.
type Scanner struct {
	name   string
	reader *rocksmq.Reader
	ch     chan Message
	done   chan struct{}
	cancel context.CancelFunc
	once   sync.Once
	err    error
}

// Read starts a scanner.
func (w *WAL) Read(ctx context.Context, opt ReadOption) (*Scanner, error) {
	if err := w.check("read"); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	reader, err := w.store.Reader(w.channel.Name, opt.DeliverPolicy.position())
	if err != nil {
		return nil, err
	}
	size := opt.ReadAheadBufferSize
	if size <= 0 {
		size = 1024
	}
	scanCtx, cancel := context.WithCancel(context.Background())
	s := &Scanner{
		name: opt.Name, reader: reader, cancel: cancel,
		ch: make(chan Message, size), done: make(chan struct{}),
	}
	go s.run(scanCtx, size)
	return s, nil
}

// scanEnding, when a test sets it, runs in the scanner's goroutine
// between the two signals of its end: Done and Chan.
var scanEnding atomic.Pointer[func()]

func (s *Scanner) run(ctx context.Context, batch int) {
	// done first: Error must know why once the channel has closed.
	defer func() {
		close(s.done)
		if hook := scanEnding.Load(); hook != nil {
			(*hook)()
		}
		close(s.ch)
	}()
	for {
		messages, err := s.reader.Receive(ctx, batch)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				s.err = err
			}
			return
		}
		for _, m := range messages {
			select {
			case s.ch <- Message{ID: MessageID(m.MsgID), Payload: m.Payload, Properties: m.Properties, Timestamp: m.Timestamp}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// Name is the scanner's name.
func (s *Scanner) Name() string { return s.name }

// Chan delivers the messages; it closes when the scanner ends.
func (s *Scanner) Chan() <-chan Message { return s.ch }

// Done is closed when the scanner has ended.
func (s *Scanner) Done() <-chan struct{} { return s.done }

// Error is why the scanner ended (nil before it ended or after Close).
func (s *Scanner) Error() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close stops the scanner and waits for it.
func (s *Scanner) Close() error {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		_ = s.reader.Close()
	})
	return nil
}
