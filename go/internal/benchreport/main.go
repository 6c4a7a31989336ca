// Command benchreport writes docs/benchmarks-go.md from one run of
// scripts/bench-go.sh: rounds of the Rust peer benchmark (Criterion's
// estimates, one directory per round in -criterion DIR,DIR,...) each
// followed by the Go benchmarks (their output in -go FILE, each round
// opened by a line "=== ROUND n"). For each workload: the median over the
// rounds of each side's time per message, and the cgo cost as the median
// of the rounds' paired ratios (a Go round against the Rust round just
// before it), so that the machine's drift weighs on both sides alike.
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
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	goFile        = flag.String("go", "-", "the output of `go test -bench`")
	criterionDirs = flag.String("criterion", "", "Criterion's output directories, one per round, comma-separated")
	out           = flag.String("out", "docs/benchmarks-go.md", "the report to write")
	machine       = flag.String("machine", "", "a line describing the machine")
)

var sizes = []string{"128B", "1KiB", "64KiB", "1MiB"}

var workloads = []struct {
	key, title string
	sizes      []string
}{
	{"produce_one", "Produce, one message per call", sizes},
	{"produce_batch", "Produce, batches of 100", sizes},
	{"produce_pipelined", "Produce, one message per call, pipelined (64 in flight)", []string{"128B", "1KiB"}},
	{"consume_ack", "Consume in batches of 100, acknowledging each batch", sizes},
}

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
	// goRounds[round][benchmark] is that round's Go time per message.
	var goRounds []map[string]float64
	goRuns := map[string][]float64{}
	scanner := bufio.NewScanner(in)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if strings.HasPrefix(line, "=== ROUND") {
			goRounds = append(goRounds, map[string]float64{})
			continue
		}
		if m := benchLine.FindStringSubmatch(line); m != nil {
			ns, err := strconv.ParseFloat(m[2], 64)
			check(err)
			goRuns[m[1]] = append(goRuns[m[1]], ns)
			if len(goRounds) > 0 {
				goRounds[len(goRounds)-1][m[1]] = ns
			}
		}
	}
	check(scanner.Err())
	if len(goRuns) == 0 {
		fail("no benchmark result in the Go output")
	}
	var rustRounds []string
	if *criterionDirs != "" {
		rustRounds = strings.Split(*criterionDirs, ",")
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Go benchmarks: rocksmq through cgo beside the same workloads in Rust\n\n")
	fmt.Fprintf(&b, "Written by `sh scripts/bench-go.sh` (go/internal/benchreport) on %s from one run of %d\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), len(rustRounds))
	fmt.Fprintf(&b, "rounds, each the Rust workloads (Criterion, `capi/benches/go_peer.rs`: the median of 10 samples)\n")
	fmt.Fprintf(&b, "then the same workloads through Go (`go/bench_test.go`, testing.B, one run of about 1 s each).\n")
	fmt.Fprintf(&b, "Every figure is per message, on a store with the default configuration (no fsync per produce)\n")
	fmt.Fprintf(&b, "in a temporary directory. Rust and Go columns: medians over the rounds. cgo cost: the median\n")
	fmt.Fprintf(&b, "over the rounds of Go's time over the Rust time of the same round, minus one. The pipelined\n")
	fmt.Fprintf(&b, "rows send one message per call through the pipelined producer (Rust `Store::producer`, Go\n")
	fmt.Fprintf(&b, "`Store.Producer`) with 64 calls in flight: 64 tickets out, the oldest waited on before each\n")
	fmt.Fprintf(&b, "send. Do not edit: rerun the script.\n\n")
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "Load average when the report was written (1, 5, 15 min): %s\n\n", strings.Join(strings.Fields(string(load))[:3], ", "))
	}
	if *machine != "" {
		fmt.Fprintf(&b, "Machine: %s\n\n", *machine)
	}
	fmt.Fprintf(&b, "| Workload | Size | Rust (msg/s) | Go (msg/s) | Rust (µs/msg) | Go (µs/msg) | cgo cost |\n")
	fmt.Fprintf(&b, "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	cost := map[string]float64{}
	rate := map[string]float64{}
	for _, w := range workloads {
		for _, size := range w.sizes {
			key := w.key + "/" + size
			var rustAll, ratios []float64
			for round, dir := range rustRounds {
				rust, ok := criterionMedian(dir, key)
				if !ok {
					continue
				}
				rustAll = append(rustAll, rust)
				if round < len(goRounds) {
					if g, ok := goRounds[round]["BenchmarkGo/"+key]; ok {
						ratios = append(ratios, g/rust)
					}
				}
			}
			rustNs, rustOK := median(rustAll)
			goNs, goOK := median(goRuns["BenchmarkGo/"+key])
			ratio, ratioOK := median(ratios)
			if !rustOK || !goOK || !ratioOK {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | | | |\n", w.title, size, rateText(rustNs, rustOK), rateText(goNs, goOK))
				continue
			}
			c := ratio - 1
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
		if !slices.Contains(w.sizes, "1MiB") {
			continue
		}
		c, ok := cost[w.key+"/1MiB"]
		goal("cgo cost ≤ 5 % at 1 MiB: "+strings.ToLower(w.title[:1])+w.title[1:], c*100, ok, "%+.1f %%", c <= 0.05)
	}
	goal("produce through Go ≥ 5× Milvus's 190,000/s, one per call (Milvus's workload)", 1e9/milvusProduce/190000, okP, "%.2f×", 1e9/milvusProduce >= 5*190000)
	for _, size := range []string{"128B", "1KiB"} {
		r, ok := rate["produce_pipelined/"+size]
		goal("produce through Go ≥ 5× Milvus's 190,000/s, one per call, pipelined (64 in flight) at "+sizeText(size), r/190000, ok, "%.2f×", r >= 5*190000)
	}
	r, ok := rate["produce_batch/128B"]
	goal("produce through Go ≥ 5× Milvus's 190,000/s, batches of 100 at 128 B", r/190000, ok, "%.2f×", r >= 5*190000)
	goal("consume through Go ≥ 5× Milvus's 90,000/s, one per call (Milvus's workload)", 1e9/milvusConsume/90000, okC, "%.2f×", 1e9/milvusConsume >= 5*90000)
	r, ok = rate["consume_ack/128B"]
	goal("consume through Go ≥ 5× Milvus's 90,000/s, batches of 100 at 128 B", r/90000, ok, "%.2f×", r >= 5*90000)
	check(os.WriteFile(*out, []byte(b.String()), 0o644))
	fmt.Println("wrote", *out)
}

// sizeText is a size label as the goals write it ("128B" → "128 B").
func sizeText(label string) string {
	i := strings.IndexFunc(label, func(r rune) bool { return r < '0' || r > '9' })
	return label[:i] + " " + label[i:]
}

func criterionMedian(dir, key string) (float64, bool) {
	data, err := os.ReadFile(filepath.Join(dir, "go_peer", filepath.FromSlash(key), "new", "estimates.json"))
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
