package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/httpapi"
)

const injectPath = "/_test/inject-error"

func withTestEndpoints() option {
	return withAPI(func(c *httpapi.Config) { c.TestEndpoints = true })
}

// inject arms a fault through the HTTP API at mount ("" or StreamPrefix).
func (e *env) inject(t *testing.T, mount, body string) {
	t.Helper()
	r := e.expect(t, http.StatusOK, http.MethodPost, mount+injectPath, []byte(body), "Content-Type", "application/json")
	if string(r.body) != `{"ok":true}` {
		t.Fatalf("inject %s: body %q", body, r.body)
	}
}

// createText creates a text stream at path holding data.
func (e *env) createText(t *testing.T, path, data string) {
	t.Helper()
	e.expect(t, http.StatusCreated, http.MethodPut, path, []byte(data), "Content-Type", "text/plain")
}

func TestFaultEndpointOffByDefault(t *testing.T) {
	e := newEnv(t)
	fault := []byte(`{"path":"/v1/stream/s","status":500}`)
	e.expect(t, http.StatusNotFound, http.MethodPost, injectPath, fault)
	e.expect(t, http.StatusNotFound, http.MethodDelete, injectPath, nil)
	// Under the prefix it is an ordinary stream path.
	e.expect(t, http.StatusNotFound, http.MethodPost, sp("_test/inject-error"), fault, "Content-Type", "application/json")
	e.createText(t, sp("_test/inject-error"), "plain stream")
	if r := e.expect(t, http.StatusOK, http.MethodGet, sp("_test/inject-error")+"?offset=-1", nil); string(r.body) != "plain stream" {
		t.Fatalf("stream at _test/inject-error reads %q", r.body)
	}
	if e.api.Faults() != nil {
		t.Fatal("Faults() is set without TestEndpoints or Config.Faults")
	}
}

func TestFaultEndpointAnswers(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	tests := []struct {
		name     string
		method   string
		body     string
		status   int
		wantBody string // a prefix of the answer's body
	}{
		{name: "status fault", method: http.MethodPost, body: `{"path":"/a","status":503,"retryAfter":1}`, status: 200, wantBody: `{"ok":true}`},
		{name: "every field", method: http.MethodPost, status: 200, wantBody: `{"ok":true}`,
			body: `{"path":"/a","status":500,"count":3,"retryAfter":0,"delayMs":1,"jitterMs":2,"dropConnection":false,` +
				`"truncateBodyBytes":0,"corruptBody":true,"probability":0.5,"method":"get","injectSseEvent":{"eventType":"x","data":""},"unknown":1}`},
		{name: "clear", method: http.MethodDelete, status: 200, wantBody: `{"ok":true}`},
		{name: "other method", method: http.MethodGet, status: 405, wantBody: "Method not allowed"},
		{name: "not JSON", method: http.MethodPost, body: `{"path":`, status: 400, wantBody: "Invalid JSON body"},
		{name: "not an object", method: http.MethodPost, body: `[1]`, status: 400, wantBody: "Invalid JSON body"},
		{name: "no path", method: http.MethodPost, body: `{"status":500}`, status: 400, wantBody: "Missing required field: path"},
		{name: "empty path", method: http.MethodPost, body: `{"path":"","status":500}`, status: 400, wantBody: "Missing required field: path"},
		{name: "no fault kind", method: http.MethodPost, body: `{"path":"/a","count":2,"probability":1}`, status: 400, wantBody: "Must specify at least one fault type"},
		{name: "dropConnection false is no kind", method: http.MethodPost, body: `{"path":"/a","dropConnection":false}`, status: 400, wantBody: "Must specify at least one fault type"},
		{name: "status as string", method: http.MethodPost, body: `{"path":"/a","status":"500"}`, status: 400, wantBody: "status must be a number"},
		{name: "status too low", method: http.MethodPost, body: `{"path":"/a","status":99}`, status: 400, wantBody: "invalid fault: status must be between 200 and 599"},
		{name: "status too high", method: http.MethodPost, body: `{"path":"/a","status":600}`, status: 400, wantBody: "invalid fault: status must be between 200 and 599"},
		{name: "status fraction", method: http.MethodPost, body: `{"path":"/a","status":500.5}`, status: 400, wantBody: "status must be a whole number"},
		{name: "count zero", method: http.MethodPost, body: `{"path":"/a","status":500,"count":0}`, status: 400, wantBody: "count must be at least 1"},
		{name: "count negative", method: http.MethodPost, body: `{"path":"/a","status":500,"count":-2}`, status: 400, wantBody: "count must be at least 1"},
		{name: "negative retryAfter", method: http.MethodPost, body: `{"path":"/a","status":503,"retryAfter":-1}`, status: 400, wantBody: "invalid fault: retryAfter must not be negative"},
		{name: "negative delay", method: http.MethodPost, body: `{"path":"/a","delayMs":-1}`, status: 400, wantBody: "delayMs must be between 0 and 300000"},
		{name: "delay too long", method: http.MethodPost, body: `{"path":"/a","delayMs":300001}`, status: 400, wantBody: "delayMs must be between 0 and 300000"},
		{name: "jitter too long", method: http.MethodPost, body: `{"path":"/a","delayMs":1,"jitterMs":1e9}`, status: 400, wantBody: "jitterMs must be between 0 and 300000"},
		{name: "dropConnection not boolean", method: http.MethodPost, body: `{"path":"/a","dropConnection":"yes"}`, status: 400, wantBody: "dropConnection must be a boolean"},
		{name: "negative truncation", method: http.MethodPost, body: `{"path":"/a","truncateBodyBytes":-1}`, status: 400, wantBody: "invalid fault: truncateBodyBytes must not be negative"},
		{name: "probability above 1", method: http.MethodPost, body: `{"path":"/a","status":500,"probability":1.5}`, status: 400, wantBody: "invalid fault: probability must be between 0 and 1"},
		{name: "unknown method", method: http.MethodPost, body: `{"path":"/a","status":500,"method":"PATCH"}`, status: 400, wantBody: "invalid fault: method must be"},
		{name: "SSE event not an object", method: http.MethodPost, body: `{"path":"/a","injectSseEvent":"x"}`, status: 400, wantBody: "injectSseEvent must be an object"},
		{name: "SSE event without data", method: http.MethodPost, body: `{"path":"/a","injectSseEvent":{"eventType":"x"}}`, status: 400, wantBody: "injectSseEvent needs eventType and data"},
		{name: "SSE event type of two lines", method: http.MethodPost, body: `{"path":"/a","injectSseEvent":{"eventType":"a\nb","data":""}}`, status: 400, wantBody: "invalid fault: injectSseEvent.eventType"},
		{name: "bad escape in path", method: http.MethodPost, body: `{"path":"/a%zz","status":500}`, status: 400, wantBody: "invalid percent-encoding in path"},
		{name: "path too long", method: http.MethodPost, body: `{"path":"/` + strings.Repeat("a", 2000) + `","status":500}`, status: 400, wantBody: "path too long"},
		{name: "body too large", method: http.MethodPost, body: `{"path":"/a","status":500,"pad":"` + strings.Repeat("x", 70<<10) + `"}`, status: 413},
	}
	for _, mount := range []string{"", httpapi.StreamPrefix} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s%s", mount, tc.name), func(t *testing.T) {
				var body []byte
				if tc.body != "" {
					body = []byte(tc.body)
				}
				r := e.expect(t, tc.status, tc.method, mount+injectPath, body)
				if !strings.HasPrefix(string(r.body), tc.wantBody) {
					t.Fatalf("body %q, want it to begin with %q", r.body, tc.wantBody)
				}
				switch ct := r.get("Content-Type"); {
				case tc.status == 200 && ct != "application/json":
					t.Errorf("Content-Type %q, want application/json", ct)
				case tc.status != 200 && !strings.HasPrefix(ct, "text/plain"):
					t.Errorf("Content-Type %q, want text/plain", ct)
				}
			})
		}
	}
}

func TestFaultStatusStoresNothing(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	s := sp("s")
	e.createText(t, s, "a")
	e.inject(t, "", `{"path":"/v1/stream/s","status":500,"retryAfter":2,"count":2}`)
	for i := range 2 {
		r := e.expect(t, http.StatusInternalServerError, http.MethodPost, s, []byte("b"), "Content-Type", "text/plain")
		if string(r.body) != "Injected error for testing" {
			t.Fatalf("POST %d: body %q", i, r.body)
		}
		wantHeader(t, r, "Retry-After", "2")
		wantHeader(t, r, "Content-Type", "text/plain")
	}
	if got, _ := e.readAll(t, s); string(got) != "a" {
		t.Fatalf("stream holds %q after injected 500s, want %q", got, "a")
	}
	// The count is used up: the next POST is handled.
	e.expect(t, http.StatusNoContent, http.MethodPost, s, []byte("b"), "Content-Type", "text/plain")
	if got, _ := e.readAll(t, s); string(got) != "ab" {
		t.Fatalf("stream holds %q, want %q", got, "ab")
	}
	if n := e.api.Faults().Armed(); n != 0 {
		t.Fatalf("%d faults armed after their count was used", n)
	}

	// A status without a body, and a HEAD, are answered without one.
	e.inject(t, "", `{"path":"/v1/stream/s","status":204}`)
	r := e.expect(t, http.StatusNoContent, http.MethodGet, s, nil)
	wantNoHeader(t, r, "Retry-After")
	e.inject(t, "", `{"path":"/v1/stream/s","status":503}`)
	if r := e.expect(t, http.StatusServiceUnavailable, http.MethodHead, s, nil); len(r.body) != 0 {
		t.Fatalf("HEAD answered with body %q", r.body)
	}
}

func TestFaultReachableAtRootAndPrefix(t *testing.T) {
	tests := []struct {
		name, mount, path, target string
	}{
		{name: "root, full path", mount: "", path: "/v1/stream/a/b", target: sp("a/b")},
		{name: "prefix, relative path", mount: httpapi.StreamPrefix, path: "/a/b", target: sp("a/b")},
		{name: "prefix, no leading slash", mount: httpapi.StreamPrefix, path: "a/b", target: sp("a/b")},
		{name: "escaped path", mount: httpapi.StreamPrefix, path: "/a%20b", target: sp("a%20b")},
		{name: "unescaped path", mount: "", path: "/v1/stream/a b", target: sp("a%20b")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withTestEndpoints())
			e.createText(t, tc.target, "x")
			e.inject(t, tc.mount, fmt.Sprintf(`{"path":%q,"status":418}`, tc.path))
			e.expect(t, http.StatusTeapot, http.MethodGet, tc.target+"?offset=-1", nil)
			e.expect(t, http.StatusOK, http.MethodGet, tc.target+"?offset=-1", nil)
		})
	}
}

func TestFaultOnlyForItsPath(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	e.createText(t, sp("a"), "x")
	e.createText(t, sp("a/b"), "x")
	e.inject(t, httpapi.StreamPrefix, `{"path":"/a","status":500}`)
	e.expect(t, http.StatusOK, http.MethodGet, sp("a/b")+"?offset=-1", nil)
	e.expect(t, http.StatusInternalServerError, http.MethodGet, sp("a")+"?offset=-1", nil)
}

func TestFaultDeleteClears(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	e.createText(t, sp("a"), "x")
	e.createText(t, sp("b"), "x")
	e.inject(t, "", `{"path":"/v1/stream/a","status":500}`)
	e.inject(t, httpapi.StreamPrefix, `{"path":"/b","status":500}`)
	if n := e.api.Faults().Armed(); n != 2 {
		t.Fatalf("%d faults armed, want 2", n)
	}
	e.expect(t, http.StatusOK, http.MethodDelete, httpapi.StreamPrefix+injectPath, nil)
	for _, s := range []string{sp("a"), sp("b")} {
		e.expect(t, http.StatusOK, http.MethodGet, s+"?offset=-1", nil)
	}
}

func TestFaultReplacesFaultOfSamePath(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	e.createText(t, sp("a"), "x")
	e.inject(t, "", `{"path":"/v1/stream/a","status":500,"count":5}`)
	e.inject(t, "", `{"path":"/v1/stream/a","status":502}`)
	e.expect(t, http.StatusBadGateway, http.MethodGet, sp("a")+"?offset=-1", nil)
	e.expect(t, http.StatusOK, http.MethodGet, sp("a")+"?offset=-1", nil)
}

func TestFaultMethodFilter(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	s := sp("s")
	e.createText(t, s, "a")
	e.inject(t, "", `{"path":"/v1/stream/s","status":503,"method":"post"}`)
	// Other methods neither fire nor use up the fault.
	for range 3 {
		e.expect(t, http.StatusOK, http.MethodGet, s+"?offset=-1", nil)
		e.expect(t, http.StatusOK, http.MethodHead, s, nil)
	}
	e.expect(t, http.StatusServiceUnavailable, http.MethodPost, s, []byte("b"), "Content-Type", "text/plain")
	e.expect(t, http.StatusNoContent, http.MethodPost, s, []byte("b"), "Content-Type", "text/plain")
}

func TestFaultProbability(t *testing.T) {
	tests := []struct {
		name        string
		probability string
		wantStatus  int
		wantArmed   int
	}{
		{name: "never", probability: "0", wantStatus: http.StatusOK, wantArmed: 1},
		{name: "always", probability: "1", wantStatus: http.StatusInternalServerError, wantArmed: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withTestEndpoints())
			e.createText(t, sp("s"), "a")
			e.inject(t, "", `{"path":"/v1/stream/s","status":500,"count":20,"probability":`+tc.probability+`}`)
			for i := range 20 {
				if r := e.do(t, http.MethodGet, sp("s")+"?offset=-1", nil); r.status != tc.wantStatus {
					t.Fatalf("request %d: status %d, want %d", i, r.status, tc.wantStatus)
				}
			}
			if n := e.api.Faults().Armed(); n != tc.wantArmed {
				t.Fatalf("%d faults armed after 20 requests, want %d", n, tc.wantArmed)
			}
		})
	}
}

func TestFaultDelay(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	s := sp("s")
	e.createText(t, s, "a")
	e.inject(t, "", `{"path":"/v1/stream/s","delayMs":50,"jitterMs":10}`)
	start := time.Now()
	r := e.expect(t, http.StatusOK, http.MethodGet, s+"?offset=-1", nil)
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
		t.Fatalf("answered after %v, before the injected delay of 50ms", elapsed)
	}
	if string(r.body) != "a" {
		t.Fatalf("delayed read returned %q", r.body)
	}

	// A client that gives up during the delay ends it (else the server's
	// Close at the end of the test would wait for the five minutes).
	e.inject(t, "", `{"path":"/v1/stream/s","delayMs":300000}`)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := e.request(ctx, http.MethodGet, s+"?offset=-1", nil); err == nil {
		t.Fatal("GET answered during a 5 minute delay")
	}
	e.expect(t, http.StatusOK, http.MethodGet, s+"?offset=-1", nil)
}

func TestFaultDropConnectionHTTP1(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	s := sp("s")
	e.createText(t, s, "a")
	// A fresh connection per request: net/http's client would otherwise
	// resend a GET whose reused connection closed without an answer.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		e.inject(t, "", `{"path":"/v1/stream/s","dropConnection":true,"status":500}`)
		req, err := http.NewRequest(method, e.url+s+"?offset=-1", strings.NewReader("b"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			t.Fatalf("%s with dropConnection: got status %d, want a dropped connection", method, res.StatusCode)
		}
	}
	if got, _ := e.readAll(t, s); string(got) != "a" {
		t.Fatalf("stream holds %q after a dropped POST, want %q", got, "a")
	}
}

func TestFaultDropConnectionHTTP2(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	s := sp("s")
	e.createText(t, s, "a")
	ts := httptest.NewUnstartedServer(e.api.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	client := ts.Client()
	e.inject(t, "", `{"path":"/v1/stream/s","dropConnection":true}`)
	if res, err := client.Get(ts.URL + s + "?offset=-1"); err == nil {
		res.Body.Close()
		t.Fatalf("GET with dropConnection over %s: got status %d, want a reset stream", res.Proto, res.StatusCode)
	}
	// The connection survives: only the faulted request's stream was reset.
	res, err := client.Get(ts.URL + s + "?offset=-1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.ProtoMajor != 2 || res.StatusCode != http.StatusOK || string(body) != "a" {
		t.Fatalf("after the reset: %s %d %q, want HTTP/2 200 %q", res.Proto, res.StatusCode, body, "a")
	}
}

func TestFaultTruncateBody(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	s := sp("s")
	e.createText(t, s, "hello world")
	e.inject(t, "", `{"path":"/v1/stream/s","truncateBodyBytes":5}`)
	r := e.expect(t, http.StatusOK, http.MethodGet, s+"?offset=-1", nil)
	if string(r.body) != "hello" {
		t.Fatalf("truncated read returned %q, want %q", r.body, "hello")
	}
	// Headers are the real ones: the client sees a short body it must
	// detect itself.
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, s, 11))
	if r := e.expect(t, http.StatusOK, http.MethodGet, s+"?offset=-1", nil); string(r.body) != "hello world" {
		t.Fatalf("read after the fault returned %q", r.body)
	}

	// Only a read's data is cut: an error answer is left whole.
	e.inject(t, "", `{"path":"/v1/stream/missing","truncateBodyBytes":2}`)
	if r := e.expect(t, http.StatusNotFound, http.MethodGet, sp("missing")+"?offset=-1", nil); len(r.body) <= 2 {
		t.Fatalf("404 body %q was truncated", r.body)
	}

	// A long-poll's data is cut too.
	tail := e.tok(t, s, 11) // before arming: the HEAD would take the fault
	e.inject(t, "", `{"path":"/v1/stream/s","truncateBodyBytes":1}`)
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = e.request(context.Background(), http.MethodPost, s, []byte("!!"), "Content-Type", "text/plain")
	}()
	r = e.expect(t, http.StatusOK, http.MethodGet, s+"?offset="+tail+"&live=long-poll", nil)
	if string(r.body) != "!" {
		t.Fatalf("truncated long-poll returned %q, want %q", r.body, "!")
	}
}

func TestFaultCorruptBody(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	s := sp("j")
	doc := `[{"event":"a","n":1},{"event":"b","n":2}]`
	e.expect(t, http.StatusCreated, http.MethodPut, s, []byte(doc), "Content-Type", "application/json")
	e.inject(t, httpapi.StreamPrefix, `{"path":"/j","corruptBody":true}`)
	r := e.expect(t, http.StatusOK, http.MethodGet, s+"?offset=-1", nil)
	if len(r.body) != len(doc) || !strings.HasPrefix(string(r.body), "XY") {
		t.Fatalf("corrupted read returned %q, want %d bytes starting XY", r.body, len(doc))
	}
	for i := range r.body {
		if c := r.body[i]; c != doc[i] && c != 'X' && c != 'Y' && c != 'Z' {
			t.Fatalf("byte %d is %q, want %q or a corruption mark", i, c, doc[i])
		}
	}
	if json.Valid(r.body) {
		t.Fatalf("corrupted body %q still parses", r.body)
	}
	if r := e.expect(t, http.StatusOK, http.MethodGet, s+"?offset=-1", nil); string(r.body) != doc {
		t.Fatalf("read after the fault returned %q, want %q", r.body, doc)
	}
}

func TestFaultInjectSSEEvent(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	s := sp("s")
	e.createText(t, s, "hi")
	e.inject(t, "", `{"path":"/v1/stream/s","injectSseEvent":{"eventType":"unknown","data":"{\"x\":1}"}}`)
	sse := e.openSSE(t, s+"?offset=-1&live=sse")
	if ev := sse.next(t, 5*time.Second); ev.event != "unknown" || ev.data != `{"x":1}` {
		t.Fatalf("first event %+v, want the injected one", ev)
	}
	if ev := sse.next(t, 5*time.Second); ev.event != "data" || ev.data != "hi" {
		t.Fatalf("event after the injected one: %+v, want the stream's data", ev)
	}
	if ev := sse.next(t, 5*time.Second); ev.event != "control" {
		t.Fatalf("event %+v, want control", ev)
	}
	// The fault fired once: the next SSE response is plain.
	again := e.openSSE(t, s+"?offset=-1&live=sse")
	if ev := again.next(t, 5*time.Second); ev.event != "data" {
		t.Fatalf("first event of the next response %+v, want data", ev)
	}
}

func TestFaultsFromGo(t *testing.T) {
	faults := httpapi.NewFaults()
	e := newEnv(t, withAPI(func(c *httpapi.Config) { c.Faults = faults }))
	e.createText(t, sp("s"), "a")
	// Without TestEndpoints the HTTP API is off, yet Go-armed faults apply.
	e.expect(t, http.StatusNotFound, http.MethodPost, injectPath, []byte(`{"path":"/v1/stream/s","status":500}`))
	retry := 3
	if err := faults.Inject("/v1/stream/s", httpapi.Fault{Status: 503, RetryAfter: &retry, Method: "get"}); err != nil {
		t.Fatal(err)
	}
	if e.api.Faults() != faults {
		t.Fatal("Server.Faults is not Config.Faults")
	}
	r := e.expect(t, http.StatusServiceUnavailable, http.MethodGet, sp("s")+"?offset=-1", nil)
	wantHeader(t, r, "Retry-After", "3")
	e.expect(t, http.StatusOK, http.MethodGet, sp("s")+"?offset=-1", nil)

	negative, tooLate := -1, 2.0
	invalid := []httpapi.Fault{
		{Status: 700}, {Status: 99}, {Count: -1}, {Delay: -time.Second}, {Delay: time.Hour}, {Jitter: time.Hour},
		{RetryAfter: &negative}, {TruncateBodyBytes: &negative}, {Probability: &tooLate}, {Method: "TRACE"},
		{SSEEvent: &httpapi.SSEEvent{}}, {SSEEvent: &httpapi.SSEEvent{EventType: "a\rb"}},
	}
	for _, f := range invalid {
		if err := faults.Inject("/p", f); !errors.Is(err, httpapi.ErrInvalidFault) {
			t.Errorf("Inject(%+v) = %v, want ErrInvalidFault", f, err)
		}
	}
	if err := faults.Inject("", httpapi.Fault{Status: 500}); !errors.Is(err, httpapi.ErrInvalidFault) {
		t.Errorf("Inject without a path = %v, want ErrInvalidFault", err)
	}
	if n := faults.Armed(); n != 0 {
		t.Fatalf("%d faults armed after invalid injections", n)
	}
}

func TestFaultBound(t *testing.T) {
	e := newEnv(t, withTestEndpoints())
	faults := e.api.Faults()
	for i := range httpapi.MaxArmedFaults {
		if err := faults.Inject(fmt.Sprintf("/p/%d", i), httpapi.Fault{Status: 500}); err != nil {
			t.Fatalf("fault %d: %v", i, err)
		}
	}
	if err := faults.Inject("/one/more", httpapi.Fault{Status: 500}); !errors.Is(err, httpapi.ErrTooManyFaults) {
		t.Fatalf("fault past the bound: %v, want ErrTooManyFaults", err)
	}
	r := e.expect(t, http.StatusServiceUnavailable, http.MethodPost, injectPath, []byte(`{"path":"/one/more","status":500}`))
	if !strings.Contains(string(r.body), "too many armed faults") {
		t.Fatalf("body %q", r.body)
	}
	// Re-arming a path that has a fault replaces it, bound or not.
	e.inject(t, "", `{"path":"/p/0","status":502}`)
	e.expect(t, http.StatusOK, http.MethodDelete, injectPath, nil)
	if n := faults.Armed(); n != 0 {
		t.Fatalf("%d faults armed after DELETE", n)
	}
	e.inject(t, "", `{"path":"/one/more","status":500}`)
}
