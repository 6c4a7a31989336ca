// Package rocksmq links rocksmq, the embedded RocksDB-backed message log
// (a Rust reimplementation of Milvus's RocksMQ), into a Go program through
// its C ABI.
//
// A Store holds topics: ordered logs of messages (a payload and string
// properties) with per-topic ids from 1. Consumer groups keep a durable
// acknowledged position; a Consumer delivers a group's messages (explicit
// or automatic acknowledgement, seek by id or time, a channel with Chan);
// a Reader reads a topic without a group. The sub-packages give Milvus's
// shapes over it: server (the 14-method RocksMQ store), client (producers
// and consumers over a server) and wal (Milvus 2.6's walimpls).
//
// Every method is safe for concurrent use. Blocking calls take a
// context.Context; Close wakes every goroutine waiting in the handle.
// Errors are *Error values whose kind is matched with errors.Is
// (ErrTopicNotFound, ErrGroupBusy, ErrClosed, ErrDamaged, ...).
//
// Build the static library first: `sh scripts/go-lib.sh` from the
// repository (docs/go.md).
package rocksmq

/*
#include <stdlib.h>
#include "rocksmq.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// UniqueID is a message id, as Milvus names it: per topic, from 1,
// strictly increasing.
type UniqueID = int64

// ProducerMessage is a message to produce.
type ProducerMessage struct {
	Payload    []byte
	Properties map[string]string
}

// ConsumerMessage is a message read from a topic. Its Payload and
// Properties are the caller's (copied out of rocksmq).
type ConsumerMessage struct {
	MsgID      UniqueID
	Payload    []byte
	Properties map[string]string
	// Timestamp is when it was produced, by the store's clock.
	Timestamp time.Time
}

// Options configure a store. Zero (or nil) fields keep rocksmq's defaults
// (Milvus's: 64 MiB pages, 3 days and 8 GiB of retention, ...).
type Options struct {
	// Path is the store's directory; it overrides YAML's rocksmq.path.
	Path string
	// YAML is the text of a milvus.yaml (or any YAML with a rocksmq
	// section), read as the Rust library reads it; other sections are
	// ignored.
	YAML string
	// PageSizeBytes is rocksmqPageSize.
	PageSizeBytes int64
	// RetentionTimeMinutes is retentionTimeInMinutes (-1: no limit; 0
	// deletes acknowledged pages at the next pass); nil keeps the default.
	RetentionTimeMinutes *float64
	// RetentionSizeMB is retentionSizeInMB (-1: no limit); nil keeps the
	// default.
	RetentionSizeMB *int64
	// MaxMessageSizeBytes is maxMessageSize.
	MaxMessageSizeBytes int64
	// SyncWrites fsyncs the log on every produce (syncWrites).
	SyncWrites bool
	// CompressionTypes is compressionTypes (0 none, 7 zstd, one per level).
	CompressionTypes []int
	// RetentionCheckIntervalSeconds is retentionCheckInterval.
	RetentionCheckIntervalSeconds float64
	// Clock, if set, is the time the store reads instead of the system's.
	Clock *ManualClock
}

// yaml renders the options as a rocksmq section after YAML's own keys.
func (o Options) yaml() (string, error) {
	var keys []string
	add := func(key, value string) { keys = append(keys, "  "+key+": "+value) }
	if o.PageSizeBytes != 0 {
		add("rocksmqPageSize", strconv.FormatInt(o.PageSizeBytes, 10))
	}
	if o.RetentionTimeMinutes != nil {
		add("retentionTimeInMinutes", strconv.FormatFloat(*o.RetentionTimeMinutes, 'g', -1, 64))
	}
	if o.RetentionSizeMB != nil {
		add("retentionSizeInMB", strconv.FormatInt(*o.RetentionSizeMB, 10))
	}
	if o.MaxMessageSizeBytes != 0 {
		add("maxMessageSize", strconv.FormatInt(o.MaxMessageSizeBytes, 10))
	}
	if o.SyncWrites {
		add("syncWrites", "true")
	}
	if len(o.CompressionTypes) > 0 {
		types := make([]string, len(o.CompressionTypes))
		for i, t := range o.CompressionTypes {
			types[i] = strconv.Itoa(t)
		}
		add("compressionTypes", "["+strings.Join(types, ", ")+"]")
	}
	if o.RetentionCheckIntervalSeconds != 0 {
		add("retentionCheckInterval", strconv.FormatFloat(o.RetentionCheckIntervalSeconds, 'g', -1, 64))
	}
	if len(keys) == 0 {
		return o.YAML, nil
	}
	if strings.TrimSpace(o.YAML) != "" {
		return "", &Error{Op: "open", Kind: ErrInvalidArgument,
			Message: "Options: give the rocksmq keys either in YAML or as fields, not both"}
	}
	return "rocksmq:\n" + strings.Join(keys, "\n") + "\n", nil
}

// Ptr is a pointer to v, for the optional fields of Options
// (RetentionTimeMinutes: rocksmq.Ptr(0.5)).
func Ptr[T any](v T) *T { return &v }

// Store is an open rocksmq store.
type Store struct {
	// mu is held shared by every call using h, and exclusively by Close
	// while it frees h: no call ever sees a freed handle.
	mu     sync.RWMutex
	h      *C.rmq_store_t
	path   string
	closed bool
}

// Open opens (creating if needed) the store opts describe.
func Open(opts Options) (*Store, error) {
	if opts.Path == "" && strings.TrimSpace(opts.YAML) == "" {
		// rocksmq's default path is Milvus's /var/lib/milvus/rdb_data: an
		// empty Options is more likely a mistake than a wish for it.
		return nil, &Error{Op: "open", Kind: ErrInvalidArgument, Message: "Options.Path: empty, and no YAML gives rocksmq.path"}
	}
	yaml, err := opts.yaml()
	if err != nil {
		return nil, err
	}
	var clock *C.rmq_clock_t
	if opts.Clock != nil {
		clock = opts.Clock.h
	}
	var h *C.rmq_store_t
	var cerr *C.char
	status := C.rmq_store_open(bytesOf(opts.Path), C.size_t(len(opts.Path)),
		bytesOf(yaml), C.size_t(len(yaml)), clock, &h, &cerr)
	runtime.KeepAlive(opts.Clock)
	if err := failure("open", status, cerr); err != nil {
		return nil, err
	}
	return &Store{h: h, path: opts.Path}, nil
}

// OpenPath opens the store in directory path with the default options.
func OpenPath(path string) (*Store, error) { return Open(Options{Path: path}) }

// Path is the directory the store was opened with (empty if YAML gave it).
func (s *Store) Path() string { return s.path }

// use runs f with the store's handle, or fails with ErrClosed.
func (s *Store) use(op string, f func(h *C.rmq_store_t) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.h == nil {
		return closedError(op, "store")
	}
	return f(s.h)
}

// Close closes the store: every goroutine waiting in a receive of its
// consumers and readers returns ErrClosed, the log is synced, the
// directory released. Every later call fails with ErrClosed; closing a
// closed store returns ErrClosed.
func (s *Store) Close() error {
	s.mu.RLock()
	h := s.h
	if h == nil {
		s.mu.RUnlock()
		return closedError("close store", "store")
	}
	var cerr *C.char
	// Wakes the waiting receives first: they hold no lock of ours.
	err := failure("close store", C.rmq_store_close(h, &cerr), cerr)
	s.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil {
		C.rmq_store_free(s.h)
		s.h = nil
	}
	return err
}

// CreateTopic creates topic name; created is false if it existed.
func (s *Store) CreateTopic(name string) (created bool, err error) {
	err = s.use("create topic", func(h *C.rmq_store_t) error {
		var out C.bool
		var cerr *C.char
		status := C.rmq_topic_create(h, strPtr(name), C.size_t(len(name)), &out, &cerr)
		created = bool(out)
		return failure("create topic", status, cerr)
	})
	return created, err
}

// DestroyTopic destroys topic name, its messages and groups; receives
// waiting on it return ErrTopicDestroyed.
func (s *Store) DestroyTopic(name string) error {
	return s.use("destroy topic", func(h *C.rmq_store_t) error {
		var cerr *C.char
		return failure("destroy topic", C.rmq_topic_destroy(h, strPtr(name), C.size_t(len(name)), &cerr), cerr)
	})
}

// TopicExists says whether topic name exists.
func (s *Store) TopicExists(name string) (exists bool, err error) {
	err = s.use("topic exists", func(h *C.rmq_store_t) error {
		var out C.bool
		var cerr *C.char
		status := C.rmq_topic_exists(h, strPtr(name), C.size_t(len(name)), &out, &cerr)
		exists = bool(out)
		return failure("topic exists", status, cerr)
	})
	return exists, err
}

// Topics lists every topic, sorted.
func (s *Store) Topics() (topics []string, err error) {
	err = s.jsonCall("list topics", &topics, func(h *C.rmq_store_t, out **C.char, cerr **C.char) C.int32_t {
		return C.rmq_topic_list(h, out, cerr)
	})
	return topics, err
}

// LatestID is the id of the last message produced to topic (0: none).
func (s *Store) LatestID(topic string) (id UniqueID, err error) {
	err = s.use("latest id", func(h *C.rmq_store_t) error {
		var out C.uint64_t
		var cerr *C.char
		status := C.rmq_topic_latest_id(h, strPtr(topic), C.size_t(len(topic)), &out, &cerr)
		id = UniqueID(out)
		return failure("latest id", status, cerr)
	})
	return id, err
}

// Produce appends messages to topic as one atomic write and returns their
// ids (contiguous). Payloads and properties are read in place, not copied
// on the Go side; rocksmq copies them once.
func (s *Store) Produce(topic string, messages []ProducerMessage) ([]UniqueID, error) {
	first, err := s.produce(topic, messages)
	if err != nil {
		return nil, err
	}
	ids := make([]UniqueID, len(messages))
	for i := range ids {
		ids[i] = first + UniqueID(i)
	}
	return ids, nil
}

// ProduceOne appends one message to topic and returns its id. The payload
// goes to C as an argument, read in place: no array to build or pin.
func (s *Store) ProduceOne(topic string, payload []byte, properties map[string]string) (UniqueID, error) {
	// No closure on this path: one call, no allocation of Go's own.
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.h == nil {
		return 0, closedError("produce", "store")
	}
	var pinner runtime.Pinner
	defer pinner.Unpin()
	props, n := propertiesOf(properties, &pinner)
	var out C.uint64_t
	var cerr *C.char
	status := C.rmq_produce_one(s.h, strPtr(topic), C.size_t(len(topic)),
		(*C.uint8_t)(unsafe.SliceData(payload)), C.size_t(len(payload)), props, n, &out, &cerr)
	if status != C.RMQ_OK {
		return 0, failure("produce", status, cerr)
	}
	return UniqueID(out), nil
}

func (s *Store) produce(topic string, messages []ProducerMessage) (first UniqueID, err error) {
	err = s.use("produce", func(h *C.rmq_store_t) error {
		var pinner runtime.Pinner
		defer pinner.Unpin()
		ins := make([]C.rmq_message_in_t, len(messages))
		for i := range messages {
			fill(&ins[i], &messages[i], &pinner)
		}
		var in *C.rmq_message_in_t
		if len(ins) > 0 {
			in = &ins[0]
		}
		var out C.uint64_t
		var cerr *C.char
		status := C.rmq_produce(h, strPtr(topic), C.size_t(len(topic)), in, C.size_t(len(ins)), &out, &cerr)
		first = UniqueID(out)
		return failure("produce", status, cerr)
	})
	return first, err
}

// fill points in at m's payload and properties, pinned for the call: Go
// memory handed to C may hold Go pointers only if they are pinned.
func fill(in *C.rmq_message_in_t, m *ProducerMessage, pinner *runtime.Pinner) {
	if len(m.Payload) > 0 {
		data := unsafe.SliceData(m.Payload)
		pinner.Pin(data)
		in.payload = (*C.uint8_t)(unsafe.Pointer(data))
		in.payload_len = C.size_t(len(m.Payload))
	}
	in.properties, in.properties_len = propertiesOf(m.Properties, pinner)
}

// propertiesOf is properties as C's array, in Go memory, every pointer in
// it pinned for the call; nil for none.
func propertiesOf(m map[string]string, pinner *runtime.Pinner) (*C.rmq_property_t, C.size_t) {
	if len(m) == 0 {
		return nil, 0
	}
	properties := make([]C.rmq_property_t, 0, len(m))
	for key, value := range m {
		var p C.rmq_property_t
		if len(key) > 0 {
			pinner.Pin(unsafe.StringData(key))
			p.key = strPtr(key)
			p.key_len = C.size_t(len(key))
		}
		if len(value) > 0 {
			pinner.Pin(unsafe.StringData(value))
			p.value = strPtr(value)
			p.value_len = C.size_t(len(value))
		}
		properties = append(properties, p)
	}
	pinner.Pin(&properties[0])
	return &properties[0], C.size_t(len(properties))
}

// CreateGroup creates consumer group group of topic, its first delivery
// the message from designates.
func (s *Store) CreateGroup(topic, group string, from Position) error {
	return s.use("create consumer group", func(h *C.rmq_store_t) error {
		var cerr *C.char
		status := C.rmq_group_create(h, strPtr(topic), C.size_t(len(topic)),
			strPtr(group), C.size_t(len(group)), from.c(), &cerr)
		return failure("create consumer group", status, cerr)
	})
}

// DestroyGroup destroys consumer group group of topic.
func (s *Store) DestroyGroup(topic, group string) error {
	return s.use("destroy consumer group", func(h *C.rmq_store_t) error {
		var cerr *C.char
		status := C.rmq_group_destroy(h, strPtr(topic), C.size_t(len(topic)),
			strPtr(group), C.size_t(len(group)), &cerr)
		return failure("destroy consumer group", status, cerr)
	})
}

// GroupExists says whether topic has consumer group group.
func (s *Store) GroupExists(topic, group string) (exists bool, err error) {
	err = s.use("consumer group exists", func(h *C.rmq_store_t) error {
		var out C.bool
		var cerr *C.char
		status := C.rmq_group_exists(h, strPtr(topic), C.size_t(len(topic)),
			strPtr(group), C.size_t(len(group)), &out, &cerr)
		exists = bool(out)
		return failure("consumer group exists", status, cerr)
	})
	return exists, err
}

// Groups lists the consumer groups of topic, sorted.
func (s *Store) Groups(topic string) (groups []string, err error) {
	err = s.jsonCall("list consumer groups", &groups, func(h *C.rmq_store_t, out **C.char, cerr **C.char) C.int32_t {
		return C.rmq_group_list(h, strPtr(topic), C.size_t(len(topic)), out, cerr)
	})
	return groups, err
}

// SeekGroup moves the acknowledged position of group (which has no open
// consumer) so that its next delivery is the message to designates.
func (s *Store) SeekGroup(topic, group string, to Position) error {
	return s.use("seek consumer group", func(h *C.rmq_store_t) error {
		var cerr *C.char
		status := C.rmq_group_seek(h, strPtr(topic), C.size_t(len(topic)),
			strPtr(group), C.size_t(len(group)), to.c(), &cerr)
		return failure("seek consumer group", status, cerr)
	})
}

// jsonCall runs a call returning JSON and decodes it into v.
func (s *Store) jsonCall(op string, v any, call func(h *C.rmq_store_t, out **C.char, cerr **C.char) C.int32_t) error {
	return s.use(op, func(h *C.rmq_store_t) error {
		var out, cerr *C.char
		if err := failure(op, call(h, &out, &cerr), cerr); err != nil {
			return err
		}
		text := C.GoString(out)
		C.rmq_string_free(out)
		if err := json.Unmarshal([]byte(text), v); err != nil {
			return &Error{Op: op, Kind: ErrStorage, Message: fmt.Sprintf("cannot decode rocksmq's JSON: %v", err)}
		}
		return nil
	})
}

// strPtr is a string's bytes for C, without a copy (C only reads them
// during the call).
func strPtr(s string) *C.uint8_t {
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s)))
}

// bytesOf is as strPtr.
func bytesOf(s string) *C.uint8_t { return strPtr(s) }
