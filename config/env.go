package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// ApplyEnv overrides the fields that have an env tag from the environment: for each
// such field, a non-empty getenv(NAME) replaces the value (strings as is, integers,
// booleans, durations like "10s", lists comma separated). In list elements, "{i}" in the
// name stands for the element's index: SWITCHYARD_LISTENERS_0_ADDRESS overrides
// listeners[0].address. Optional blocks that the file leaves out (a listener's tls) are
// not created by the environment. The error joins every unparsable value, naming the
// variable and the field path. ApplyEnv mutates c: do not call it concurrently with
// any other use of c.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	var errs []error
	applyEnv(reflect.ValueOf(c).Elem(), "", "", getenv, &errs)
	return errors.Join(errs...)
}

// applyEnv walks struct v; idx is the index of the innermost enclosing list element.
func applyEnv(v reflect.Value, path, idx string, getenv func(string) string, errs *[]error) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		if name == "" {
			continue
		}
		fv, p := v.Field(i), join(path, name)
		if env := f.Tag.Get("env"); env != "" {
			env = strings.ReplaceAll(env, "{i}", idx)
			if s := getenv(env); s != "" {
				if err := setScalar(fv, s); err != nil {
					*errs = append(*errs, fmt.Errorf("%s (overrides %s): %v", env, p, err))
				}
			}
			continue
		}
		switch {
		case fv.Kind() == reflect.Struct && !fv.Addr().Type().Implements(textUnmarshaler):
			applyEnv(fv, p, idx, getenv, errs)
		case fv.Kind() == reflect.Pointer && !fv.IsNil():
			applyEnv(fv.Elem(), p, idx, getenv, errs)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			for j := range fv.Len() {
				applyEnv(fv.Index(j), fmt.Sprintf("%s[%d]", p, j), strconv.Itoa(j), getenv, errs)
			}
		}
	}
}

// EnvVar describes one environment override, for documentation.
type EnvVar struct {
	Name string // e.g. SWITCHYARD_LOG_LEVEL or SWITCHYARD_LISTENERS_{i}_ADDRESS
	Path string // field path, e.g. node.log_level or listeners[i].address
	Doc  string
}

// EnvVars lists every environment override in schema order. Safe for concurrent use.
func EnvVars() []EnvVar {
	var out []EnvVar
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := jsonName(f)
			if name == "" {
				continue
			}
			p := join(path, name)
			if env := f.Tag.Get("env"); env != "" {
				out = append(out, EnvVar{Name: env, Path: p, Doc: f.Tag.Get("doc")})
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft, p = ft.Elem(), p+"[i]"
			}
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(textUnmarshaler) {
				walk(ft, p)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}
