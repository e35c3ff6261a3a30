package httpapi

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/actors"
)

// Limit names, as reported by Rejections and in the flags that set them
// (docs/OPERATIONS.md lists what a client sees at each).
const (
	LimitConnections         = "max-connections"
	LimitLiveReaders         = actors.LimitLiveReaders
	LimitLiveReadersOfStream = actors.LimitLiveReadersOfStream
	LimitPendingAppends      = actors.LimitPendingAppends
	LimitProducers           = actors.LimitProducers
	LimitBodyMemory          = "max-body-memory"
	LimitReadTimeout         = "read-timeout"
	LimitShutdown            = "shutdown"
)

// limitNames fixes the set of counters, so Rejections needs no lock.
var limitNames = [...]string{
	LimitConnections, LimitLiveReaders, LimitLiveReadersOfStream, LimitPendingAppends,
	LimitProducers, LimitBodyMemory, LimitReadTimeout, LimitShutdown,
}

// Rejections counts requests refused at a bound, per limit name.
type Rejections struct {
	counts [len(limitNames)]atomic.Int64
}

// Add counts one rejection at limit; unknown names are ignored.
func (r *Rejections) Add(limit string) {
	for i, n := range limitNames {
		if n == limit {
			r.counts[i].Add(1)
			return
		}
	}
}

// Snapshot returns the counts by limit name.
func (r *Rejections) Snapshot() map[string]int64 {
	out := make(map[string]int64, len(limitNames))
	for i, n := range limitNames {
		out[n] = r.counts[i].Load()
	}
	return out
}

// retryAfterSeconds is the Retry-After sent with 429 and 503 answers: the
// bounds it guards free up as requests finish, which takes about this long.
const retryAfterSeconds = "1"

// overloaded is the answer at a bound: 429 for a bound of one stream, 503
// for one of the whole server, with Retry-After either way.
func overloaded(limit string, status int, msg string) *apiError {
	e := newError(status, msg).with("Retry-After", retryAfterSeconds)
	e.limit = limit
	return e
}

// byteBudget bounds bytes held across requests (request bodies in memory).
// Reservations never block: past the budget the request is refused.
type byteBudget struct {
	limit int64
	used  atomic.Int64
}

// reserve takes n bytes if they fit and reports whether they did.
func (b *byteBudget) reserve(n int64) bool {
	if n <= 0 {
		return true
	}
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

// release returns n reserved bytes.
func (b *byteBudget) release(n int64) {
	if n > 0 {
		b.used.Add(-n)
	}
}

// h2DeadlineFrom is how many response bytes an HTTP/2 response writes
// before its writes get deadlines. Setting one on an HTTP/2 stream is a
// message to the connection's serving goroutine and a timer, too dear for
// each of tens of thousands of small live answers; and writes below the
// stream's initial flow-control window (64 KiB) cannot block on a reader.
// A connection whose reader stops altogether is closed by
// http.HTTP2Config.WriteByteTimeout instead.
const h2DeadlineFrom = 32 << 10

// writeDeadlineSetter is implemented by net/http's HTTP/1.x and HTTP/2
// response writers.
type writeDeadlineSetter interface {
	SetWriteDeadline(time.Time) error
}

// deadlineWriter drops a client that stops reading, instead of letting it
// hold a goroutine and its buffers forever: every write gets a deadline of
// about timeout, and writes larger than writePiece go out in pieces of that
// size, each with its own, so a slow client that keeps reading (at least
// writePiece per timeout) is not cut off. The deadline is moved forward at
// most every timeout/8, so it costs a clock read per piece and a deadline
// update per response, and a piece gets at least 7/8 of timeout.
type deadlineWriter struct {
	http.ResponseWriter
	setter  writeDeadlineSetter
	timeout time.Duration
	h2      bool
	written int64
	armed   time.Time
}

func newDeadlineWriter(w http.ResponseWriter, r *http.Request, timeout time.Duration) http.ResponseWriter {
	setter, ok := w.(writeDeadlineSetter)
	if !ok || timeout <= 0 {
		return w
	}
	return &deadlineWriter{ResponseWriter: w, setter: setter, timeout: timeout, h2: r.ProtoMajor == 2}
}

func (w *deadlineWriter) arm(n int) {
	w.written += int64(n)
	if w.h2 && w.written < h2DeadlineFrom {
		return
	}
	now := time.Now()
	if now.Sub(w.armed) < w.timeout/8 {
		return
	}
	w.armed = now
	_ = w.setter.SetWriteDeadline(now.Add(w.timeout))
}

func (w *deadlineWriter) WriteHeader(code int) {
	w.arm(0)
	w.ResponseWriter.WriteHeader(code)
}

// writePiece is the largest write given one deadline. Smaller pieces
// would let slower clients through, but each piece is a chunk of its own
// on the wire: with 64 KiB pieces a 1 MiB catch-up response took 16
// writes, and catch-up reads ran at 1,050 MiB/s instead of 1,490-1,610.
const writePiece = 1 << 20

func (w *deadlineWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), writePiece)
		w.arm(n)
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// FlushError flushes buffered data (http.ResponseController.Flush).
func (w *deadlineWriter) FlushError() error {
	w.arm(0)
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
