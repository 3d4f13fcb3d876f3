package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// Static serves the files below a directory: the index file for a directory, ETag and
// Last-Modified with their conditional requests (304), byte ranges (206) and a
// Cache-Control header. Files are opened through an os.Root, so no path (".."
// segments, symbolic links) can leave the directory. No directory listings.
type Static struct {
	root   *os.Root
	index  string
	maxAge time.Duration
}

// NewStatic opens dir. index is the file served for a directory ("" = index.html);
// maxAge > 0 sends "Cache-Control: public, max-age=N", else "no-cache" (caches
// revalidate with the ETag every time). The directory stays open for the life of the
// process. Safe for concurrent use.
func NewStatic(dir, index string, maxAge time.Duration) (*Static, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("web: static directory: %w", err)
	}
	if index == "" {
		index = "index.html"
	}
	if strings.Contains(index, "/") {
		return nil, fmt.Errorf("web: static index %q: a file name, not a path", index)
	}
	return &Static{root: root, index: index, maxAge: maxAge}, nil
}

// ServeHTTP serves the file at r.URL.Path below the directory. Safe for concurrent use.
func (s *Static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if getOnly(w, r) {
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "."
	}
	f, err := s.root.Open(name)
	if err != nil {
		NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		NotFound(w, r)
		return
	}
	if fi.IsDir() {
		if orig := OriginalPath(r); !strings.HasSuffix(orig, "/") {
			// Relative links in the index must resolve below the directory.
			target := orig + "/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		_ = f.Close()
		if f, err = s.root.Open(path.Join(name, s.index)); err != nil {
			NotFound(w, r)
			return
		}
		defer f.Close()
		if fi, err = f.Stat(); err != nil || fi.IsDir() {
			NotFound(w, r)
			return
		}
	}
	if !fi.Mode().IsRegular() {
		NotFound(w, r)
		return
	}
	h := w.Header()
	// Strong validator from size and modification time: a changed file gets a new one.
	h.Set("ETag", `"`+strconv.FormatInt(fi.ModTime().UnixNano(), 36)+"-"+strconv.FormatInt(fi.Size(), 36)+`"`)
	if s.maxAge > 0 {
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(s.maxAge/time.Second)))
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	// ServeContent answers If-None-Match / If-Modified-Since (304), Range (206,
	// multipart for several ranges, 416) and sets Content-Type from the extension.
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// Redirect answers every request with a redirect to a fixed URL.
type Redirect struct {
	url  string
	code int
}

// NewRedirect checks target (an absolute URL or a path) and code (301, 302, 303, 307
// or 308; 0 = 302). Safe for concurrent use.
func NewRedirect(target string, code int) (*Redirect, error) {
	if code == 0 {
		code = http.StatusFound
	}
	switch code {
	case 301, 302, 303, 307, 308:
	default:
		return nil, fmt.Errorf("web: redirect code %d (want 301, 302, 303, 307 or 308)", code)
	}
	u, err := url.Parse(target)
	if err != nil || target == "" || (u.Scheme == "" && !strings.HasPrefix(target, "/")) {
		return nil, fmt.Errorf("web: redirect target %q: want an absolute URL or a path", target)
	}
	return &Redirect{url: target, code: code}, nil
}

// ServeHTTP redirects. Safe for concurrent use.
func (d *Redirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, d.url, d.code)
}

// JSON serves one fixed JSON value.
type JSON struct {
	body []byte
}

// NewJSON checks that value is one JSON text and keeps a compact copy of it. Safe for
// concurrent use.
func NewJSON(value string) (*JSON, error) {
	var v any
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		return nil, fmt.Errorf("web: json value: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("web: json value: %w", err)
	}
	return &JSON{body: append(b, '\n')}, nil
}

// ServeHTTP writes the value (GET and HEAD). Safe for concurrent use.
func (j *JSON) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if getOnly(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(j.body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(j.body)
}

// NewReverseProxy forwards requests to upstream (http or https URL; its path is
// prepended to the request's rest of path): any method, bodies streamed both ways,
// WebSocket and other upgrades carried through (net/http/httputil.ReverseProxy hijacks
// the client conn and copies bytes both ways). X-Forwarded-For, -Host and -Proto are
// set. An unreachable upstream answers 502 and logs a line at warn. The handler is safe
// for concurrent use.
func NewReverseProxy(upstream string, log *slog.Logger) (http.Handler, error) {
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("web: reverse proxy upstream %q: want http://host[:port][/path] or https://...", upstream)
	}
	if log == nil {
		log = slog.Default()
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if !errors.Is(err, http.ErrAbortHandler) {
				log.Warn("web: reverse proxy: upstream failed", "upstream", upstream, "path", OriginalPath(r), "error", err)
			}
			http.Error(w, "bad gateway", http.StatusBadGateway)
		},
	}, nil
}

// NodeInfo serves the node info page: page() is called for every GET or HEAD and its
// bytes sent as HTML. This is the "nodeinfo" path kind; what the page says is up to the
// caller (the node passes its status page). Safe for concurrent use if page is.
func NodeInfo(page func() []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if getOnly(w, r) {
			return
		}
		body := page()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
