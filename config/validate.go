package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard-wamp/switchyard/internal/origin"
)

// rawSocketMaxMessage is the largest message a RawSocket handshake can announce (2^24).
const rawSocketMaxMessage = 1 << 24

// Validate checks c and returns every problem found, each with its field path, in schema
// order; nil means c is usable. It reads the TLS files named by listeners and cluster
// links (existence, readability, that the certificate and key pair up, that the CA
// files hold certificates). Whether the file suits the command that reads it (router or
// proxy) is ClusterRole's question. Validate does not modify c and is safe for concurrent use as long as
// nobody mutates c.
func (c *Config) Validate() []Problem {
	v := &validator{c: c}
	v.enums(reflect.ValueOf(c).Elem(), "")
	if c.Version != 1 {
		v.add("version", "unsupported schema version %d (this switchyard reads version 1)", c.Version)
	}
	v.node(&c.Node)
	if len(c.Listeners) == 0 && !c.IsRouter() {
		// A cluster router may take its sessions only over links.
		v.add("listeners", "no listeners: the node would accept no connections")
	}
	addrs := map[string]int{}
	for i := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		l := &c.Listeners[i]
		if j, dup := addrs[l.Address]; dup && l.Address != "" {
			v.add(p+".address", "%q is also the address of listeners[%d]", l.Address, j)
		} else {
			addrs[l.Address] = i
		}
		v.listener(l, p)
	}
	if len(c.Realms) == 0 {
		v.add("realms", "no realms: no session could join")
	}
	names := map[string]int{}
	cookieRealm := -1
	for i := range c.Realms {
		p := fmt.Sprintf("realms[%d]", i)
		r := &c.Realms[i]
		if j, dup := names[r.Name]; dup && r.Name != "" {
			v.add(p+".name", "realm %q is also realms[%d]", r.Name, j)
		} else {
			names[r.Name] = i
		}
		v.realm(r, p)
		v.unoffered(r, p)
		v.spread(r, p)
		// A listener hands out one cookie, before the realm is known: one name for all.
		if ck := r.Auth.Cookie; ck != nil {
			if cookieRealm < 0 {
				cookieRealm = i
			} else if first := c.Realms[cookieRealm].Auth.Cookie; ck.Name != first.Name || ck.MaxAge != first.MaxAge {
				v.add(p+".auth.cookie", "name and max_age must equal realms[%d]'s (%s, %s): a listener hands out one cookie before the realm is known",
					cookieRealm, first.Name, first.MaxAge)
			}
		}
	}
	if c.Cluster != nil {
		v.cluster(c.Cluster)
	}
	slices.SortStableFunc(v.problems, func(a, b Problem) int {
		return slices.Compare(pathOrder(a.Path), pathOrder(b.Path))
	})
	return v.problems
}

// pathOrder turns a field path into a key that sorts problems in schema order: field
// positions for keys, numbers for list indices.
func pathOrder(path string) []int {
	var key []int
	t := reflect.TypeFor[Config]()
	for seg := range strings.SplitSeq(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		pos := -1
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t != nil && t.Kind() == reflect.Struct {
			for i := range t.NumField() {
				if jsonName(t.Field(i)) == name {
					pos, t = i, t.Field(i).Type
					break
				}
			}
		}
		if pos < 0 {
			t = nil
		}
		key = append(key, pos)
		for rest != "" {
			var n int
			var idx string
			idx, rest, _ = strings.Cut(rest, "]")
			n, _ = strconv.Atoi(idx)
			key = append(key, n)
			rest = strings.TrimPrefix(rest, "[")
			if t != nil && t.Kind() == reflect.Slice {
				t = t.Elem()
			}
		}
	}
	return key
}

type validator struct {
	c        *Config
	problems []Problem
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// enums checks every field with an enum tag (strings and lists of strings).
func (v *validator) enums(val reflect.Value, path string) {
	t := val.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		if name == "" {
			continue
		}
		fv, p := val.Field(i), join(path, name)
		if enum := f.Tag.Get("enum"); enum != "" {
			allowed := strings.Split(enum, ",")
			check := func(s, p string) {
				if !slices.Contains(allowed, s) {
					v.add(p, "%q is not one of %s", s, strings.Join(allowed, ", "))
				}
			}
			if fv.Kind() == reflect.String {
				check(fv.String(), p)
			} else {
				for j := range fv.Len() {
					check(fv.Index(j).String(), fmt.Sprintf("%s[%d]", p, j))
				}
			}
			continue
		}
		switch {
		case fv.Kind() == reflect.Struct && !fv.Addr().Type().Implements(textUnmarshaler):
			v.enums(fv, p)
		case fv.Kind() == reflect.Pointer && !fv.IsNil():
			v.enums(fv.Elem(), p)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			for j := range fv.Len() {
				v.enums(fv.Index(j), fmt.Sprintf("%s[%d]", p, j))
			}
		}
	}
}

func (v *validator) node(n *Node) {
	if n.Loops < 0 {
		v.add("node.loops", "must be 0 (one per CPU) or more, got %d", n.Loops)
	}
	if n.OutboundLimit <= 0 {
		v.add("node.outbound_limit", "must be a positive number of bytes, got %d", n.OutboundLimit)
	}
	if n.OutboundHardLimit < 0 || (n.OutboundHardLimit > 0 && n.OutboundHardLimit < n.OutboundLimit) {
		v.add("node.outbound_hard_limit", "must be 0 (automatic) or at least outbound_limit (%d), got %d", n.OutboundLimit, n.OutboundHardLimit)
	}
	if n.WriteDeadline <= 0 {
		v.add("node.write_deadline", "must be positive, got %s", n.WriteDeadline)
	}
	if n.MaxConnections < 0 {
		v.add("node.max_connections", "must be 0 (derived from the file descriptor limit) or more, got %d", n.MaxConnections)
	}
	if n.ShutdownGrace < 0 {
		v.add("node.shutdown_grace", "must not be negative, got %s", n.ShutdownGrace)
	}
	if n.Admin != "" {
		if err := checkHostPort(n.Admin); err != nil {
			v.add("node.admin", "%v", err)
		}
	}
}

func (v *validator) listener(l *Listener, p string) {
	switch {
	case l.Address == "":
		v.add(p+".address", "required")
	case l.Kind == KindUnix:
		if strings.ContainsRune(l.Address, 0) {
			v.add(p+".address", "not a file path")
		}
	default:
		if err := checkHostPort(l.Address); err != nil {
			v.add(p+".address", "%v", err)
		}
	}
	if l.Kind != KindRawSocket && !strings.HasPrefix(l.Path, "/") {
		v.add(p+".path", "must start with /, got %q", l.Path)
	}
	if len(l.Serializers) == 0 {
		v.add(p+".serializers", "at least one serializer (json, msgpack, cbor)")
	}
	if l.MaxMessageSize <= 0 {
		v.add(p+".max_message_size", "must be a positive number of bytes, got %d", l.MaxMessageSize)
	} else if l.MaxMessageSize > rawSocketMaxMessage && l.Kind != KindWebSocket {
		v.add(p+".max_message_size", "RawSocket messages are limited to %d bytes (16 MiB), got %d", rawSocketMaxMessage, l.MaxMessageSize)
	}
	if l.PingInterval <= 0 {
		v.add(p+".ping_interval", "must be positive, got %s", l.PingInterval)
	}
	if l.PingTimeout <= 0 {
		v.add(p+".ping_timeout", "must be positive, got %s", l.PingTimeout)
	}
	if l.HandshakeTimeout <= 0 {
		v.add(p+".handshake_timeout", "must be positive, got %s", l.HandshakeTimeout)
	}
	if l.TLS != nil {
		if l.Kind == KindUnix {
			v.add(p+".tls", "TLS is not served on Unix domain sockets")
		}
		v.tls(l.TLS, p+".tls")
	}
	if c := l.Compression; c != nil {
		if l.Kind == KindRawSocket {
			v.add(p+".compression", "RawSocket has no compression: compression needs a websocket, universal or unix listener")
		}
		if c.ClientMaxWindowBits < 8 || c.ClientMaxWindowBits > 15 {
			v.add(p+".compression.client_max_window_bits", "must be from 8 to 15, got %d", c.ClientMaxWindowBits)
		}
		if c.Level < 1 || c.Level > 9 {
			v.add(p+".compression.level", "must be from 1 to 9, got %d", c.Level)
		}
		if c.MinSize < 0 {
			v.add(p+".compression.min_size", "must not be negative, got %d", c.MinSize)
		}
	}
	for j, o := range l.AllowedOrigins {
		if err := origin.Check(o); err != nil {
			v.add(fmt.Sprintf("%s.allowed_origins[%d]", p, j), "%v", err)
		}
	}
	if len(l.AllowedOrigins) > 0 && l.Kind == KindRawSocket {
		v.add(p+".allowed_origins", "RawSocket has no Origin header: allowed_origins needs a websocket, universal or unix listener")
	}
	for j, m := range l.Auth {
		mp := fmt.Sprintf("%s.auth[%d]", p, j)
		if !slices.Contains(AuthMethods, m) {
			continue // the enum check reports it
		}
		if !v.methodConfigured(m) {
			v.add(mp, "auth method %q is offered but no realm configures it", m)
		}
		if m == MethodTLS && (l.TLS == nil || l.TLS.ClientCAFile == "") {
			v.add(mp, "auth method tls needs tls.client_ca_file on this listener")
		}
		if m == MethodCookie && l.Kind == KindRawSocket {
			v.add(mp, "auth method cookie needs WebSocket (not a rawsocket listener)")
		}
	}
}

// methodConfigured reports whether some realm can authenticate with method m.
func (v *validator) methodConfigured(m string) bool {
	for i := range v.c.Realms {
		if realmConfigures(&v.c.Realms[i], m) {
			return true
		}
	}
	return false
}

// realmConfigures reports whether realm r can authenticate with method m.
func realmConfigures(r *Realm, m string) bool {
	a := &r.Auth
	if a.Authenticator != nil && slices.Contains(a.Authenticator.Methods, m) {
		return true
	}
	switch m {
	case MethodAnonymous:
		return a.Anonymous != nil
	case MethodTicket:
		return len(a.Ticket) > 0
	case MethodWAMPCRA:
		return len(a.WAMPCRA) > 0
	case MethodCryptosign:
		return len(a.Cryptosign) > 0
	case MethodTLS:
		return len(a.TLS) > 0
	case MethodCookie:
		return a.Cookie != nil
	}
	return false
}

// unoffered flags the auth methods realm r configures that no listener offers (a
// listener with auth left out offers every method): no client could ever use them,
// and a HELLO with one is refused on every listener. A node without listeners (a
// cluster router, reached over links) is not checked.
func (v *validator) unoffered(r *Realm, p string) {
	if len(v.c.Listeners) == 0 {
		return
	}
	var offered []string
	for _, l := range v.c.Listeners {
		if len(l.Auth) == 0 {
			return
		}
		for _, m := range l.Auth {
			if !slices.Contains(offered, m) {
				offered = append(offered, m)
			}
		}
	}
	for _, m := range AuthMethods {
		if !realmConfigures(r, m) || slices.Contains(offered, m) {
			continue
		}
		path := p + ".auth." + m
		if r.Auth.Authenticator != nil && slices.Contains(r.Auth.Authenticator.Methods, m) {
			path = p + ".auth.authenticator.methods"
		}
		v.add(path, "auth method %s is configured but no listener offers it (listeners' auth: %s): add %s to a listener's auth",
			m, strings.Join(offered, ", "), m)
	}
}

func (v *validator) tls(t *TLS, p string) {
	v.keyPair(t.CertFile, t.KeyFile, p+".cert_file", p+".key_file")
	if t.ClientCAFile != "" && v.readable(t.ClientCAFile, p+".client_ca_file") {
		v.caFile(t.ClientCAFile, p+".client_ca_file")
	}
}

// keyPair checks that the required certificate and key files load as a pair.
func (v *validator) keyPair(cert, key, certPath, keyPath string) {
	certOK := v.readable(cert, certPath)
	keyOK := v.readable(key, keyPath)
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			v.add(certPath, "certificate and key do not load as a pair: %v", err)
		}
	}
}

// caFile checks that the readable file name holds PEM certificates.
func (v *validator) caFile(name, p string) {
	pem, _ := os.ReadFile(name)
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		v.add(p, "%s holds no PEM certificate", name)
	}
}

// readable reports whether the required file name exists and can be read.
func (v *validator) readable(name, p string) bool {
	if name == "" {
		v.add(p, "required")
		return false
	}
	st, err := os.Stat(name)
	if err != nil {
		v.add(p, "cannot read: %v", err)
		return false
	}
	if !st.Mode().IsRegular() {
		v.add(p, "%s is not a regular file", name)
		return false
	}
	f, err := os.Open(name)
	if err != nil {
		v.add(p, "cannot read: %v", err)
		return false
	}
	f.Close()
	return true
}

func (v *validator) realm(r *Realm, p string) {
	if r.Name == "" {
		v.add(p+".name", "required")
	} else if err := checkURI(r.Name, "exact"); err != nil {
		v.add(p+".name", "%v", err)
	}
	roles := map[string]int{}
	for i, role := range r.Roles {
		rp := fmt.Sprintf("%s.roles[%d]", p, i)
		if role.Name == "" {
			v.add(rp+".name", "required")
		} else if j, dup := roles[role.Name]; dup {
			v.add(rp+".name", "role %q is also roles[%d]", role.Name, j)
		} else {
			roles[role.Name] = i
		}
		for j, perm := range role.Permissions {
			pp := fmt.Sprintf("%s.permissions[%d]", rp, j)
			if perm.Match != "exact" && perm.Match != "prefix" && perm.Match != "wildcard" {
				continue // the enum check reports it
			}
			if err := checkURI(perm.URI, perm.Match); err != nil {
				v.add(pp+".uri", "%v", err)
			}
		}
	}
	role := func(path, name string) {
		if name == "" {
			v.add(path, "required")
		} else if _, ok := roles[name]; !ok && r.Authorizer == nil {
			v.add(path, "role %q is not defined in %s.roles", name, p)
		}
	}
	a := &r.Auth
	ap := p + ".auth"
	if a.Anonymous != nil {
		role(ap+".anonymous.role", a.Anonymous.Role)
	}
	ids := map[string]bool{}
	authid := func(path, method, id string) {
		if id == "" {
			v.add(path, "required")
		} else if ids[method+"\x00"+id] {
			v.add(path, "authid %q is listed twice for %s", id, method)
		}
		ids[method+"\x00"+id] = true
	}
	for i, t := range a.Ticket {
		pp := fmt.Sprintf("%s.ticket[%d]", ap, i)
		authid(pp+".authid", MethodTicket, t.AuthID)
		if t.Ticket == "" {
			v.add(pp+".ticket", "required")
		}
		role(pp+".role", t.Role)
	}
	for i, w := range a.WAMPCRA {
		pp := fmt.Sprintf("%s.wampcra[%d]", ap, i)
		authid(pp+".authid", MethodWAMPCRA, w.AuthID)
		if w.Secret == "" {
			v.add(pp+".secret", "required")
		}
		if w.Iterations <= 0 {
			v.add(pp+".iterations", "must be positive, got %d", w.Iterations)
		}
		if w.KeyLen <= 0 {
			v.add(pp+".keylen", "must be positive, got %d", w.KeyLen)
		}
		role(pp+".role", w.Role)
	}
	for i, cs := range a.Cryptosign {
		pp := fmt.Sprintf("%s.cryptosign[%d]", ap, i)
		authid(pp+".authid", MethodCryptosign, cs.AuthID)
		if len(cs.AuthorizedKeys) == 0 {
			v.add(pp+".authorized_keys", "at least one Ed25519 public key")
		}
		for j, k := range cs.AuthorizedKeys {
			if err := checkHex32(k, false); err != nil {
				v.add(fmt.Sprintf("%s.authorized_keys[%d]", pp, j), "not an Ed25519 public key: %v", err)
			}
		}
		role(pp+".role", cs.Role)
	}
	for i, t := range a.TLS {
		pp := fmt.Sprintf("%s.tls[%d]", ap, i)
		authid(pp+".authid", MethodTLS, t.AuthID)
		if err := checkHex32(t.Fingerprint, true); err != nil {
			v.add(pp+".fingerprint", "not a SHA-256 fingerprint: %v", err)
		}
		role(pp+".role", t.Role)
	}
	if ck := a.Cookie; ck != nil {
		if ck.Name == "" || strings.ContainsAny(ck.Name, " \t\r\n;,=\"()<>@:\\/[]?{}") {
			v.add(ap+".cookie.name", "%q is not a valid cookie name", ck.Name)
		}
		if ck.MaxAge <= 0 {
			v.add(ap+".cookie.max_age", "must be positive, got %s", ck.MaxAge)
		}
		if ck.File != "" {
			// The node creates the file; its directory must be there.
			if st, err := os.Stat(filepath.Dir(ck.File)); err != nil || !st.IsDir() {
				v.add(ap+".cookie.file", "directory %s does not exist", filepath.Dir(ck.File))
			} else if st, err := os.Stat(ck.File); err == nil && !st.Mode().IsRegular() {
				v.add(ap+".cookie.file", "%s is not a regular file", ck.File)
			}
		}
	}
	if au := a.Authenticator; au != nil {
		pp := ap + ".authenticator"
		if au.Realm == "" {
			v.add(pp+".realm", "required")
		} else if !slices.ContainsFunc(v.c.Realms, func(r Realm) bool { return r.Name == au.Realm }) {
			v.add(pp+".realm", "realm %q is not configured on this node", au.Realm)
		}
		v.procedure(pp+".procedure", au.Procedure)
		if len(au.Methods) == 0 {
			v.add(pp+".methods", "at least one auth method")
		}
	}
	for i, h := range r.History {
		hp := fmt.Sprintf("%s.history[%d]", p, i)
		if h.Match == "exact" || h.Match == "prefix" || h.Match == "wildcard" {
			if err := checkURI(h.URI, h.Match); err != nil {
				v.add(hp+".uri", "%v", err)
			}
		}
		if h.Limit < 1 {
			v.add(hp+".limit", "must be at least 1, got %d", h.Limit)
		}
	}
	if n := r.Limits.RetainedTopics; n < 1 {
		v.add(p+".limits.retained_topics", "must be at least 1, got %d", n)
	}
	if n := r.Limits.HistoryTopics; n < 1 {
		v.add(p+".limits.history_topics", "must be at least 1, got %d", n)
	}
	if az := r.Authorizer; az != nil {
		v.procedure(p+".authorizer.procedure", az.Procedure)
		if az.CacheSize < 0 {
			v.add(p+".authorizer.cache_size", "must be 0 (no cache) or more, got %d", az.CacheSize)
		}
		if az.Timeout < 0 {
			v.add(p+".authorizer.timeout", "must be positive (0: the default 5s), got %s", az.Timeout)
		}
	}
}

func (v *validator) procedure(p, uri string) {
	if uri == "" {
		v.add(p, "required")
	} else if err := checkURI(uri, "exact"); err != nil {
		v.add(p, "%v", err)
	}
}

// checkHostPort accepts "host:port" and ":port" with a numeric port 0-65535.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. \":8080\", \"127.0.0.1:8080\", \"[::1]:8080\")", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

// checkURI checks a WAMP URI (loose rules: no whitespace or '#'); exact URIs must not
// have empty components, prefixes may end in '.', wildcards may have empty components.
func checkURI(uri, match string) error {
	if strings.ContainsAny(uri, " \t\r\n#") {
		return fmt.Errorf("%q is not a WAMP URI: no whitespace or '#'", uri)
	}
	switch match {
	case "exact":
		if uri == "" || slices.Contains(strings.Split(uri, "."), "") {
			return fmt.Errorf("%q is not a WAMP URI: empty component (for patterns, set match: prefix or wildcard)", uri)
		}
	case "prefix":
		if uri != "" && slices.Contains(strings.Split(strings.TrimSuffix(uri, "."), "."), "") {
			return fmt.Errorf("%q: empty component inside a prefix", uri)
		}
	}
	return nil
}

// checkHex32 checks that s is 32 bytes in hex (colons between bytes allowed if colons).
func checkHex32(s string, colons bool) error {
	h := s
	if colons {
		h = strings.ReplaceAll(s, ":", "")
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return fmt.Errorf("%q is not hex", s)
	}
	if len(b) != 32 {
		return fmt.Errorf("%q is %d bytes, want 32 (64 hex digits)", s, len(b))
	}
	return nil
}
