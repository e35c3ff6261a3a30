package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestJSONMode(t *testing.T) {
	e := newEnv(t)
	path := sp("json")
	jsonCT := []string{"Content-Type", "application/json"}

	r := e.expect(t, http.StatusCreated, http.MethodPut, path, []byte(` [{"a":1}, 2] `), jsonCT...)
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, uint64(len(`{"a":1}`)+len(`2`))))
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte(`"three"`), jsonCT...)
	// A top-level array is flattened exactly one level.
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte(`[[4,5],{"b":[6]}]`), jsonCT...)
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte(`null`), "Content-Type", "application/json; charset=utf-8")
	// Messages keep their exact source text.
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("[{ \"c\" : 7 }]"), jsonCT...)

	want := `[{"a":1},2,"three",[4,5],{"b":[6]},null,{ "c" : 7 }]`
	r = e.expect(t, http.StatusOK, http.MethodGet, path, nil)
	if string(r.body) != want {
		t.Fatalf("GET = %s, want %s", r.body, want)
	}
	wantHeader(t, r, "Content-Type", "application/json")
	var msgs []json.RawMessage
	if err := json.Unmarshal(r.body, &msgs); err != nil || len(msgs) != 7 {
		t.Fatalf("body is not a 7-message array: %v", err)
	}
	tail := r.get("Stream-Next-Offset")

	// Reading from a message boundary returns the remaining messages.
	r = e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+e.tok(t, path, uint64(len(`{"a":1}`))), nil)
	if string(r.body) != `[2,"three",[4,5],{"b":[6]},null,{ "c" : 7 }]` {
		t.Errorf("GET from message 2 = %s", r.body)
	}

	for _, q := range []string{"?offset=now", "?offset=" + tail} {
		r = e.expect(t, http.StatusOK, http.MethodGet, path+q, nil)
		if string(r.body) != "[]" {
			t.Errorf("GET %s = %q, want []", q, r.body)
		}
		wantHeader(t, r, "Cache-Control", "no-store")
		wantHeader(t, r, "Stream-Up-To-Date", "true")
		wantHeader(t, r, "Stream-Next-Offset", tail)
		wantHeader(t, r, "Content-Type", "application/json")
	}
	// offset=now on a binary stream answers with an empty body.
	e.expect(t, http.StatusCreated, http.MethodPut, sp("bin-now"), []byte("abc"))
	r = e.expect(t, http.StatusOK, http.MethodGet, sp("bin-now")+"?offset=now", nil)
	if len(r.body) != 0 {
		t.Errorf("binary offset=now body %q", r.body)
	}
	wantHeader(t, r, "Cache-Control", "no-store")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, sp("bin-now"), 3))
}

// TestChunkedReads follows Stream-Next-Offset through a stream larger than
// MaxChunkBytes, with records that straddle chunk boundaries.
func TestChunkedReads(t *testing.T) {
	const max = 1000
	e := newEnv(t, withMaxChunk(max))
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i*7 + i/256)
	}
	path := sp("chunked")
	e.expect(t, http.StatusCreated, http.MethodPut, path, data[:3000])
	at := 3000
	for _, n := range []int{1, 999, 2500, 3500} {
		e.expect(t, http.StatusNoContent, http.MethodPost, path, data[at:at+n], "Content-Type", "application/octet-stream")
		at += n
	}

	var got []byte
	offset := "-1"
	for i := 0; ; i++ {
		r := e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+offset, nil)
		if len(r.body) > max {
			t.Fatalf("chunk %d has %d bytes, over MaxChunkBytes", i, len(r.body))
		}
		got = append(got, r.body...)
		next := r.get("Stream-Next-Offset")
		if position(t, next) != uint64(len(got)) {
			t.Fatalf("chunk %d: Stream-Next-Offset %s after %d bytes", i, next, len(got))
		}
		offset = next
		if len(got) < len(data) {
			wantNoHeader(t, r, "Stream-Up-To-Date")
			if len(r.body) == 0 {
				t.Fatalf("chunk %d is empty before the tail", i)
			}
			continue
		}
		wantHeader(t, r, "Stream-Up-To-Date", "true")
		if i != len(data)/max-1 {
			t.Errorf("read took %d chunks, want %d", i+1, len(data)/max)
		}
		break
	}
	if !bytes.Equal(got, data) {
		t.Fatal("chunked read differs from the data written")
	}

	// A closed stream reports Stream-Closed only on the final chunk.
	e.expect(t, http.StatusNoContent, http.MethodPost, path, nil, "Stream-Closed", "true")
	r := e.expect(t, http.StatusOK, http.MethodGet, path, nil)
	wantNoHeader(t, r, "Stream-Closed")
	r = e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+e.tok(t, path, 9000), nil)
	wantHeader(t, r, "Stream-Closed", "true")
	wantHeader(t, r, "Stream-Up-To-Date", "true")

	// JSON streams chunk on message boundaries.
	jpath := sp("chunked-json")
	e.expect(t, http.StatusCreated, http.MethodPut, jpath, nil, "Content-Type", "application/json")
	var all []string
	for i := 0; i < 60; i++ {
		m := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("p", i%40))
		all = append(all, m)
		e.expect(t, http.StatusNoContent, http.MethodPost, jpath, []byte(m), "Content-Type", "application/json")
	}
	var msgs []string
	offset = "-1"
	chunks := 0
	for {
		r := e.expect(t, http.StatusOK, http.MethodGet, jpath+"?offset="+offset, nil)
		chunks++
		var part []json.RawMessage
		if err := json.Unmarshal(r.body, &part); err != nil {
			t.Fatalf("chunk %q is not a JSON array: %v", truncate(r.body), err)
		}
		for _, m := range part {
			msgs = append(msgs, string(m))
		}
		offset = r.get("Stream-Next-Offset")
		if r.get("Stream-Up-To-Date") == "true" {
			break
		}
		if len(part) == 0 {
			t.Fatal("empty intermediate JSON chunk")
		}
	}
	if strings.Join(msgs, "\n") != strings.Join(all, "\n") {
		t.Fatalf("JSON messages differ:\n got %q\nwant %q", msgs, all)
	}
	if chunks < 2 {
		t.Errorf("JSON stream was read in %d chunk(s), want several", chunks)
	}
}

func TestCompression(t *testing.T) {
	e := newEnv(t)
	data := bytes.Repeat([]byte("streamd compresses catch-up reads. "), 300)
	path := sp("compressible")
	e.expect(t, http.StatusCreated, http.MethodPut, path, data, "Content-Type", "text/plain")
	e.expect(t, http.StatusCreated, http.MethodPut, sp("small"), []byte("tiny body"), "Content-Type", "text/plain")

	cases := []struct {
		accept string
		want   string
	}{
		{"gzip", "gzip"},
		{"deflate", "deflate"},
		{"gzip, deflate, br", "gzip"},
		{"deflate;q=1.0, gzip;q=0.5", "deflate"},
		{"gzip;q=0, deflate", "deflate"},
		{"GZIP", "gzip"},
		{"identity", ""},
		{"br", ""},
		{"gzip;q=0", ""},
		{"", ""},
	}
	for _, c := range cases {
		t.Run("accept "+c.accept, func(t *testing.T) {
			var hdr []string
			if c.accept != "" {
				hdr = []string{"Accept-Encoding", c.accept}
			}
			r := e.expect(t, http.StatusOK, http.MethodGet, path, nil, hdr...)
			wantHeader(t, r, "Content-Encoding", c.want)
			if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Accept-Encoding") {
				t.Errorf("Vary = %q, want Accept-Encoding", r.header.Values("Vary"))
			}
			got := decode(t, c.want, r.body)
			if !bytes.Equal(got, data) {
				t.Fatalf("decoded body differs (%d bytes, want %d)", len(got), len(data))
			}
			if c.want != "" && len(r.body) >= len(data) {
				t.Errorf("%s body not smaller: %d bytes", c.want, len(r.body))
			}
		})
	}

	r := e.expect(t, http.StatusOK, http.MethodGet, sp("small"), nil, "Accept-Encoding", "gzip")
	wantNoHeader(t, r, "Content-Encoding")
	if string(r.body) != "tiny body" {
		t.Errorf("small body %q", r.body)
	}

	off := newEnv(t, withCompression(false))
	off.expect(t, http.StatusCreated, http.MethodPut, path, data, "Content-Type", "text/plain")
	r = off.expect(t, http.StatusOK, http.MethodGet, path, nil, "Accept-Encoding", "gzip, deflate")
	wantNoHeader(t, r, "Content-Encoding")
	if !bytes.Equal(r.body, data) {
		t.Error("uncompressed body differs")
	}
}

func decode(t *testing.T, enc string, body []byte) []byte {
	t.Helper()
	var rd io.Reader
	var err error
	switch enc {
	case "":
		return body
	case "gzip":
		rd, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		rd, err = zlib.NewReader(bytes.NewReader(body)) // HTTP deflate is zlib
	default:
		t.Fatalf("unknown encoding %q", enc)
	}
	if err != nil {
		t.Fatalf("%s reader: %v", enc, err)
	}
	out, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("%s decode: %v", enc, err)
	}
	return out
}
