package netpoll

import (
	"bytes"
	"errors"
	"strconv"
)

// maxHTTPHeader bounds an HTTP request head (request line + headers).
const maxHTTPHeader = 8 << 10

var (
	errHTTPTooLarge = errors.New("netpoll: http request head over 8 KiB")
	errHTTPBad      = errors.New("netpoll: malformed http request")
	crlfcrlf        = []byte("\r\n\r\n")
	notFoundPage    = []byte("<!doctype html><html><head><title>404</title></head><body><h1>404 not found</h1></body></html>\n")
)

// readHTTP accumulates an HTTP request head in gnet's buffer; once complete it either
// upgrades to WebSocket (GET Path with Upgrade: websocket), hands the conn to net/http
// (a listener with a Web handler, handoff.go), or serves the status page (universal
// listeners, per Listener.StatusPage; websocket-only listeners answer 404) and closes.
// Returns the bytes consumed (0 while the head is incomplete).
func (c *Conn) readHTTP() int {
	gc := c.gc
	avail := gc.InboundBuffered()
	buf, _ := gc.Peek(min(avail, maxHTTPHeader))
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		if avail >= maxHTTPHeader {
			c.loop.wbuf = appendHTTPResponse(c.loop.wbuf, 431, "Request Header Fields Too Large", nil, false)
			c.protocolClose(0, "http request refused", errHTTPTooLarge)
		}
		return 0
	}
	req := buf[:end+4]
	method, path, ok := parseRequestLine(req)
	if !ok {
		c.loop.wbuf = appendHTTPResponse(c.loop.wbuf, 400, "Bad Request", nil, false)
		c.protocolClose(0, "http request refused", errHTTPBad)
		gc.Discard(len(req))
		return len(req)
	}
	s := c.srv
	switch {
	case path == c.ln.Path && hasUpgradeWebSocket(req):
		c.upgradeWS(req)
	case path == c.ln.Path:
		c.loop.wbuf = appendHTTPResponse(c.loop.wbuf, 426, "Upgrade Required",
			[]byte("WebSocket upgrade required\n"), method == "HEAD")
		c.closeWith(0, nil)
	case c.ln.Web != nil:
		c.handOff() // consumes the whole inbound buffer
		return len(req)
	case method != "GET" && method != "HEAD":
		c.loop.wbuf = appendHTTPResponse(c.loop.wbuf, 405, "Method Not Allowed", nil, false)
		c.closeWith(0, nil)
	case path == "/" && c.ln.Kind == KindUniversal && c.ln.StatusPage != StatusOff:
		body := c.ln.minPage
		if c.ln.StatusPage == StatusFull && s.cfg.StatusPage != nil {
			body = s.cfg.StatusPage()
		}
		c.loop.wbuf = appendHTTPResponse(c.loop.wbuf, 200, "OK", body, method == "HEAD")
		c.closeWith(0, nil)
	default:
		c.loop.wbuf = appendHTTPResponse(c.loop.wbuf, 404, "Not Found", notFoundPage, method == "HEAD")
		c.closeWith(0, nil)
	}
	gc.Discard(len(req))
	return len(req)
}

// parseRequestLine returns the method and the path (query stripped) of "GET /p?q HTTP/1.1".
func parseRequestLine(req []byte) (method, path string, ok bool) {
	line := req
	if i := bytes.IndexByte(req, '\r'); i >= 0 {
		line = req[:i]
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return "", "", false
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 || !bytes.HasPrefix(rest[sp2+1:], []byte("HTTP/")) {
		return "", "", false
	}
	uri := rest[:sp2]
	if i := bytes.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	return string(line[:sp1]), string(uri), true
}

// hasUpgradeWebSocket reports whether the head has "Upgrade: websocket".
func hasUpgradeWebSocket(req []byte) bool {
	for lines := req; len(lines) > 0; {
		i := bytes.Index(lines, []byte("\r\n"))
		if i < 0 {
			break
		}
		line := lines[:i]
		lines = lines[i+2:]
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(k), []byte("Upgrade")) {
			continue
		}
		for tok := range bytes.SplitSeq(v, []byte(",")) {
			if bytes.EqualFold(bytes.TrimSpace(tok), []byte("websocket")) {
				return true
			}
		}
	}
	return false
}

func appendHTTPResponse(b []byte, code int, status string, body []byte, head bool) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, status...)
	b = append(b, "\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nConnection: close\r\n\r\n"...)
	if !head {
		b = append(b, body...)
	}
	return b
}
