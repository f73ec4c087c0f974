package core

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OutcomeKind says whether the listener answered at all.
type OutcomeKind int

// The kinds of outcome a POST can have; the host maps its transport errors
// onto them.
const (
	OutcomeHTTP    OutcomeKind = iota // the listener answered with a status code
	OutcomeTimeout                    // no complete answer within the request timeout
	OutcomeRefused                    // the connection was refused: nothing listens there
	OutcomeError                      // any other transport error (DNS, TLS, reset, …)
)

// Outcome is what came back from one POST.
type Outcome struct {
	Kind       OutcomeKind
	Code       int    // the HTTP status when Kind == OutcomeHTTP
	RetryAfter string // the raw Retry-After header, "" if none
}

// Label is the forward_requests_total{code} label (DESIGN 4.5): the HTTP
// code in decimal, or "timeout", "refused", "error".
func (o Outcome) Label() string {
	switch o.Kind {
	case OutcomeHTTP:
		return strconv.Itoa(o.Code)
	case OutcomeTimeout:
		return "timeout"
	case OutcomeRefused:
		return "refused"
	}
	return "error"
}

// Action is what the host does with the batch in flight after an answer.
type Action int

// The three ways to resolve a batch; each maps to one Buffer call.
const (
	ActAck        Action = iota // delivered: Buffer.Ack
	ActRetry                    // keep it: Buffer.Nack, then Next again no earlier than RetryAt, with Limits
	ActDeadLetter               // never deliverable: Buffer.DeadLetter(Reason)
)

// String names the action for traces and logs.
func (a Action) String() string {
	switch a {
	case ActAck:
		return "ack"
	case ActRetry:
		return "retry"
	case ActDeadLetter:
		return "dead_letter"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is the policy's verdict on one answer.
type Decision struct {
	Action    Action
	Reason    DropReason // with ActDeadLetter: DropPoison or DropTooLarge
	RetryAt   time.Time  // with ActRetry: do not send before this (SendAt returns it too)
	ReloadKey bool       // the listener answered 401: re-read the API key file before retrying
}

// answerClass groups the answers that the policy treats alike.
type answerClass int

const (
	classFailure  answerClass = iota // other 5xx, 1xx, odd codes, transport errors: counts toward the breaker
	classOK                          // 2xx
	classThrottle                    // 408, 429, 503: wait, without counting toward the breaker
	classTooLarge                    // 413
	classPoison                      // 400, 422
	classConfig                      // 3xx, 401, 403, 404, 405, 410 and any other 4xx
)

// classify maps an outcome to its class (DESIGN 4.2). A 4xx this policy
// does not know is a configuration error rather than poison: we never drop
// records because of an answer we do not understand.
func classify(o Outcome) answerClass {
	c := o.Code
	switch {
	case o.Kind != OutcomeHTTP:
		return classFailure
	case c >= 200 && c <= 299:
		return classOK
	case c == 408 || c == 429 || c == 503:
		return classThrottle
	case c == 413:
		return classTooLarge
	case c == 400 || c == 422:
		return classPoison
	case c >= 300 && c <= 499:
		return classConfig
	}
	return classFailure
}

// httpDateLayouts are the three date formats HTTP/1.1 accepts (RFC 9110
// 5.6.7), as net/http's ParseTime tries them. The zone is the literal GMT
// the RFC mandates, parsed in UTC, so the result never depends on the
// host's local zone database.
var httpDateLayouts = []string{
	"Mon, 02 Jan 2006 15:04:05 GMT",  // IMF-fixdate (RFC 1123)
	"Monday, 02-Jan-06 15:04:05 GMT", // RFC 850
	"Mon Jan _2 15:04:05 2006",       // asctime
}

// maxRetryAfterSeconds bounds a delta-seconds value before it becomes a
// Duration; any value this large is clamped to MaxOpenFor anyway.
const maxRetryAfterSeconds = 1 << 31

// parseRetryAfter returns the wait a Retry-After header asks for,
// relative to now, and whether it could be read: delta-seconds (digits
// only) or an HTTP date. The result may be negative or huge: the caller
// clamps it.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > maxRetryAfterSeconds {
			n = maxRetryAfterSeconds // only digits, so err is overflow: "very long"
		}
		return time.Duration(n) * time.Second, true
	}
	for _, layout := range httpDateLayouts {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.Sub(now), true
		}
	}
	return 0, false
}

// describe names an outcome for humans: "401 Unauthorized", "timeout".
func describe(o Outcome) string {
	switch o.Kind {
	case OutcomeTimeout:
		return "timeout"
	case OutcomeRefused:
		return "connection refused"
	case OutcomeError:
		return "transport error"
	}
	if t := statusTexts[o.Code]; t != "" {
		return strconv.Itoa(o.Code) + " " + t
	}
	return "HTTP " + strconv.Itoa(o.Code)
}

// statusTexts holds the reason phrases of the codes an operator is likely
// to see (net/http's StatusText is out of reach: core does no networking).
// Only looked up by key, so map order never matters.
var statusTexts = map[int]string{
	100: "Continue", 200: "OK", 202: "Accepted", 204: "No Content",
	300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
	304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
	404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
	408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required",
	413: "Content Too Large", 415: "Unsupported Media Type", 421: "Misdirected Request",
	422: "Unprocessable Content", 426: "Upgrade Required", 429: "Too Many Requests",
	500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
	503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}

// configHint tells the operator what to check after a configuration error.
func configHint(code int) string {
	switch {
	case code >= 300 && code <= 399:
		return "check forward.url (redirects are not followed: it must name the listener itself)"
	case code == 401:
		return "check forward.api_key (BITVILLE_APMD_API_KEY, api_key_file, api_key)"
	case code == 403:
		return "check forward.api_key: the listener refuses this key"
	case code == 404 || code == 405 || code == 410:
		return "check forward.url"
	case code == 415:
		return "check forward.gzip and the listener's accepted content types"
	}
	return "check forward.url and the listener's version; nothing is dropped"
}
