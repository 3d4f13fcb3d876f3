package config

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Problem is one thing wrong with a configuration: the field path in the file's terms
// (e.g. "realms[0].roles[1].permissions[0].match") and a message. Path is empty for a
// problem with the whole file (a syntax error). Plain data.
type Problem struct {
	Path    string
	Message string
}

// String formats p as "path: message" (or only the message when Path is empty).
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// LoadError is the error of Load and Parse: every problem found while reading the file
// (syntax, unknown keys, wrong types, unparsable durations, unresolved environment
// references), each with its field path. Plain data.
type LoadError struct {
	File     string // file name; empty for Parse
	Problems []Problem
	// Partial is the configuration as far as it decoded (nil after a syntax error):
	// unknown keys are skipped and a field with a problem keeps its zero value. It lets
	// `switchyard check` report the value problems (Validate) in the same run; never run
	// it. Failed lists the paths of the fields that did not decode, whose Validate
	// problems only repeat the ones in Problems.
	Partial *Config
	Failed  []string
}

// ValidatePartial is Validate of Partial without the problems of the fields that did
// not decode (Failed) and of what they hold; nil when there is no Partial.
func (e *LoadError) ValidatePartial() []Problem {
	if e.Partial == nil {
		return nil
	}
	var out []Problem
next:
	for _, p := range e.Partial.Validate() {
		for _, f := range e.Failed {
			if p.Path == f || strings.HasPrefix(p.Path, f+".") || strings.HasPrefix(p.Path, f+"[") {
				continue next
			}
		}
		out = append(out, p)
	}
	return out
}

// Error joins the problems, one per line, prefixed by the file name.
func (e *LoadError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if e.File != "" {
			b.WriteString(e.File + ": ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Format names the syntax of a configuration file.
type Format string

// The formats Parse reads. FormatAuto picks JSON when the first non-blank byte is '{',
// YAML otherwise (JSON is valid YAML too, but the JSON reader gives better errors).
const (
	FormatAuto Format = ""
	FormatYAML Format = "yaml"
	FormatJSON Format = "json"
)

// ParseOptions tells Parse how to read a configuration. The zero value reads YAML or
// JSON (auto), resolves environment references with os.Getenv and leaves relative file
// paths as they are.
type ParseOptions struct {
	Format Format
	// Getenv resolves "${env:NAME}" references in secret fields; nil means os.Getenv.
	Getenv func(string) string
	// Dir is the directory relative file paths (TLS files, cookie file) are resolved
	// against; empty leaves them relative to the working directory.
	Dir string
}

// Load reads the configuration file at path: YAML (.yaml, .yml) or JSON (.json), or
// detected from the content for any other name. Keys the file leaves out take their
// defaults; environment references are resolved with os.Getenv; relative file paths are
// made relative to the file's directory. The error is a *LoadError listing every problem
// with its path (or the read error). Load does not apply environment overrides
// (ApplyEnv) and does not Validate. Safe for concurrent use.
func Load(path string) (*Config, error) {
	return LoadOverlay(path, nil)
}

// LoadOverlay is Load with the top-level keys of shared (nil: none) replacing the
// file's, as ParseOverlay: a cluster node following a master reads its own file with
// the cluster config version's shared part. Safe for concurrent use.
func LoadOverlay(path string, shared map[string]any) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	opts := ParseOptions{Dir: filepath.Dir(path)}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		opts.Format = FormatYAML
	case ".json":
		opts.Format = FormatJSON
	}
	var c *Config
	if shared == nil {
		c, err = Parse(data, opts)
	} else {
		c, err = ParseOverlay(data, opts, shared)
	}
	var le *LoadError
	if errors.As(err, &le) {
		le.File = path
	}
	return c, err
}

// Parse decodes a configuration from data (see Load). It never panics, whatever the
// input. Safe for concurrent use.
func Parse(data []byte, opts ParseOptions) (*Config, error) {
	raw, err := parseTree(data, opts.Format)
	if err != nil {
		return nil, &LoadError{Problems: []Problem{{Message: err.Error()}}}
	}
	return decodeTree(raw, opts)
}

// ParseOverlay is Parse of data with some top-level keys replaced by those of shared
// (the JSON form of config keys, as a master's cluster config version holds them:
// "realms" and its like): a node applies the cluster's shared part over its own file.
// Safe for concurrent use.
func ParseOverlay(data []byte, opts ParseOptions, shared map[string]any) (*Config, error) {
	raw, err := parseTree(data, opts.Format)
	if err != nil {
		return nil, &LoadError{Problems: []Problem{{Message: err.Error()}}}
	}
	top, ok := raw.(map[string]any)
	if raw == nil || !ok {
		top = map[string]any{}
		if raw != nil {
			return decodeTree(raw, opts) // reports the bad top level
		}
	}
	// The shared part goes through JSON so that its values have the shapes the decoder
	// reads from a file (json.Number, not float64).
	b, err := json.Marshal(shared)
	if err != nil {
		return nil, &LoadError{Problems: []Problem{{Message: "shared config: " + err.Error()}}}
	}
	over, err := parseTree(b, FormatJSON)
	if err != nil {
		return nil, &LoadError{Problems: []Problem{{Message: "shared config: " + err.Error()}}}
	}
	if m, ok := over.(map[string]any); ok {
		for k, v := range m {
			top[k] = v
		}
	}
	return decodeTree(top, opts)
}

// decodeTree decodes a parsed file (see Parse).
func decodeTree(raw any, opts ParseOptions) (*Config, error) {
	d := &decoder{getenv: opts.Getenv, dir: opts.Dir}
	if d.getenv == nil {
		d.getenv = os.Getenv
	}
	if raw == nil {
		raw = map[string]any{}
	}
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, &LoadError{Problems: []Problem{{Message: "the file must hold a mapping (an object) at the top level, got " + kindOf(raw)}}}
	}
	c := &Config{}
	d.value(top, reflect.ValueOf(c).Elem(), "", reflect.StructField{})
	if v, ok := top["listeners"]; !ok || v == nil {
		c.Listeners = DefaultListeners()
	}
	if v, ok := top["realms"]; !ok || v == nil {
		c.Realms = DefaultRealms()
	}
	if len(d.problems) > 0 {
		return nil, &LoadError{Problems: d.problems, Partial: c, Failed: d.failed}
	}
	return c, nil
}

// parseTree reads YAML or JSON into generic values (maps, slices, strings, json.Number,
// bools, nil).
func parseTree(data []byte, f Format) (any, error) {
	if f == FormatAuto {
		f = FormatYAML
		if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
			f = FormatJSON
		}
	}
	if f == FormatYAML {
		j, err := yaml.YAMLToJSONStrict(data)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
			return nil, fmt.Errorf("YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		}
		data = j
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, nil
		}
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("JSON: unexpected data after the top-level value")
	}
	return v, nil
}

// jsonError adds a line and column to a JSON syntax error.
func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset <= int64(len(data)) {
		before := data[:se.Offset]
		line := bytes.Count(before, []byte("\n")) + 1
		col := len(before) - bytes.LastIndexByte(before, '\n')
		return fmt.Errorf("JSON: line %d, column %d: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))
	}
	return fmt.Errorf("JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// decoder walks the generic tree and the Config type together, collecting problems.
type decoder struct {
	getenv   func(string) string
	dir      string
	problems []Problem
	failed   []string // paths of the fields that did not decode (see LoadError.Failed)
}

// fail records a problem with the value at path (the field keeps its zero value).
func (d *decoder) fail(path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	d.failed = append(d.failed, path)
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	envRef          = regexp.MustCompile(`^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$`)
)

// value decodes raw (never nil) into v; f is the struct field v belongs to (its tags).
func (d *decoder) value(raw any, v reflect.Value, path string, f reflect.StructField) {
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		s, ok := raw.(string)
		if !ok {
			d.fail(path, "expected a string, got %s", kindOf(raw))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.fail(path, "%s", err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.fail(path, "expected a mapping, got %s", kindOf(raw))
			return
		}
		d.structure(m, v, path)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		d.value(raw, v.Elem(), path, f)
	case reflect.Slice:
		l, ok := raw.([]any)
		if !ok {
			d.fail(path, "expected a list, got %s", kindOf(raw))
			return
		}
		if len(l) == 0 {
			v.SetZero()
			return
		}
		s := reflect.MakeSlice(v.Type(), len(l), len(l))
		for i, e := range l {
			p := fmt.Sprintf("%s[%d]", path, i)
			if e == nil {
				d.fail(p, "empty list element")
				continue
			}
			d.value(e, s.Index(i), p, f)
		}
		v.Set(s)
	case reflect.String:
		var s string
		switch r := raw.(type) {
		case string:
			s = r
		case json.Number:
			s = r.String()
		default:
			d.fail(path, "expected a string, got %s (quote it)", kindOf(raw))
			return
		}
		d.setString(v, s, path, f)
	case reflect.Int:
		n, ok := raw.(json.Number)
		if !ok {
			d.fail(path, "expected an integer, got %s", kindOf(raw))
			return
		}
		i, err := parseInt(n.String())
		if err != nil {
			d.fail(path, "expected an integer, got %s", n)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			d.fail(path, "expected true or false, got %s", kindOf(raw))
			return
		}
		v.SetBool(b)
	default:
		d.fail(path, "internal error: unsupported field type %s", v.Type())
	}
}

// structure decodes a mapping into a struct: known keys are decoded, absent (or null)
// keys take their defaults, unknown keys are problems.
func (d *decoder) structure(m map[string]any, v reflect.Value, path string) {
	t := v.Type()
	known := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		if name == "" {
			continue
		}
		known[name] = true
		if raw, ok := m[name]; ok && raw != nil {
			d.value(raw, v.Field(i), join(path, name), f)
		} else {
			setFieldDefault(v.Field(i), f)
		}
	}
	var unknown []string
	for k := range m {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		msg := fmt.Sprintf("unknown key %q", k)
		if s := suggest(k, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		d.problems = append(d.problems, Problem{Path: path, Message: msg})
	}
}

// setString stores s, resolving environment references in secret fields and relative
// paths in file fields.
func (d *decoder) setString(v reflect.Value, s, path string, f reflect.StructField) {
	if m := envRef.FindStringSubmatch(s); m != nil {
		if f.Tag.Get("secret") != "true" {
			d.fail(path, "%s: environment references are resolved only in secret fields (use an environment override, see docs/config.md)", s)
			return
		}
		val := d.getenv(m[1])
		if val == "" {
			d.fail(path, "environment variable %s (referenced as %s) is not set or empty", m[1], s)
			return
		}
		s = val
	}
	if f.Tag.Get("file") == "true" && s != "" && d.dir != "" && !filepath.IsAbs(s) {
		s = filepath.Join(d.dir, s)
	}
	v.SetString(s)
}

// parseInt accepts integers, also written in exponent form ("1e6").
func parseInt(s string) (int64, error) {
	if i, err := strconv.ParseInt(s, 10, 0); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f > math.MaxInt || f < math.MinInt {
		return 0, fmt.Errorf("not an integer")
	}
	return int64(f), nil
}

// setDefaults fills the zero fields of the struct p points to (recursively through
// nested structs, not through pointers or lists) from their default tags.
func setDefaults(p any) {
	v := reflect.ValueOf(p).Elem()
	t := v.Type()
	for i := range t.NumField() {
		if v.Field(i).IsZero() {
			setFieldDefault(v.Field(i), t.Field(i))
		}
	}
}

// setFieldDefault sets a zero field to its default tag (a nested struct gets its own
// field defaults).
func setFieldDefault(v reflect.Value, f reflect.StructField) {
	if def, ok := f.Tag.Lookup("default"); ok {
		if err := setScalar(v, def); err != nil {
			panic(fmt.Sprintf("config: bad default tag on %s: %v", f.Name, err))
		}
		return
	}
	if v.Kind() == reflect.Struct && !v.Addr().Type().Implements(textUnmarshaler) {
		setDefaults(v.Addr().Interface())
	}
}

// setScalar parses s into a scalar field: string, int, bool, Duration or a list of
// strings (comma separated). Used by default tags and environment overrides.
func setScalar(v reflect.Value, s string) error {
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int:
		i, err := parseInt(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("expected an integer, got %q", s)
		}
		v.SetInt(i)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("expected true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", v.Type())
		}
		var l []string
		for e := range strings.SplitSeq(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				l = append(l, e)
			}
		}
		v.Set(reflect.ValueOf(l))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// jsonName is the key of a struct field ("" when the field is not part of the schema).
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func kindOf(raw any) string {
	switch r := raw.(type) {
	case nil:
		return "nothing"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("the string %q", r)
	case json.Number:
		return "the number " + r.String()
	case bool:
		return "the boolean " + strconv.FormatBool(r)
	}
	return fmt.Sprintf("%T", raw)
}

// suggest returns the known key closest to k when it is a likely typo.
func suggest(k string, known map[string]bool) string {
	best, bestD := "", 3
	for c := range known {
		if dist := editDistance(k, c); dist < bestD || dist == bestD && c < best {
			best, bestD = c, dist
		}
	}
	if bestD > 2 || bestD >= len(k) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
