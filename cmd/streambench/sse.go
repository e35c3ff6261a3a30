package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
)

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	Type string // "message" when the event had no event: field
	Data string // data: lines joined with "\n"
	ID   string // last event ID seen so far
}

// sseReader parses an event stream following the WHATWG rules: lines end
// in CRLF, LF or CR; ":" starts a comment; one space after the field's
// colon is dropped; data: lines are joined with "\n"; a blank line
// dispatches the event unless it had no data: line at all.
type sseReader struct {
	sc     *bufio.Scanner
	first  bool
	lastID string
}

// maxSSELine bounds one line: a base64 data line of a 1 MiB chunk is ~1.4 MB.
const maxSSELine = 16 << 20

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSSELine)
	sc.Split(scanSSELines)
	return &sseReader{sc: sc, first: true}
}

// scanSSELines splits on CRLF, LF or lone CR. A trailing line without an
// end of line at EOF is dropped: its event is incomplete.
func scanSSELines(data []byte, atEOF bool) (int, []byte, error) {
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0:
		if atEOF {
			return len(data), nil, nil
		}
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i], nil
	case i+1 < len(data):
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	case atEOF:
		return i + 1, data[:i], nil
	}
	return 0, nil, nil // a CR at the end of the buffer: CRLF or CR?
}

// Next returns the next event, io.EOF at the end of the stream (an
// incomplete last event is discarded) or a read error.
func (r *sseReader) Next() (sseEvent, error) {
	var typ string
	var data []byte
	hasData := false
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if r.first {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
			r.first = false
		}
		if len(line) == 0 {
			if !hasData {
				typ = ""
				continue
			}
			if typ == "" {
				typ = "message"
			}
			return sseEvent{Type: typ, Data: string(data), ID: r.lastID}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			typ = string(value)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.lastID = string(value)
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}

// sseControl is the JSON payload of an `event: control` (§5.8).
type sseControl struct {
	StreamNextOffset string `json:"streamNextOffset"`
	StreamCursor     string `json:"streamCursor"`
	UpToDate         bool   `json:"upToDate"`
	StreamClosed     bool   `json:"streamClosed"`
}

func parseControl(data string) (sseControl, error) {
	var c sseControl
	err := json.Unmarshal([]byte(data), &c)
	return c, err
}

// decodeSSEData returns the bytes of a data event: the text itself, or for
// binary streams (stream-sse-data-encoding: base64) the decoded payload
// with the line breaks between data: lines removed.
func decodeSSEData(data string, b64 bool) ([]byte, error) {
	if !b64 {
		return []byte(data), nil
	}
	return base64.StdEncoding.DecodeString(strings.NewReplacer("\n", "", "\r", "").Replace(data))
}
