package auth

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/distribution/reference"
)

// The token spec's grammar: resourcetype = [a-z0-9]+ with an optional "(class)"; resourcename =
// [hostname '/'] component ['/' component]* (distribution/reference's name grammar).
var (
	scopeType = regexp.MustCompile(`^[a-z0-9]+(?:\([a-z0-9]+\))?$`)
	scopeName = regexp.MustCompile(`^(?:` + reference.NameRegexp.String() + `)$`)
)

// Scope is one resource scope "type:name:action[,action]".
type Scope struct {
	Type    string // "repository", "registry", …
	Name    string // may contain one ':' (host:port/name)
	Actions []string
}

// String formats s as in a token request or challenge.
func (s Scope) String() string {
	return s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// ParseScopes parses a scope parameter: one or more resource scopes separated by spaces
// (docs/content/spec/auth/scope.md of distribution). Type is the text before the first ':'
// (a deprecated "(class)" suffix is dropped), actions the text after the last ':', and the name
// is in between, so "repository:localhost:5000/x:pull" names "localhost:5000/x".
//
// Written by hand: distribution's server-side parser (registry/auth/token) is not a dependency,
// and the containerd and ggcr scope helpers only format scopes.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.Fields(s) {
		first := strings.Index(f, ":")
		last := strings.LastIndex(f, ":")
		if first <= 0 || last == first || last == first+1 {
			return nil, fmt.Errorf("invalid scope %q: want type:name:actions", f)
		}
		typ, name, acts := f[:first], f[first+1:last], f[last+1:]
		if !utf8.ValidString(f) || !scopeType.MatchString(typ) {
			return nil, fmt.Errorf("invalid scope %q: bad resource type", f)
		}
		if len(name) > 255 || !scopeName.MatchString(name) {
			return nil, fmt.Errorf("invalid scope %q: bad resource name", f)
		}
		if i := strings.Index(typ, "("); i > 0 && strings.HasSuffix(typ, ")") {
			typ = typ[:i]
		}
		sc := Scope{Type: typ, Name: name}
		for _, a := range strings.Split(acts, ",") {
			if a == "" {
				continue
			}
			if a != "*" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyz") != "" {
				return nil, fmt.Errorf("invalid scope %q: bad action %q", f, a)
			}
			if !slices.Contains(sc.Actions, a) {
				sc.Actions = append(sc.Actions, a)
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

// grants is what a token allows: resource "type:name" → actions.
type grants map[string][]string

func (g grants) allows(typ, name string, actions []string) bool {
	have := g[typ+":"+name]
	for _, a := range actions {
		if !slices.Contains(have, a) && !slices.Contains(have, "*") {
			return false
		}
	}
	return true
}

// scopes renders g back as a space-separated scope string (sorted, for stable output).
func (g grants) scopes() string {
	var out []string
	for res, acts := range g {
		if len(acts) > 0 {
			out = append(out, res+":"+strings.Join(acts, ","))
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// intersect returns the actions of want that allowed permits ("*" in allowed permits all).
func intersect(want, allowed []string) []string {
	var out []string
	for _, a := range want {
		if slices.Contains(allowed, a) || slices.Contains(allowed, "*") {
			out = append(out, a)
		}
	}
	return out
}
