package rocksmq

/*
#include "rocksmq.h"
*/
import "C"

import "time"

// StoreStats are the statistics of a store (`rocksmq stats --json`).
type StoreStats struct {
	Topics        []TopicStats `json:"topics"`
	DiskBytes     uint64       `json:"disk_bytes"`
	MemtableBytes uint64       `json:"memtable_bytes"`
}

// TopicStats are the statistics of one topic.
type TopicStats struct {
	Name            string       `json:"name"`
	Messages        uint64       `json:"messages"`
	Bytes           uint64       `json:"bytes"`
	Pages           uint64       `json:"pages"`
	FirstID         UniqueID     `json:"first_id"`
	LastID          UniqueID     `json:"last_id"`
	DiskBytes       uint64       `json:"disk_bytes"`
	Groups          []GroupStats `json:"groups"`
	DeletedPages    uint64       `json:"deleted_pages"`
	DeletedMessages uint64       `json:"deleted_messages"`
	DeletedBytes    uint64       `json:"deleted_bytes"`
}

// GroupStats are the statistics of one consumer group.
type GroupStats struct {
	Name     string   `json:"name"`
	AckedID  UniqueID `json:"acked_id"`
	Lag      uint64   `json:"lag"`
	LagBytes uint64   `json:"lag_bytes"`
}

// PageInfo is one page of a topic, the unit of retention.
type PageInfo struct {
	FirstID UniqueID `json:"first_id"`
	LastID  UniqueID `json:"last_id"`
	Count   uint64   `json:"count"`
	Bytes   uint64   `json:"bytes"`
	Closed  bool     `json:"closed"`
}

// RetentionReport is what a retention pass deleted.
type RetentionReport struct {
	Topics []struct {
		Name     string   `json:"name"`
		Pages    uint64   `json:"pages"`
		Messages uint64   `json:"messages"`
		Bytes    uint64   `json:"bytes"`
		FirstID  UniqueID `json:"first_id"`
	} `json:"topics"`
	Failed []struct {
		Name  string `json:"name"`
		Error string `json:"error"`
	} `json:"failed"`
	DiskBytesBefore uint64 `json:"disk_bytes_before"`
	DiskBytesAfter  uint64 `json:"disk_bytes_after"`
}

// Pages is the pages deleted from every topic.
func (r RetentionReport) Pages() (pages uint64) {
	for _, t := range r.Topics {
		pages += t.Pages
	}
	return pages
}

// Messages is the messages deleted from every topic.
func (r RetentionReport) Messages() (messages uint64) {
	for _, t := range r.Topics {
		messages += t.Messages
	}
	return messages
}

// Stats are the statistics of every topic.
func (s *Store) Stats() (stats StoreStats, err error) {
	err = s.jsonCall("stats", &stats, func(h *C.rmq_store_t, out, cerr **C.char) C.int32_t {
		return C.rmq_store_stats(h, out, cerr)
	})
	return stats, err
}

// TopicStats are the statistics of topic.
func (s *Store) TopicStats(topic string) (stats TopicStats, err error) {
	err = s.jsonCall("topic stats", &stats, func(h *C.rmq_store_t, out, cerr **C.char) C.int32_t {
		return C.rmq_topic_stats(h, strPtr(topic), C.size_t(len(topic)), out, cerr)
	})
	return stats, err
}

// Pages are the retained pages of topic, oldest first.
func (s *Store) Pages(topic string) (pages []PageInfo, err error) {
	err = s.jsonCall("pages", &pages, func(h *C.rmq_store_t, out, cerr **C.char) C.int32_t {
		return C.rmq_topic_pages(h, strPtr(topic), C.size_t(len(topic)), out, cerr)
	})
	return pages, err
}

// RunRetention runs a retention pass now, as the background task does
// every retentionCheckInterval.
func (s *Store) RunRetention() (report RetentionReport, err error) {
	err = s.jsonCall("run retention", &report, func(h *C.rmq_store_t, out, cerr **C.char) C.int32_t {
		return C.rmq_store_run_retention(h, out, cerr)
	})
	return report, err
}

// Compact compacts the whole store now, as the background task does every
// compactionInterval; it returns how long it took.
func (s *Store) Compact() (took time.Duration, err error) {
	start := time.Now()
	var report map[string]any
	err = s.jsonCall("compact", &report, func(h *C.rmq_store_t, out, cerr **C.char) C.int32_t {
		return C.rmq_store_compact(h, out, cerr)
	})
	return time.Since(start), err
}
