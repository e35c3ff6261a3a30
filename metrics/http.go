package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/httpapi"
)

// Methods counted by name; anything else is "other".
var methodNames = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, "other"}

const numMethods = len(methodNames)

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodDelete:
		return 4
	case http.MethodOptions:
		return 5
	}
	return numMethods - 1
}

// Status codes counted by code: those streamd answers. Any other code is
// counted under its class ("2xx" ... "5xx"), which keeps the label's values
// a fixed set however a response came to be written.
var statusCodes = [...]int{200, 201, 204, 206, 304, 400, 401, 403, 404, 405, 408, 409, 410, 411, 412, 413, 415, 416, 422, 429, 431, 500, 501, 502, 503, 504}

const numStatus = len(statusCodes) + 5 // classes 1xx-5xx follow the codes

func statusIndex(code int) int {
	switch code {
	case 200:
		return 0
	case 201:
		return 1
	case 204:
		return 2
	case 206:
		return 3
	case 304:
		return 4
	case 400:
		return 5
	case 401:
		return 6
	case 403:
		return 7
	case 404:
		return 8
	case 405:
		return 9
	case 408:
		return 10
	case 409:
		return 11
	case 410:
		return 12
	case 411:
		return 13
	case 412:
		return 14
	case 413:
		return 15
	case 415:
		return 16
	case 416:
		return 17
	case 422:
		return 18
	case 429:
		return 19
	case 431:
		return 20
	case 500:
		return 21
	case 501:
		return 22
	case 502:
		return 23
	case 503:
		return 24
	case 504:
		return 25
	}
	class := min(max(code/100, 1), 5)
	return len(statusCodes) + class - 1
}

func statusLabel(i int) string {
	if i < len(statusCodes) {
		return strconv.Itoa(statusCodes[i])
	}
	return strconv.Itoa(i-len(statusCodes)+1) + "xx"
}

// httpRequests counts requests by route, method and status in a fixed
// array of atomics: no map, lock or label lookup per request.
type httpRequests struct {
	counts [httpapi.NumRoutes][numMethods][numStatus]atomic.Uint64
}

func (h *httpRequests) add(route httpapi.Route, method string, status int) {
	if route >= httpapi.NumRoutes {
		route = httpapi.RouteOther
	}
	h.counts[route][methodIndex(method)][statusIndex(status)].Add(1)
}

// collect emits one counter per combination seen at least once.
func (h *httpRequests) collect(desc *prometheus.Desc, ch chan<- prometheus.Metric) {
	for r := range h.counts {
		for m := range h.counts[r] {
			for s := range h.counts[r][m] {
				if n := h.counts[r][m][s].Load(); n > 0 {
					ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(n),
						methodNames[m], httpapi.Route(r).String(), statusLabel(s))
				}
			}
		}
	}
}
