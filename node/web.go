package node

import (
	"fmt"
	"net/http"
	"time"

	"github.com/switchyard-wamp/switchyard/bridge"
	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/web"
)

// Web path kinds (WebPath.Kind).
const (
	WebStatic       = "static"
	WebRedirect     = "redirect"
	WebJSON         = "json"
	WebReverseProxy = "reverseproxy"
	WebNodeInfo     = "nodeinfo"
	WebPublisher    = "publisher"
	WebCaller       = "caller"
	WebWebhook      = "webhook"
)

// WebPath is one entry of a listener's web path tree (config.WebPath says what each
// field means). Plain data.
type WebPath struct {
	Path      string
	Kind      string
	Directory string        // static
	Index     string        // static; "" = index.html
	MaxAge    time.Duration // static
	URL       string        // redirect target, reverseproxy upstream
	Code      int           // redirect; 0 = 302
	Value     string        // json, as JSON text
	Realm     string        // bridges
	Role      string        // bridges: authrole
	AuthID    string        // bridges; "" = http-bridge
	Topic     string        // webhook
	Timeout   time.Duration // caller; 0 = 30s
	Guard     bridge.GuardConfig
}

// webTree builds the http.Handler of listener l's Web entries (nil when it has none).
func (n *Node) webTree(i int, l Listener) (http.Handler, error) {
	if len(l.Web) == 0 {
		return nil, nil
	}
	var routes []web.Route
	for j, w := range l.Web {
		h, subtree, err := n.webHandler(l, w)
		if err != nil {
			return nil, fmt.Errorf("node: listener %d: web[%d] (%s): %w", i, j, w.Path, err)
		}
		routes = append(routes, web.Route{Path: w.Path, Subtree: subtree, Handler: h})
	}
	t, err := web.NewTree(routes)
	if err != nil {
		return nil, fmt.Errorf("node: listener %d: %w", i, err)
	}
	return t, nil
}

// webHandler builds the handler of one entry and says whether it serves a subtree.
func (n *Node) webHandler(l Listener, w WebPath) (http.Handler, bool, error) {
	log := n.cfg.Logger
	switch w.Kind {
	case WebStatic:
		h, err := web.NewStatic(w.Directory, w.Index, w.MaxAge)
		return h, true, err
	case WebRedirect:
		h, err := web.NewRedirect(w.URL, w.Code)
		return h, false, err
	case WebJSON:
		h, err := web.NewJSON(w.Value)
		return h, false, err
	case WebReverseProxy:
		h, err := web.NewReverseProxy(w.URL, log)
		return h, true, err
	case WebNodeInfo:
		return web.NodeInfo(n.nodeInfoPage(l)), false, nil
	case WebPublisher, WebCaller, WebWebhook:
		g, err := bridge.NewGuard(w.Guard)
		if err != nil {
			return nil, false, err
		}
		authid := w.AuthID
		if authid == "" {
			authid = "http-bridge"
		}
		if w.Realm == "" || w.Role == "" {
			return nil, false, fmt.Errorf("%s needs a realm and a role", w.Kind)
		}
		var s bridge.Session
		if n.cfg.Cluster != nil { // a proxy: the session lives on a router
			s = bridge.NewClusterSession(n.cfg.Cluster, w.Realm, authid, w.Role)
		} else {
			s = bridge.NewEngineSession(n.Router, w.Realm, authid, w.Role)
		}
		switch w.Kind {
		case WebPublisher:
			return bridge.Publisher(s, g, log), false, nil
		case WebCaller:
			return bridge.Caller(s, g, w.Timeout, log), false, nil
		}
		if w.Topic == "" {
			return nil, false, fmt.Errorf("webhook needs a topic")
		}
		return bridge.Webhook(s, w.Topic, g, log), false, nil
	}
	return nil, false, fmt.Errorf("unknown kind %q", w.Kind)
}

// nodeInfoPage is what a nodeinfo entry serves: the page the listener's StatusPage mode
// selects ("off" too serves the minimal page: the entry was asked for explicitly).
func (n *Node) nodeInfoPage(l Listener) func() []byte {
	if l.StatusPage == "full" && n.cfg.StatusPage != nil {
		return func() []byte { return n.cfg.StatusPage(n) }
	}
	page := netpoll.MinimalPage(l.Path, l.Serializers)
	return func() []byte { return page }
}
