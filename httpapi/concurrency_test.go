package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/protocol"
)

type ack struct {
	start uint64
	body  []byte
}

// TestConcurrentAppendsAndReaders: concurrent writers and live readers
// (SSE and long-poll) all end up with the acknowledged appends, each exactly
// once, in offset order.
func TestConcurrentAppendsAndReaders(t *testing.T) {
	const (
		writers     = 32
		perWriter   = 30
		sseReaders  = 8
		pollReaders = 8
	)
	// A short reconnect interval and small chunks make readers reconnect
	// and catch up from storage while appends are still arriving.
	e := newEnv(t, withLongPoll(100*time.Millisecond), withSSEReconnect(150*time.Millisecond), withMaxChunk(2048))
	path := sp("concurrent/stream")
	e.expect(t, http.StatusCreated, http.MethodPut, path, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	type result struct {
		name  string
		data  []byte
		conns int
		err   error
	}
	results := make(chan result, sseReaders+pollReaders)
	for i := 0; i < sseReaders; i++ {
		go func() {
			d, n, err := followSSE(ctx, e, path)
			results <- result{fmt.Sprintf("sse-%d", i), d, n, err}
		}()
	}
	for i := 0; i < pollReaders; i++ {
		go func() {
			d, n, err := followLongPoll(ctx, e, path)
			results <- result{fmt.Sprintf("long-poll-%d", i), d, n, err}
		}()
	}

	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < perWriter; i++ {
				body := fmt.Appendf(nil, "<%02d:%02d:", w, i)
				for n := rng.IntN(300); n > 0; n-- {
					body = append(body, byte(rng.UintN(256)))
				}
				body = append(body, '>')
				time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond)
				r, err := e.request(ctx, http.MethodPost, path, body, "Content-Type", "application/octet-stream")
				if err != nil {
					errs <- err
					return
				}
				if r.status != http.StatusNoContent {
					errs <- fmt.Errorf("append %d/%d: %v", w, i, r)
					return
				}
				_, end, err := protocol.ParseOffset(r.get("Stream-Next-Offset"))
				if err != nil || end < uint64(len(body)) {
					errs <- fmt.Errorf("append %d/%d: Stream-Next-Offset %q", w, i, r.get("Stream-Next-Offset"))
					return
				}
				mu.Lock()
				acks = append(acks, ack{start: end - uint64(len(body)), body: body})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	r := e.expect(t, http.StatusNoContent, http.MethodPost, path, nil, "Stream-Closed", "true")

	sort.Slice(acks, func(i, j int) bool { return acks[i].start < acks[j].start })
	var want []byte
	for _, a := range acks {
		if a.start != uint64(len(want)) {
			t.Fatalf("acknowledged appends are not contiguous: one starts at %d, expected %d", a.start, len(want))
		}
		want = append(want, a.body...)
	}
	if len(acks) != writers*perWriter {
		t.Fatalf("%d acknowledged appends, want %d", len(acks), writers*perWriter)
	}
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, uint64(len(want))))

	conns := map[bool]int{}
	for i := 0; i < sseReaders+pollReaders; i++ {
		select {
		case res := <-results:
			conns[res.name[:3] == "sse"] += res.conns
			if res.err != nil {
				t.Errorf("%s: %v (after %d bytes)", res.name, res.err, len(res.data))
				continue
			}
			if !bytes.Equal(res.data, want) {
				t.Errorf("%s read %d bytes that differ from the %d acknowledged", res.name, len(res.data), len(want))
			}
		case <-ctx.Done():
			t.Fatalf("readers still running: %v", ctx.Err())
		}
	}
	t.Logf("connections: %d SSE, %d long-polls", conns[true], conns[false])
	// The test is only meaningful if live readers had to resume.
	if conns[true] <= sseReaders || conns[false] <= pollReaders {
		t.Errorf("readers never resumed: %d SSE connections, %d long-polls", conns[true], conns[false])
	}
	if got, _ := e.readAll(t, path); !bytes.Equal(got, want) {
		t.Errorf("catch-up read of %d bytes differs from the %d acknowledged", len(got), len(want))
	}
}

// followSSE reads a binary stream over SSE from the start until it closes,
// reconnecting from the last control event whenever the server ends the
// response, as a conforming client does.
func followSSE(ctx context.Context, e *env, path string) (data []byte, conns int, err error) {
	offset, cursor := "-1", ""
	for ; ; conns++ {
		target := path + "?live=sse&offset=" + offset
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		req, err := e.newRequest(ctx, http.MethodGet, target, nil, nil)
		if err != nil {
			return data, conns + 1, err
		}
		res, err := e.client.Do(req)
		if err != nil {
			return data, conns + 1, err
		}
		if res.StatusCode != http.StatusOK || res.Header.Get("Stream-SSE-Data-Encoding") != "base64" {
			res.Body.Close()
			return data, conns + 1, fmt.Errorf("GET %s: status %d, encoding %q", target, res.StatusCode, res.Header.Get("Stream-SSE-Data-Encoding"))
		}
		done, err := func() (bool, error) {
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			var pending []byte
			havePending := false
			for {
				ev, err := readSSE(br)
				if errors.Is(err, io.EOF) {
					if havePending {
						return false, errors.New("response ended between a data event and its control event")
					}
					return false, nil
				}
				if err != nil {
					return false, err
				}
				switch ev.event {
				case "data":
					if havePending {
						return false, errors.New("two data events without a control event")
					}
					if pending, err = decodeBase64Event(ev.data); err != nil {
						return false, fmt.Errorf("data event: %w", err)
					}
					havePending = true
				case "control":
					var c control
					if err := json.Unmarshal([]byte(ev.data), &c); err != nil || c.StreamNextOffset == nil {
						return false, fmt.Errorf("control event %q: %v", ev.data, err)
					}
					data = append(data, pending...)
					pending, havePending = nil, false
					_, pos, err := protocol.ParseOffset(*c.StreamNextOffset)
					if err != nil || pos != uint64(len(data)) {
						return false, fmt.Errorf("streamNextOffset %s after %d bytes", *c.StreamNextOffset, len(data))
					}
					offset = *c.StreamNextOffset
					if c.StreamClosed != nil && *c.StreamClosed {
						return true, nil
					}
					if c.StreamCursor == nil {
						return false, fmt.Errorf("control %q without streamCursor", ev.data)
					}
					cursor = *c.StreamCursor
				default:
					return false, fmt.Errorf("unexpected event %q", ev.event)
				}
			}
		}()
		if err != nil || done {
			return data, conns + 1, err
		}
	}
}

// followLongPoll reads a stream with long-polls from the start until EOF.
func followLongPoll(ctx context.Context, e *env, path string) (data []byte, polls int, err error) {
	offset, cursor := "-1", ""
	for ; ; polls++ {
		target := path + "?live=long-poll&offset=" + offset
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		r, err := e.request(ctx, http.MethodGet, target, nil)
		if err != nil {
			return data, polls + 1, err
		}
		switch r.status {
		case http.StatusOK:
			if len(r.body) == 0 {
				return data, polls + 1, errors.New("200 with an empty body")
			}
			data = append(data, r.body...)
		case http.StatusNoContent:
			if r.get("Stream-Up-To-Date") != "true" {
				return data, polls + 1, errors.New("204 without Stream-Up-To-Date")
			}
		default:
			return data, polls + 1, fmt.Errorf("GET %s: %v", target, r)
		}
		next := r.get("Stream-Next-Offset")
		_, pos, err := protocol.ParseOffset(next)
		if err != nil || pos != uint64(len(data)) {
			return data, polls + 1, fmt.Errorf("Stream-Next-Offset %q after %d bytes", next, len(data))
		}
		offset = next
		if r.get("Stream-Closed") == "true" {
			return data, polls + 1, nil
		}
		if cursor = r.get("Stream-Cursor"); cursor == "" {
			return data, polls + 1, errors.New("open-stream long-poll response without Stream-Cursor")
		}
	}
}
