package rocksmq_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	rocksmq "github.com/rocksmq/rocksmq/go"
)

// The Go side of the benchmarks that scripts/bench-go.sh runs beside the
// same workloads from Rust (capi/benches/go_peer.rs): produce one message
// per call, produce in batches of 100, consume in batches of 100 with an
// acknowledgement per batch, at 128 B, 1 KiB, 64 KiB and 1 MiB, and produce
// one message per call through the pipelined producer with 64 calls in
// flight at 128 B and 1 KiB, on a store with the default configuration.
// One op is one message.

var benchSizes = []int{128, 1 << 10, 64 << 10, 1 << 20}

const benchBatch = 100

// benchInFlight is how many calls the pipelined benchmark keeps in flight
// (its producer's MaxInFlight).
const benchInFlight = 64

// benchPipelinedSizes are the sizes of the pipelined benchmark: issue 22's
// goal for one message per call (5× Milvus's 190,000/s) is about small
// messages.
var benchPipelinedSizes = []int{128, 1 << 10}

func sizeLabel(size int) string {
	switch {
	case size >= 1<<20:
		return fmt.Sprintf("%dMiB", size>>20)
	case size >= 1<<10:
		return fmt.Sprintf("%dKiB", size>>10)
	}
	return fmt.Sprintf("%dB", size)
}

func benchStore(b *testing.B) *rocksmq.Store {
	b.Helper()
	store, err := rocksmq.OpenPath(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.CreateTopic("bench"); err != nil {
		b.Fatal(err)
	}
	return store
}

// benchPool is how many messages the consume benchmark produces before it
// reads them (again and again if it needs more): about 64 MiB.
func benchPool(size int) int {
	return min(max((64<<20)/size, benchBatch), 100000)
}

func BenchmarkGo(b *testing.B) {
	for _, size := range benchSizes {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = 0x5a
		}
		b.Run("produce_one/"+sizeLabel(size), func(b *testing.B) {
			store := benchStore(b)
			defer store.Close()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := store.ProduceOne("bench", payload, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("produce_batch/"+sizeLabel(size), func(b *testing.B) {
			store := benchStore(b)
			defer store.Close()
			batch := make([]rocksmq.ProducerMessage, benchBatch)
			for i := range batch {
				batch[i].Payload = payload
			}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i += benchBatch {
				if _, err := store.Produce("bench", batch[:min(benchBatch, b.N-i)]); err != nil {
					b.Fatal(err)
				}
			}
		})
		if slices.Contains(benchPipelinedSizes, size) {
			b.Run("produce_pipelined/"+sizeLabel(size), func(b *testing.B) {
				benchPipelined(b, payload)
			})
		}
		b.Run("consume_ack/"+sizeLabel(size), func(b *testing.B) {
			store := benchStore(b)
			defer store.Close()
			pool := min(b.N, benchPool(size))
			batch := make([]rocksmq.ProducerMessage, benchBatch)
			for i := range batch {
				batch[i].Payload = payload
			}
			for i := 0; i < pool; i += benchBatch {
				if _, err := store.Produce("bench", batch[:min(benchBatch, pool-i)]); err != nil {
					b.Fatal(err)
				}
			}
			if err := store.CreateGroup("bench", "g", rocksmq.Earliest()); err != nil {
				b.Fatal(err)
			}
			consumer, err := store.Consumer("bench", "g", rocksmq.AckExplicit)
			if err != nil {
				b.Fatal(err)
			}
			defer consumer.Close()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for read := 0; read < b.N; {
				messages, err := consumer.Consume(min(benchBatch, b.N-read))
				if err != nil {
					b.Fatal(err)
				}
				if len(messages) == 0 {
					if err := consumer.Seek(rocksmq.Earliest()); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if err := consumer.Ack(messages[len(messages)-1].MsgID); err != nil {
					b.Fatal(err)
				}
				read += len(messages)
			}
		})
	}
}

// benchPipelined produces one message per Send through a producer holding
// benchInFlight calls: benchInFlight tickets are out at a time, and the
// oldest is waited on before the next send (its wait writes every call
// sent before it, in one write).
func benchPipelined(b *testing.B, payload []byte) {
	store := benchStore(b)
	defer store.Close()
	producer, err := store.Producer(rocksmq.ProducerOptions{MaxInFlight: benchInFlight})
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()
	ctx := context.Background()
	tickets := make([]*rocksmq.Ticket, benchInFlight)
	message := []rocksmq.ProducerMessage{{Payload: payload}}
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		slot := i % benchInFlight
		if t := tickets[slot]; t != nil {
			if _, err := t.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if tickets[slot], err = producer.Send("bench", message); err != nil {
			b.Fatal(err)
		}
	}
	for _, t := range tickets {
		if t != nil {
			if _, err := t.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkMilvusThroughput is Milvus's TestRocksmq_Throughout as a
// benchmark, with the calls its server shape makes: "message_<i>"
// payloads, one per Produce call; Consume(1) per call on a consumer that
// acknowledges as it delivers (Milvus's Consume).
func BenchmarkMilvusThroughput(b *testing.B) {
	for _, op := range []string{"produce", "consume"} {
		b.Run(op, func(b *testing.B) {
			store := benchStore(b)
			defer store.Close()
			payloads := make([][]byte, 1000)
			for i := range payloads {
				payloads[i] = []byte(fmt.Sprintf("message_%d", i))
			}
			if op == "consume" {
				pool := min(b.N, 100000)
				for i := 0; i < pool; i++ {
					if _, err := store.ProduceOne("bench", payloads[i%len(payloads)], nil); err != nil {
						b.Fatal(err)
					}
				}
				if err := store.CreateGroup("bench", "g", rocksmq.Earliest()); err != nil {
					b.Fatal(err)
				}
			}
			var consumer *rocksmq.Consumer
			if op == "consume" {
				var err error
				if consumer, err = store.Consumer("bench", "g", rocksmq.AckAuto); err != nil {
					b.Fatal(err)
				}
				defer consumer.Close()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if op == "produce" {
					if _, err := store.Produce("bench", []rocksmq.ProducerMessage{{Payload: payloads[i%len(payloads)]}}); err != nil {
						b.Fatal(err)
					}
					continue
				}
				messages, err := consumer.Consume(1)
				if err != nil {
					b.Fatal(err)
				}
				if len(messages) == 0 {
					if err := consumer.Seek(rocksmq.Earliest()); err != nil {
						b.Fatal(err)
					}
					i--
				}
			}
		})
	}
}

// BenchmarkCallOverhead is the fixed cost of a call through the Go package
// and the C ABI: LatestID does a lookup of the topic and nothing else.
func BenchmarkCallOverhead(b *testing.B) {
	store := benchStore(b)
	defer store.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := store.LatestID("bench"); err != nil {
			b.Fatal(err)
		}
	}
}
