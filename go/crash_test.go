package rocksmq_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	rocksmq "github.com/rocksmq/rocksmq/go"
)

// The crash test: a child process (this test binary, re-run) produces from
// 16 goroutines and acknowledges from 2 consumer groups, printing each
// produce and each acknowledgement once it returned; it is killed with
// SIGKILL at a random moment and started again, cycle after cycle. After
// each kill the parent opens the store and checks that nothing
// acknowledged is lost, duplicated or reordered: every produce printed is
// there exactly once at its id with its payload, each producer's messages
// are in its order, and each group's durable position is at least its
// last acknowledgement printed. The child checks that each group receives
// ids contiguous from its position on. ROCKSMQ_GO_CRASH_CYCLES sets the
// number of cycles (3 by default).

const (
	crashTopic     = "crash"
	crashProducers = 16
)

var crashGroups = []string{"g1", "g2"}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv("ROCKSMQ_GO_CRASH_CHILD")
	if dir == "" {
		t.Skip("run by TestCrashKill9")
	}
	cycle := os.Getenv("ROCKSMQ_GO_CRASH_CYCLE")
	out := make(chan string, 4096)
	go func() {
		w := bufio.NewWriter(os.Stdout)
		ticker := time.NewTicker(5 * time.Millisecond)
		for {
			select {
			case line := <-out:
				w.WriteString(line)
			case <-ticker.C:
				w.Flush()
			}
		}
	}()
	store, err := rocksmq.OpenPath(dir)
	if err != nil {
		fmt.Println("ERROR open", err)
		os.Exit(2)
	}
	_, err = store.CreateTopic(crashTopic)
	if err != nil {
		fmt.Println("ERROR create topic", err)
		os.Exit(2)
	}
	for _, g := range crashGroups {
		if err := store.CreateGroup(crashTopic, g, rocksmq.Earliest()); err != nil && !strings.Contains(err.Error(), "already has") {
			fmt.Println("ERROR create group", err)
			os.Exit(2)
		}
	}
	out <- "READY\n"
	for p := 0; p < crashProducers; p++ {
		go func(p int) {
			for seq := 0; ; seq++ {
				payload := fmt.Sprintf("%s/%d/%d", cycle, p, seq)
				batch := []rocksmq.ProducerMessage{{Payload: []byte(payload)}}
				if seq%4 == 3 {
					// Some calls are batches of two: atomic, contiguous ids.
					seq++
					batch = append(batch, rocksmq.ProducerMessage{Payload: []byte(fmt.Sprintf("%s/%d/%d", cycle, p, seq))})
				}
				ids, err := store.Produce(crashTopic, batch)
				if err != nil {
					out <- fmt.Sprintf("ERROR produce %v\n", err)
					return
				}
				for i, id := range ids {
					out <- fmt.Sprintf("P %d %s\n", id, batch[i].Payload)
				}
				// Paced, so that 200 cycles stay a few million messages.
				time.Sleep(time.Duration(rand.Intn(400)) * time.Microsecond)
			}
		}(p)
	}
	for _, g := range crashGroups {
		go func(g string) {
			consumer, err := store.Consumer(crashTopic, g, rocksmq.AckExplicit)
			if err != nil {
				out <- fmt.Sprintf("ERROR consumer %v\n", err)
				return
			}
			acked, _, _ := consumer.Position()
			next := acked + 1
			for {
				messages, err := consumer.Receive(context.Background(), 64)
				if err != nil {
					out <- fmt.Sprintf("ERROR receive %v\n", err)
					return
				}
				for _, m := range messages {
					if m.MsgID != next {
						out <- fmt.Sprintf("ERROR group %s got %d, want %d\n", g, m.MsgID, next)
						return
					}
					next++
				}
				last := messages[len(messages)-1].MsgID
				if err := consumer.Ack(last); err != nil {
					out <- fmt.Sprintf("ERROR ack %v\n", err)
					return
				}
				out <- fmt.Sprintf("A %s %d\n", g, last)
			}
		}(g)
	}
	select {}
}

type produced struct {
	id      rocksmq.UniqueID
	payload string
}

func TestCrashKill9(t *testing.T) {
	cycles := 3
	if v := os.Getenv("ROCKSMQ_GO_CRASH_CYCLES"); v != "" {
		cycles, _ = strconv.Atoi(v)
	}
	dir := t.TempDir()
	var all []produced
	acked := map[string]rocksmq.UniqueID{}
	for cycle := 0; cycle < cycles; cycle++ {
		lines := runChild(t, dir, cycle, time.Duration(100+rand.Intn(300))*time.Millisecond)
		for _, line := range lines {
			fields := strings.Fields(line)
			switch {
			case strings.HasPrefix(line, "ERROR"):
				t.Fatalf("cycle %d: the child says: %s", cycle, line)
			case len(fields) == 3 && fields[0] == "P":
				id, _ := strconv.ParseInt(fields[1], 10, 64)
				all = append(all, produced{id, fields[2]})
			case len(fields) == 3 && fields[0] == "A":
				id, _ := strconv.ParseInt(fields[2], 10, 64)
				if id > acked[fields[1]] {
					acked[fields[1]] = id
				}
			}
		}
		verifyCrash(t, dir, cycle, all, acked)
	}
	t.Logf("%d cycles: %d produces acknowledged, groups acknowledged up to %v", cycles, len(all), acked)
}

// runChild runs one child for about d, kills it with SIGKILL, and returns
// the whole lines it printed.
func runChild(t *testing.T, dir string, cycle int, d time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ROCKSMQ_GO_CRASH_CHILD="+dir, "ROCKSMQ_GO_CRASH_CYCLE="+strconv.Itoa(cycle))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	var mu sync.Mutex
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		reader := bufio.NewReader(stdout)
		once := sync.Once{}
		for {
			line, err := reader.ReadString('\n')
			if err != nil {
				return // a partial last line is not a whole acknowledgement
			}
			line = strings.TrimSpace(line)
			if line == "READY" {
				once.Do(func() { close(ready) })
			}
			mu.Lock()
			lines = append(lines, line)
			mu.Unlock()
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("cycle %d: the child did not start", cycle)
	}
	time.Sleep(d)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	_ = cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	return lines
}

func verifyCrash(t *testing.T, dir string, cycle int, all []produced, acked map[string]rocksmq.UniqueID) {
	t.Helper()
	store, err := rocksmq.OpenPath(dir)
	if err != nil {
		t.Fatalf("cycle %d: reopen: %v", cycle, err)
	}
	defer store.Close()
	reader, err := store.Reader(crashTopic, rocksmq.Earliest())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	stored := map[rocksmq.UniqueID]string{}
	seen := map[string]rocksmq.UniqueID{}
	last := map[string]int{} // "cycle/producer" -> last sequence, in id order
	for {
		batch, err := reader.Read(4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		for _, m := range batch {
			payload := string(m.Payload)
			if other, dup := seen[payload]; dup {
				t.Fatalf("cycle %d: %q stored twice, at %d and %d", cycle, payload, other, m.MsgID)
			}
			seen[payload] = m.MsgID
			stored[m.MsgID] = payload
			parts := strings.Split(payload, "/")
			seq, _ := strconv.Atoi(parts[2])
			key := parts[0] + "/" + parts[1]
			if previous, ok := last[key]; ok && seq <= previous {
				t.Fatalf("cycle %d: producer %s's message %d is after its %d", cycle, key, seq, previous)
			}
			last[key] = seq
		}
	}
	for _, p := range all {
		if stored[p.id] != p.payload {
			t.Fatalf("cycle %d: acknowledged %q at %d is lost (found %q)", cycle, p.payload, p.id, stored[p.id])
		}
	}
	stats, err := store.TopicStats(crashTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range stats.Groups {
		if g.AckedID < acked[g.Name] {
			t.Fatalf("cycle %d: group %s is at %d, acknowledged %d", cycle, g.Name, g.AckedID, acked[g.Name])
		}
	}
}
