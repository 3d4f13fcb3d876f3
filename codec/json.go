package codec

import "strconv"

// jsonCodec is the WAMP JSON serializer ("wamp.2.json"). Stateless; safe for concurrent use.
//
// Decode aliases the input: URI and Details strings point into b. The one exception is a
// string holding a JSON escape (\n, \u00e9, ...): its unescaped form cannot alias b, so
// Decode allocates a copy for it (rare for URIs and option values).
type jsonCodec struct{}

func (jsonCodec) Serializer() Serializer { return JSON }

// jdec is the decode cursor.
type jdec struct {
	b []byte
	i int
}

func (d *jdec) fail(m *Message, format string, args ...any) error {
	return invalid(JSON, "%s: "+format, append([]any{m.Type}, args...)...)
}

func (d *jdec) failErr(m *Message, what string, err error) error {
	return wrap(JSON, m.Type.String()+": "+what, err)
}

// uint reads a non-negative integer no larger than limit.
func (d *jdec) uint(limit uint64) (uint64, bool) {
	end, isInt, err := jnumber(d.b, d.i)
	if err != nil || !isInt || d.b[d.i] == '-' {
		return 0, false
	}
	v, ok := parseUintDigits(d.b[d.i:end])
	if !ok || v > limit {
		return 0, false
	}
	d.i = end
	return v, true
}

// int reads an integer that fits int64.
func (d *jdec) int() (int64, bool) {
	end, isInt, err := jnumber(d.b, d.i)
	if err != nil || !isInt {
		return 0, false
	}
	v, perr := strconv.ParseInt(bstr(d.b[d.i:end]), 10, 64)
	if perr != nil {
		return 0, false
	}
	d.i = end
	return v, true
}

// str reads a string; it allocates only when the string holds escapes.
func (d *jdec) str() ([]byte, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, errSyntax
	}
	s, e, esc, next, err := jstring(d.b, d.i)
	if err != nil {
		return nil, err
	}
	d.i = next
	if esc {
		return junescape(make([]byte, 0, e-s), d.b[s:e]), nil
	}
	return d.b[s:e:e], nil
}

// more moves past the separator before element i (i > 0) and reports whether another
// element follows; false means the closing ']' was consumed.
func (d *jdec) more() (bool, error) {
	d.i = jws(d.b, d.i)
	if d.i >= len(d.b) {
		return false, errEOF
	}
	switch d.b[d.i] {
	case ']':
		d.i++
		return false, nil
	case ',':
		d.i = jws(d.b, d.i+1)
		return true, nil
	}
	return false, errSyntax
}

func (jsonCodec) Decode(b []byte, m *Message) error {
	*m = Message{}
	d := jdec{b: b}
	d.i = jws(b, 0)
	if d.i >= len(b) || b[d.i] != '[' {
		return invalid(JSON, "message is not a list")
	}
	d.i = jws(b, d.i+1)
	t, ok := d.uint(1<<64 - 1)
	if !ok {
		return invalid(JSON, "message type is not a non-negative integer")
	}
	sh := shapeOf(t)
	if sh == nil {
		return invalid(JSON, "unknown message type %d", t)
	}
	m.Type = MessageType(t)
	n := 0
	for ; n < int(sh.max); n++ {
		more, err := d.more()
		if err != nil {
			return d.failErr(m, "list", err)
		}
		if !more {
			break
		}
		k := sh.elems[n]
		switch k {
		case eURI:
			if m.URI, err = d.str(); err != nil {
				return d.failErr(m, "element "+strconv.Itoa(n+1)+" (URI): want string", err)
			}
		case eDict:
			start := d.i
			if err := d.dict(m, sh.keys); err != nil {
				return err
			}
			m.Dict = b[start:d.i:d.i]
		case eArgs, eKwargs:
			start := d.i
			if d.i >= len(b) {
				return d.failErr(m, k.String(), errEOF)
			}
			c := b[d.i]
			if k == eKwargs && c != '{' || k == eArgs && c != '[' && c != '"' {
				return d.fail(m, "element %d (%s): wrong type", n+1, k)
			}
			if d.i, err = jskip(b, d.i, 0); err != nil {
				return d.failErr(m, k.String(), err)
			}
			if k == eArgs {
				m.Args = b[start:d.i:d.i]
			} else {
				if c := m.Args[0]; c != '[' {
					return d.fail(m, "ArgumentsKw after a binary payload")
				}
				m.Kwargs = b[start:d.i:d.i]
			}
		default:
			v, ok := d.uint(idLimit(k))
			if !ok {
				return d.fail(m, "element %d (%s): want an integer in [0, %d]", n+1, k, idLimit(k))
			}
			setID(m, k, v)
		}
	}
	if n < int(sh.min) {
		return d.fail(m, "%d elements, want at least %d", n+1, sh.min+1)
	}
	if n == int(sh.max) {
		more, err := d.more()
		if err != nil {
			return d.failErr(m, "list", err)
		}
		if more {
			return d.fail(m, "too many elements, want at most %d", sh.max+1)
		}
	}
	if jws(b, d.i) != len(b) {
		return d.fail(m, "trailing data after the message")
	}
	return nil
}

// dict validates the dict at d.i and fills m.Details with the keys in mask.
func (d *jdec) dict(m *Message, mask uint64) error {
	b := d.b
	if d.i >= len(b) || b[d.i] != '{' {
		return d.fail(m, "Details/Options: want dict")
	}
	if mask == 0 {
		var err error
		if d.i, err = jskip(b, d.i, 0); err != nil {
			return d.failErr(m, "Details/Options", err)
		}
		return nil
	}
	d.i = jws(b, d.i+1)
	if d.i < len(b) && b[d.i] == '}' {
		d.i++
		return nil
	}
	for {
		if d.i >= len(b) || b[d.i] != '"' {
			return d.failErr(m, "Details/Options key", errSyntax)
		}
		s, e, esc, next, err := jstring(b, d.i)
		if err != nil {
			return d.failErr(m, "Details/Options key", err)
		}
		key := b[s:e]
		if esc {
			key = junescape(nil, key)
		}
		d.i = jws(b, next)
		if d.i >= len(b) || b[d.i] != ':' {
			return d.failErr(m, "Details/Options", errSyntax)
		}
		d.i = jws(b, d.i+1)
		bit := detailKey(key) & mask
		if bit != 0 && d.i < len(b) && b[d.i] == 'n' { // null: treat as absent
			bit = 0
		}
		if err := d.detail(m, bit); err != nil {
			return err
		}
		d.i = jws(b, d.i)
		if d.i >= len(b) {
			return d.failErr(m, "Details/Options", errEOF)
		}
		switch b[d.i] {
		case '}':
			d.i++
			return nil
		case ',':
			d.i = jws(b, d.i+1)
		default:
			return d.failErr(m, "Details/Options", errSyntax)
		}
	}
}

// detail reads one dict value into the Details field for bit (skips it when bit is 0).
func (d *jdec) detail(m *Message, bit uint64) error {
	b := d.b
	var err error
	switch {
	case bit == 0:
		if d.i, err = jskip(b, d.i, 0); err != nil {
			return d.failErr(m, "Details/Options", err)
		}
		return nil
	case bit&boolKeys != 0:
		switch {
		case d.i < len(b) && b[d.i] == 't':
			d.i, err = jliteral(b, d.i, "true")
			m.Details.setBool(bit, true)
		case d.i < len(b) && b[d.i] == 'f':
			d.i, err = jliteral(b, d.i, "false")
			m.Details.setBool(bit, false)
		default:
			err = errSyntax
		}
	case bit&strKeys != 0:
		var s []byte
		if s, err = d.str(); err == nil && !m.Details.setStr(bit, s) {
			return d.fail(m, "option %s: bad value %q", keyName(bit), s)
		}
	case bit&idKeys != 0:
		v, ok := d.uint(maxID)
		if !ok {
			err = errSyntax
		}
		m.Details.setUint(bit, v)
	case bit&rawKeys != 0:
		start := d.i
		if d.i, err = jskip(b, d.i, 0); err == nil {
			if msg := checkRawKey(JSON, bit, b[start:d.i]); msg != "" {
				return d.fail(m, "option %s: %s", keyName(bit), msg)
			}
			m.Details.setRaw(bit, b[start:d.i])
		}
	case bit&intKeys != 0:
		v, ok := d.int()
		if !ok {
			err = errSyntax
		}
		m.Details.Has |= bit
		m.Details.Timeout = v
	}
	if err != nil {
		return d.failErr(m, "option "+keyName(bit)+": wrong type", err)
	}
	return nil
}

func (jsonCodec) Append(dst []byte, m *Message) ([]byte, error) {
	sh := shapeOf(uint64(m.Type))
	if sh == nil {
		return dst, encErr(JSON, "unknown message type %d", uint8(m.Type))
	}
	n := appendCount(sh, m)
	dst = append(dst, '[')
	dst = strconv.AppendUint(dst, uint64(m.Type), 10)
	for i := 0; i < n; i++ {
		dst = append(dst, ',')
		switch k := sh.elems[i]; k {
		case eURI:
			dst = jappendString(dst, m.URI)
		case eDict:
			var err error
			if dst, err = appendDict(dst, JSON, m); err != nil {
				return dst, err
			}
		case eArgs:
			if m.Args == nil {
				dst = append(dst, '[', ']')
			} else {
				dst = append(dst, m.Args...)
			}
		case eKwargs:
			dst = append(dst, m.Kwargs...)
		default:
			dst = strconv.AppendUint(dst, getID(m, k), 10)
		}
	}
	return append(dst, ']'), nil
}

// appendDict writes m's dict element: Dict raw, else DictAny, else the Details keys.
// Shared by all codecs.
func appendDict(dst []byte, s Serializer, m *Message) ([]byte, error) {
	switch {
	case m.Dict != nil:
		return append(dst, m.Dict...), nil
	case m.DictAny != nil:
		return AppendValue(dst, s, m.DictAny)
	}
	d := &m.Details
	dst = appendMapHead(dst, s, numDetails(d))
	first := true
	for _, k := range detailOrder {
		if d.Has&k.bit == 0 {
			continue
		}
		if s == JSON && !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendKey(dst, s, k.name)
		if s == JSON {
			dst = append(dst, ':')
		}
		switch {
		case k.bit&boolKeys != 0:
			dst = appendBool(dst, s, d.getBool(k.bit))
		case k.bit&strKeys != 0:
			dst = appendStrBytes(dst, s, d.getStr(k.bit))
		case k.bit&idKeys != 0:
			dst = appendUint(dst, s, d.getUint(k.bit))
		case k.bit&rawKeys != 0:
			dst = append(dst, *d.rawField(k.bit)...)
		default:
			dst = appendInt(dst, s, d.Timeout)
		}
	}
	return appendEnd(dst, s, '}'), nil
}
