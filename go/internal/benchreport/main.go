// Command benchreport writes docs/benchmarks-go.md from one run of the Go
// benchmarks (their output, on standard input or in -go FILE) and of the
// Rust peer benchmark (Criterion's estimates under -criterion DIR): the
// median time per message of each workload on each side, their ratio, and
// the goals of issue 22. scripts/bench-go.sh runs both and then this.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	goFile       = flag.String("go", "-", "the output of `go test -bench`")
	criterionDir = flag.String("criterion", "", "Criterion's output directory (CARGO_TARGET_DIR/criterion)")
	out          = flag.String("out", "docs/benchmarks-go.md", "the report to write")
	machine      = flag.String("machine", "", "a line describing the machine")
)

var workloads = []struct{ key, title string }{
	{"produce_one", "Produce, one message per call"},
	{"produce_batch", "Produce, batches of 100"},
	{"consume_ack", "Consume in batches of 100, acknowledging each batch"},
}

var sizes = []string{"128B", "1KiB", "64KiB", "1MiB"}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op`)

func main() {
	flag.Parse()
	var in io.Reader = os.Stdin
	if *goFile != "-" {
		f, err := os.Open(*goFile)
		check(err)
		defer f.Close()
		in = f
	}
	goRuns := map[string][]float64{}
	scanner := bufio.NewScanner(in)
	for scanner.Scan() {
		if m := benchLine.FindStringSubmatch(strings.TrimSpace(scanner.Text())); m != nil {
			ns, err := strconv.ParseFloat(m[2], 64)
			check(err)
			goRuns[m[1]] = append(goRuns[m[1]], ns)
		}
	}
	check(scanner.Err())
	if len(goRuns) == 0 {
		fail("no benchmark result in the Go output")
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Go benchmarks: rocksmq through cgo beside the same workloads in Rust\n\n")
	fmt.Fprintf(&b, "Written by `sh scripts/bench-go.sh` (go/internal/benchreport) on %s from one run:\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "the Rust workloads (Criterion, `capi/benches/go_peer.rs`: medians of 10 samples) and then the Go\n")
	fmt.Fprintf(&b, "ones (`go/bench_test.go`, testing.B: medians of %d runs). Every figure is per message; a store\n", runs(goRuns))
	fmt.Fprintf(&b, "with the default configuration (no fsync per produce) in a temporary directory. The cgo cost is\n")
	fmt.Fprintf(&b, "Go's time per message over Rust's, minus one. Do not edit: rerun the script.\n\n")
	if *machine != "" {
		fmt.Fprintf(&b, "Machine: %s\n\n", *machine)
	}
	fmt.Fprintf(&b, "| Workload | Size | Rust (msg/s) | Go (msg/s) | Rust (µs/msg) | Go (µs/msg) | cgo cost |\n")
	fmt.Fprintf(&b, "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	cost := map[string]float64{}
	rate := map[string]float64{}
	for _, w := range workloads {
		for _, size := range sizes {
			key := w.key + "/" + size
			rustNs, rustOK := criterionMedian(key)
			goNs, goOK := median(goRuns["BenchmarkGo/"+key])
			if !rustOK || !goOK {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | | | |\n", w.title, size, rateText(rustNs, rustOK), rateText(goNs, goOK))
				continue
			}
			c := goNs/rustNs - 1
			cost[key] = c
			rate[key] = 1e9 / goNs
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %.2f | %+.1f %% |\n", w.title, size,
				rateText(rustNs, true), rateText(goNs, true), rustNs/1e3, goNs/1e3, c*100)
		}
	}
	milvusProduce, okP := median(goRuns["BenchmarkMilvusThroughput/produce"])
	milvusConsume, okC := median(goRuns["BenchmarkMilvusThroughput/consume"])
	fmt.Fprintf(&b, "\nMilvus's own throughput workload (TestRocksmq_Throughout: `message_<i>` payloads, one message\n")
	fmt.Fprintf(&b, "per Produce call, Consume(1) per call acknowledging as it delivers), through Go:\n\n")
	fmt.Fprintf(&b, "| Operation | rocksmq through Go (msg/s) | Milvus's RocksMQ, as its test records (msg/s) | Ratio |\n")
	fmt.Fprintf(&b, "| --- | ---: | ---: | ---: |\n")
	if okP {
		fmt.Fprintf(&b, "| Produce, one per call | %s | 190,000 | %.2f× |\n", rateText(milvusProduce, true), 1e9/milvusProduce/190000)
	}
	if okC {
		fmt.Fprintf(&b, "| Consume, one per call | %s | 90,000 | %.2f× |\n", rateText(milvusConsume, true), 1e9/milvusConsume/90000)
	}

	fmt.Fprintf(&b, "\n## Goals (issue 22)\n\n| Goal | Measured | |\n| --- | ---: | --- |\n")
	goal := func(text string, value float64, ok bool, format string, met bool) {
		if !ok {
			fmt.Fprintf(&b, "| %s | not measured | **not measured** |\n", text)
			return
		}
		verdict := "met"
		if !met {
			verdict = "**not met**"
		}
		fmt.Fprintf(&b, "| %s | "+format+" | %s |\n", text, value, verdict)
	}
	c, ok := cost["produce_one/128B"]
	goal("cgo cost ≤ 15 % at 128 B, one message per call", c*100, ok, "%+.1f %%", c <= 0.15)
	for _, w := range workloads {
		c, ok := cost[w.key+"/1MiB"]
		goal("cgo cost ≤ 5 % at 1 MiB: "+strings.ToLower(w.title[:1])+w.title[1:], c*100, ok, "%+.1f %%", c <= 0.05)
	}
	goal("produce through Go ≥ 5× Milvus's 190,000/s, one per call (Milvus's workload)", 1e9/milvusProduce/190000, okP, "%.2f×", 1e9/milvusProduce >= 5*190000)
	r, ok := rate["produce_batch/128B"]
	goal("produce through Go ≥ 5× Milvus's 190,000/s, batches of 100 at 128 B", r/190000, ok, "%.2f×", r >= 5*190000)
	goal("consume through Go ≥ 5× Milvus's 90,000/s, one per call (Milvus's workload)", 1e9/milvusConsume/90000, okC, "%.2f×", 1e9/milvusConsume >= 5*90000)
	r, ok = rate["consume_ack/128B"]
	goal("consume through Go ≥ 5× Milvus's 90,000/s, batches of 100 at 128 B", r/90000, ok, "%.2f×", r >= 5*90000)
	check(os.WriteFile(*out, []byte(b.String()), 0o644))
	fmt.Println("wrote", *out)
}

func runs(goRuns map[string][]float64) int {
	n := 0
	for _, r := range goRuns {
		n = max(n, len(r))
	}
	return n
}

func criterionMedian(key string) (float64, bool) {
	if *criterionDir == "" {
		return 0, false
	}
	data, err := os.ReadFile(filepath.Join(*criterionDir, "go_peer", filepath.FromSlash(key), "new", "estimates.json"))
	if err != nil {
		return 0, false
	}
	var estimates struct {
		Median struct {
			PointEstimate float64 `json:"point_estimate"`
		} `json:"median"`
	}
	if json.Unmarshal(data, &estimates) != nil || estimates.Median.PointEstimate <= 0 {
		return 0, false
	}
	return estimates.Median.PointEstimate, true
}

func median(values []float64) (float64, bool) {
	if len(values) == 0 {
		return 0, false
	}
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2], true
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2, true
}

func rateText(ns float64, ok bool) string {
	if !ok {
		return "–"
	}
	r := int64(1e9/ns + 0.5)
	s := strconv.FormatInt(r, 10)
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "benchreport:", message)
	os.Exit(1)
}
