package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// TestReadAheadIsInvisible: sequential catch-up readers get the same
// bodies and headers with read-ahead as without it, on byte and JSON
// streams, while the stream grows between their requests and after it is
// deleted and recreated under the same path (chunks read ahead for the
// old stream must never be served for the new one).
func TestReadAheadIsInvisible(t *testing.T) {
	type step struct {
		body, next, upToDate, closed string
	}
	// run reads path from the start chunk by chunk; after the second chunk
	// it appends more, and after the fourth it recreates the stream.
	run := func(t *testing.T, e *env, ct string, msg func(i int) []byte) []step {
		path := "/v1/stream/ra"
		create := func(round int) {
			e.expect(t, http.StatusCreated, http.MethodPut, path, nil, "Content-Type", ct)
			for i := range 20 {
				e.expect(t, http.StatusNoContent, http.MethodPost, path, msg(round*100+i), "Content-Type", ct)
			}
		}
		create(0)
		var steps []step
		offset := "-1"
		for i := 0; i < 200; i++ {
			r := e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+offset, nil)
			steps = append(steps, step{string(r.body), r.get("Stream-Next-Offset"), r.get("Stream-Up-To-Date"), r.get("Stream-Closed")})
			offset = r.get("Stream-Next-Offset")
			switch i {
			case 1:
				e.expect(t, http.StatusNoContent, http.MethodPost, path, msg(99), "Content-Type", ct)
			case 3:
				e.expect(t, http.StatusNoContent, http.MethodDelete, path, nil)
				create(1)
				offset = "-1"
			}
			if i > 3 && r.get("Stream-Up-To-Date") == "true" {
				return steps
			}
		}
		t.Fatal("reader never caught up")
		return nil
	}
	cases := []struct {
		name string
		ct   string
		msg  func(i int) []byte
	}{
		{"bytes", "application/octet-stream", func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 150+i%7) }},
		{"json", "application/json", func(i int) []byte {
			b, _ := json.Marshal(map[string]any{"i": i, "pad": string(bytes.Repeat([]byte("x"), 100+i%13))})
			return b
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := run(t, newEnv(t, withMaxChunk(700), withReadAhead(-1)), c.ct, c.msg)
			got := run(t, newEnv(t, withMaxChunk(700)), c.ct, c.msg)
			if len(got) != len(want) {
				t.Fatalf("%d chunks with read-ahead, %d without", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("chunk %d with read-ahead %+v\nwithout %+v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestReadAheadManyReaders: concurrent sequential readers of different
// streams, more than the read-ahead budget covers, all read their own
// bytes exactly.
func TestReadAheadManyReaders(t *testing.T) {
	e := newEnv(t, withMaxChunk(1000), withReadAhead(4000))
	const readers = 12
	want := make([][]byte, readers)
	for r := range readers {
		path := fmt.Sprintf("/v1/stream/many/%d", r)
		e.expect(t, http.StatusCreated, http.MethodPut, path, nil, "Content-Type", "application/octet-stream")
		for i := range 30 {
			b := bytes.Repeat([]byte{byte(r), byte(i)}, 128)
			want[r] = append(want[r], b...)
			e.expect(t, http.StatusNoContent, http.MethodPost, path, b, "Content-Type", "application/octet-stream")
		}
	}
	// readAll follows the offsets without failing the test from a goroutine.
	readAll := func(path string) ([]byte, error) {
		var data []byte
		for offset := "-1"; ; {
			r, err := e.request(context.Background(), http.MethodGet, path+"?offset="+offset, nil)
			if err != nil {
				return nil, err
			}
			if r.status != http.StatusOK {
				return nil, fmt.Errorf("GET %s at %s: %s", path, offset, r)
			}
			data = append(data, r.body...)
			if offset = r.get("Stream-Next-Offset"); r.get("Stream-Up-To-Date") == "true" {
				return data, nil
			}
		}
	}
	errs := make(chan error, readers)
	for r := range readers {
		go func() {
			for pass := range 3 {
				got, err := readAll(fmt.Sprintf("/v1/stream/many/%d", r))
				if err == nil && !bytes.Equal(got, want[r]) {
					err = fmt.Errorf("reader %d pass %d: %d bytes differ from the %d written", r, pass, len(got), len(want[r]))
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range readers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
