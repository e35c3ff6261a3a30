package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/protocol"
)

// sseWriter writes SSE events to one client.
type sseWriter struct {
	w            *echo.Response
	rc           *http.ResponseController
	s            *Server
	textual      bool
	offsets      protocol.OffsetSegments // of the incarnation being read
	clientCursor string
	// cursor is the last cursor sent; "" before the first control event.
	// Later events continue from it so the cursors a client sees never
	// decrease (§10.1).
	cursor string
	buf    []byte
}

// control appends a control event (§5.8).
func (sw *sseWriter) control(next uint64, upToDate, closed bool) {
	b := append(sw.buf, "event: control\ndata:{\"streamNextOffset\":\""...)
	b = append(b, sw.offsets.Format(next)...)
	b = append(b, '"')
	if closed {
		b = append(b, ",\"streamClosed\":true,\"upToDate\":true"...)
	} else {
		if sw.cursor == "" {
			sw.cursor = sw.s.cfg.Cursor.Next(sw.clientCursor)
		} else {
			sw.cursor = sw.s.cfg.Cursor.Continue(sw.cursor)
		}
		b = append(b, ",\"streamCursor\":\""...)
		b = append(b, sw.cursor...)
		b = append(b, '"')
		if upToDate {
			b = append(b, ",\"upToDate\":true"...)
		}
	}
	sw.buf = append(b, "}\n\n"...)
}

// flush sends buffered events to the client.
func (sw *sseWriter) flush() error {
	if len(sw.buf) == 0 {
		return nil
	}
	_, err := sw.w.Write(sw.buf)
	sw.buf = sw.buf[:0]
	if err == nil {
		err = sw.rc.Flush()
	}
	return err
}

// serveSSE streams the stream from pos as Server-Sent Events: catch-up from
// storage in chunks, then live deltas from the stream actor. A subscriber
// that falls behind is dropped by the actor and resumes from storage here,
// transparently to the client. The response ends when the stream closes or
// is deleted, the client leaves, SSEReconnectInterval passes (§10.2), or
// the server drains for shutdown; the client then reconnects from the last
// offset it was given.
func (s *Server) serveSSE(c echo.Context, path string, snap *actors.Snapshot, pos uint64, clientCursor string) error {
	// Taken before the response starts, so a reader past a bound gets its
	// 429 or 503 rather than a stream that ends at once.
	slot, err := s.streams.OpenLive(c.Request().Context(), path)
	if err != nil {
		return err
	}
	defer slot.Close()
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no")
	textual := protocol.IsTextual(snap.ContentType)
	if !textual {
		h.Set(protocol.HeaderStreamSSEDataEncoding, "base64")
	}
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), s: s, textual: textual, offsets: snap.Offsets, clientCursor: clientCursor}
	if err := sw.flush(); err != nil {
		return nil
	}
	ctx := c.Request().Context()
	deadline := time.NewTimer(s.cfg.SSEReconnectInterval)
	defer deadline.Stop()
	sentControl := false
	for {
		select {
		case <-s.cfg.Draining:
			return nil
		default:
		}
		_, cur, err := s.streams.Open(ctx, path)
		if err != nil || cur.ID != snap.ID {
			return nil // deleted, expired, replaced or shutting down: end the response
		}
		if pos < cur.Tail {
			ch, err := s.sequentialChunk(cur, pos)
			if err != nil {
				s.log.Error("sse catch-up read", "path", path, "err", err)
				return nil
			}
			sw.buf = actors.AppendSSEData(sw.buf, ch.body, textual)
			s.release(ch)
			sw.control(ch.end, ch.upToDate, ch.closed)
			sentControl = true
			pos = ch.end
			if err := sw.flush(); err != nil || ch.closed {
				return nil
			}
			continue
		}
		if cur.Closed {
			sw.control(pos, true, true)
			_ = sw.flush()
			return nil
		}
		if !sentControl {
			sw.control(pos, true, false)
			sentControl = true
			if err := sw.flush(); err != nil {
				return nil
			}
		}
		sub, err := s.streams.Subscribe(ctx, path, pos)
		if errors.Is(err, actors.ErrBehind) {
			continue
		}
		if err != nil {
			return nil
		}
		done, err := s.live(sw, sub, &pos, deadline.C, ctx.Done(), s.cfg.Draining)
		sub.Close()
		if done || err != nil {
			return nil
		}
	}
}

// live relays deltas from a subscription until it ends. It reports done
// when the response should end; otherwise the caller resumes from storage.
func (s *Server) live(sw *sseWriter, sub *actors.Subscription, pos *uint64, deadline <-chan time.Time, gone, draining <-chan struct{}) (bool, error) {
	for {
		select {
		case d, ok := <-sub.C:
			if !ok {
				return false, nil
			}
			if d.Deleted {
				return true, nil
			}
			if d.Start != *pos {
				return false, nil
			}
			if d.End > d.Start {
				// Encoded once per commit and shared by every subscriber.
				sw.buf = append(sw.buf, d.SSEData(sw.textual)...)
			}
			sw.control(d.End, true, d.Closed)
			*pos = d.End
			err := sw.flush()
			sub.Done(d)
			if err != nil {
				return true, err
			}
			if d.Closed {
				return true, nil
			}
		case <-deadline:
			return true, nil
		case <-gone:
			return true, nil
		case <-draining:
			return true, nil
		}
	}
}

// formatTTL renders a TTL header value.
func formatTTL(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
