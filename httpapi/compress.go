package httpapi

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// minCompressBytes: smaller bodies are not worth the CPU and header bytes.
const minCompressBytes = 1024

// compressors pools gzip and zlib writers; building one allocates ~800 KiB.
type compressors struct {
	gzip, deflate sync.Pool
}

func newCompressors() *compressors {
	return &compressors{
		gzip:    sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }},
		deflate: sync.Pool{New: func() any { w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed); return w }},
	}
}

type resetWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// negotiateEncoding picks gzip or deflate from Accept-Encoding, honouring q=0.
func negotiateEncoding(accept string) string {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "deflate" {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if q > bestQ || (q == bestQ && name == "gzip") {
			best, bestQ = name, q
		}
	}
	if bestQ <= 0 {
		return ""
	}
	return best
}

// writeEncoded writes a catch-up body in the content coding enc ("" for
// identity), chosen by responseEncoding. Live responses (SSE, long-poll
// waits) never come here.
func (s *Server) writeEncoded(c echo.Context, contentType string, body []byte, enc string) error {
	h := c.Response().Header()
	if enc == "" {
		return c.Blob(http.StatusOK, contentType, body)
	}
	pool := &s.pools.gzip
	if enc == encodingDeflate {
		pool = &s.pools.deflate
	}
	zw := pool.Get().(resetWriter)
	defer pool.Put(zw)
	var buf bytes.Buffer
	buf.Grow(len(body) / 3)
	zw.Reset(&buf)
	if _, err := zw.Write(body); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	h.Set(echo.HeaderContentEncoding, enc)
	return c.Blob(http.StatusOK, contentType, buf.Bytes())
}
