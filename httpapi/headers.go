package httpapi

import "net/http"

// Canonical forms (textproto.CanonicalMIMEHeaderKey) of header names set on
// hot paths. Note "Etag": Go's canonical form of ETag; HTTP names are
// case-insensitive, so clients see the same header.
const (
	headerETag               = "Etag"
	headerCacheControl       = "Cache-Control"
	headerContentType        = "Content-Type"
	headerContentTypeOptions = "X-Content-Type-Options"
	headerResourcePolicy     = "Cross-Origin-Resource-Policy"
	headerAllowOrigin        = "Access-Control-Allow-Origin"
	headerExposeHeaders      = "Access-Control-Expose-Headers"
)

// setHeader stores one value under key, which must be in canonical form.
// Unlike http.Header.Set it neither canonicalises the key nor validates it:
// a woken long-poll reader gets about ten headers, and on a 10,000-reader
// wake-up that work is a measurable share of the server's CPU.
func setHeader(h http.Header, key, value string) {
	h[key] = []string{value}
}

// fixedHeaders holds the header values every response carries. The slices
// are shared by all responses and never written to: net/http only reads
// them, and len == cap, so an Add on one response copies instead of
// writing into the shared array.
type fixedHeaders struct {
	nosniff, crossOrigin, anyOrigin, exposed []string
	upToDate, closed, noStore, catchUp       []string
	varyEncoding                             []string
}

// newFixedHeaders builds the shared values; privateCache makes cacheable
// answers "private" (Config.PrivateCache).
func newFixedHeaders(privateCache bool) fixedHeaders {
	one := func(v string) []string { return []string{v}[:1:1] }
	return fixedHeaders{
		nosniff:      one("nosniff"),
		crossOrigin:  one("cross-origin"),
		anyOrigin:    one("*"),
		exposed:      one(exposedResponseHeaders),
		upToDate:     one("true"),
		closed:       one("true"),
		noStore:      one(cacheNever),
		catchUp:      one(catchUpValue(cacheScope(privateCache), catchUpMaxAge, catchUpStaleRevalidate)),
		varyEncoding: one("Accept-Encoding"),
	}
}
