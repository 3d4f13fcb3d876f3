package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/switchyard-wamp/switchyard/web"
)

// web checks the path tree of listener l (at path p).
func (v *validator) web(l *Listener, p string) {
	if len(l.Web) == 0 {
		return
	}
	if l.Kind == KindRawSocket {
		v.add(p+".web", "a rawsocket listener serves no HTTP: web needs a universal, websocket or unix listener")
		return
	}
	seen := map[string]int{}
	for j := range l.Web {
		w := &l.Web[j]
		wp := fmt.Sprintf("%s.web[%d]", p, j)
		if err := web.CheckPath(w.Path); err != nil {
			v.add(wp+".path", "%v", err)
		} else if w.Path == l.Path {
			v.add(wp+".path", "%s is the listener's WebSocket path", w.Path)
		} else if k, dup := seen[w.Path]; dup {
			v.add(wp+".path", "%s is also web[%d]", w.Path, k)
		} else {
			seen[w.Path] = j
		}
		v.webEntry(w, wp)
	}
}

// webEntry checks the fields that the kind of entry w (at path wp) needs.
func (v *validator) webEntry(w *WebPath, wp string) {
	switch w.Kind {
	case WebStatic:
		if w.Directory == "" {
			v.add(wp+".directory", "required for static")
		} else if fi, err := os.Stat(w.Directory); err != nil {
			v.add(wp+".directory", "%v", err)
		} else if !fi.IsDir() {
			v.add(wp+".directory", "%s is not a directory", w.Directory)
		}
		if w.Index == "" || strings.Contains(w.Index, "/") {
			v.add(wp+".index", "a file name, got %q", w.Index)
		}
		if w.MaxAge < 0 {
			v.add(wp+".max_age", "must not be negative")
		}
	case WebRedirect:
		if _, err := web.NewRedirect(w.URL, w.Code); err != nil {
			v.add(wp, "%v", err)
		}
	case WebJSON:
		if !json.Valid([]byte(w.Value)) {
			v.add(wp+".value", "not valid JSON text: %q", w.Value)
		}
	case WebReverseProxy:
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(wp+".url", "want the upstream as http://host:port[/path] or https://..., got %q", w.URL)
		}
	case WebPublisher, WebCaller, WebWebhook:
		v.bridge(w, wp)
	}
}

// bridge checks a publisher, caller or webhook entry.
func (v *validator) bridge(w *WebPath, wp string) {
	ri := slices.IndexFunc(v.c.Realms, func(r Realm) bool { return r.Name == w.Realm })
	if w.Realm == "" {
		v.add(wp+".realm", "required for %s", w.Kind)
	} else if ri < 0 {
		v.add(wp+".realm", "no realm %q in realms", w.Realm)
	}
	if w.Role == "" {
		v.add(wp+".role", "required for %s", w.Kind)
	} else if ri >= 0 {
		r := &v.c.Realms[ri]
		// Without an authorizer, a role the realm does not list may do nothing.
		if r.Authorizer == nil && !slices.ContainsFunc(r.Roles, func(ro Role) bool { return ro.Name == w.Role }) {
			v.add(wp+".role", "role %q is not in realms[%d].roles (and the realm has no authorizer): the bridge could do nothing", w.Role, ri)
		}
	}
	if w.Kind == WebWebhook {
		if err := checkURI(w.Topic, "exact"); err != nil {
			v.add(wp+".topic", "%v", err)
		}
	}
	if w.MaxBody <= 0 {
		v.add(wp+".max_body", "must be a positive number of bytes, got %d", w.MaxBody)
	}
	if w.Rate < 0 || w.Burst < 0 {
		v.add(wp+".rate", "rate and burst must not be negative")
	}
	if w.Timeout <= 0 {
		v.add(wp+".timeout", "must be positive")
	}
	if w.HMAC != nil {
		if w.HMAC.Key == "" {
			v.add(wp+".hmac.key", "required")
		}
		if w.HMAC.Secret == "" {
			v.add(wp+".hmac.secret", "required")
		}
		if w.HMAC.Window <= 0 {
			v.add(wp+".hmac.window", "must be positive")
		}
		if w.Ticket != "" {
			v.add(wp+".ticket", "ticket and hmac are exclusive: pick one")
		}
	}
}
