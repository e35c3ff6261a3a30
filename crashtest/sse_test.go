package crashtest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"net/http"
	"strings"
)

// sseEvent is one Server-Sent Event: its type and its data lines joined by
// "\n" (the SSE rule).
type sseEvent struct {
	typ, data string
}

// readEvent reads the next event. It returns io.EOF when the response ends
// cleanly between events; an event cut off by the end of the response is
// discarded, as SSE requires, and reported as io.ErrUnexpectedEOF.
func readEvent(br *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	var data []string
	started := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && line == "" && !started {
				return ev, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return ev, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if !started {
				continue
			}
			ev.data = strings.Join(data, "\n")
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			continue // comment
		}
		started = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ") // SSE strips one space after the colon
		switch field {
		case "event":
			ev.typ = value
		case "data":
			data = append(data, value)
		}
	}
}

// sseControl is the JSON of a control event (§5.8).
type sseControl struct {
	StreamNextOffset string `json:"streamNextOffset"`
	StreamCursor     string `json:"streamCursor"`
	UpToDate         bool   `json:"upToDate"`
	StreamClosed     bool   `json:"streamClosed"`
}

// sseReader tails s with live=sse from offset -1 while the cycle runs. Like a
// client it resumes at the last control event's streamNextOffset; it does so
// every few control events, so resumption is exercised too, and it stops at
// streamClosed. What it has seen when each connection ends is recorded, to
// be verified after the restart like the other readers' observations.
func (h *harness) sseReader(s *stream, seed int64, stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	rng := rand.New(rand.NewSource(seed))
	o := observation{s: s, next: "-1", sse: true}
	for round := 0; round < 1000; round++ {
		done := h.sseSession(ctx, &o, 3+rng.Intn(30))
		if o.next != "-1" || len(o.seen) > 0 || len(o.msgs) > 0 {
			h.record(o)
		}
		if done {
			return
		}
	}
}

// sseSession reads one SSE response from o.next until maxControls control
// events arrived (false: reconnect), or the stream closed, or the connection
// broke (true: stop), adding what it saw to o.
func (h *harness) sseSession(ctx context.Context, o *observation, maxControls int) bool {
	s := o.s
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url(s)+"?offset="+o.next+"&live=sse", nil)
	resp, err := h.client.Do(req)
	if err != nil {
		return true // streamd was killed
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 && h.termSent.Load() {
		// Draining after a SIGTERM: no new live reads.
		h.drained(func(d *drainCounts) { d.sseRefused++ })
		return true
	}
	if resp.StatusCode != http.StatusOK {
		h.violate("%s: SSE at offset %s got status %d", s.name, o.next, resp.StatusCode)
		return true
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		h.violate("%s: SSE response has Content-Type %q", s.name, ct)
		return true
	}
	// §5.8: binary streams are base64-encoded and say so; JSON streams are not.
	if enc := resp.Header.Get("Stream-SSE-Data-Encoding"); (enc == "base64") == s.isJSON() {
		h.violate("%s: SSE Stream-SSE-Data-Encoding %q for content type %s", s.name, enc, s.ctype())
		return true
	}
	br := bufio.NewReader(resp.Body)
	// Data of a data event not yet followed by its control event.
	var pend []byte
	var pendMsgs []json.RawMessage
	for n := 0; n < maxControls; {
		ev, err := readEvent(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the response (as a graceful stop
				// does): resume like a client.
				h.drained(func(d *drainCounts) { d.sseClean++ })
				return false
			}
			h.drained(func(d *drainCounts) { d.sseCut++ })
			// Killed, or cut off. streamd sends only durable data, so
			// even data whose control event was lost must survive;
			// nothing is resent after this, so it can join what was seen.
			o.seen = append(o.seen, pend...)
			o.msgs = append(o.msgs, pendMsgs...)
			return true
		}
		switch ev.typ {
		case "data":
			if s.isJSON() {
				var m []json.RawMessage
				if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
					h.violate("%s: SSE data event is not a JSON array: %v: %q", s.name, err, ev.data)
					return true
				}
				pendMsgs = append(pendMsgs, m...)
				continue
			}
			// §5.8: drop the line breaks between data lines, then decode.
			b, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\n", "", "\r", "").Replace(ev.data))
			if err != nil {
				h.violate("%s: SSE data event is not base64: %v", s.name, err)
				return true
			}
			pend = append(pend, b...)
		case "control":
			var c sseControl
			if err := json.Unmarshal([]byte(ev.data), &c); err != nil || c.StreamNextOffset == "" {
				h.violate("%s: bad SSE control event %q (%v)", s.name, ev.data, err)
				return true
			}
			if !c.StreamClosed && c.StreamCursor == "" {
				h.violate("%s: SSE control event of an open stream without streamCursor: %q", s.name, ev.data)
			}
			o.seen, o.msgs = append(o.seen, pend...), append(o.msgs, pendMsgs...)
			pend, pendMsgs = nil, nil
			o.next, o.at = c.StreamNextOffset, len(o.seen)
			if s.isJSON() {
				o.at = len(o.msgs)
			}
			n++
			if c.StreamClosed {
				o.closed = true
				// §5.8: the server closes the connection after the final control event.
				if ev, err := readEvent(br); err == nil {
					h.violate("%s: SSE event %q after streamClosed", s.name, ev.typ)
				}
				return true
			}
		default:
			h.violate("%s: unknown SSE event type %q", s.name, ev.typ)
			return true
		}
	}
	return false
}
