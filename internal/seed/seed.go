// Package seed reads and writes seed files: the YAML of `nkms server --seed
// FILE` and of `nkms seed export`, which declare access keys and keys
// (nkms.Seed). It is the only package that knows YAML; the root package
// applies the declarations.
//
// A file is decoded strictly (an unknown field, a wrong type or a second
// document is an error naming its line). Then ${NAME} in string values is
// replaced by the environment variable NAME (letters, digits and '_', not
// starting with a digit); an unset variable is an error naming it. Only
// string values are expanded, after parsing, so a variable never changes
// the file's structure. $${ stands for a literal ${; any other $ is itself.
package seed

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nkms/nkms"
)

// File is a seed file. The JSON names are the YAML names: the export route
// (GET /nkms/v1/seed) answers this shape.
type File struct {
	AccessKeys []AccessKey `yaml:"accessKeys,omitempty" json:"accessKeys"`
	Keys       []Key       `yaml:"keys,omitempty" json:"keys"`
	// Skipped is what an export left out, in words; a seed file has none
	// (written as comments).
	Skipped []string `yaml:"-" json:"skipped,omitempty"`
}

// AccessKey declares an access key.
type AccessKey struct {
	AccessKey string `yaml:"accessKey" json:"accessKey"`
	SecretKey string `yaml:"secretKey" json:"secretKey,omitempty"`
	Keystore  int64  `yaml:"keystore" json:"keystore"`
	Role      string `yaml:"role" json:"role"`
}

// Key declares a key.
type Key struct {
	Keystore       int64  `yaml:"keystore" json:"keystore"`
	Name           string `yaml:"name" json:"name"`
	Type           string `yaml:"type" json:"type"`
	ProtectionType string `yaml:"protectionType,omitempty" json:"protectionType,omitempty"`
	Convergent     bool   `yaml:"convergent,omitempty" json:"convergent,omitempty"`
	Tag            string `yaml:"tag,omitempty" json:"tag,omitempty"`
	// Material is version 1's key material in Base64; Versions hold that of
	// versions 2, 3, ... (only with Material).
	Material     string    `yaml:"material,omitempty" json:"material,omitempty"`
	Versions     []Version `yaml:"versions,omitempty" json:"versions,omitempty"`
	Memo         string    `yaml:"memo,omitempty" json:"memo,omitempty"`
	Enabled      *bool     `yaml:"enabled,omitempty" json:"enabled,omitempty"` // nil: true
	AutoRotation *Rotation `yaml:"autoRotation,omitempty" json:"autoRotation,omitempty"`
}

// Version is the material of one version after the first.
type Version struct {
	Material string `yaml:"material" json:"material"`
}

// Rotation is a key's auto rotation.
type Rotation struct {
	Enabled    bool `yaml:"enabled" json:"enabled"`
	PeriodDays int  `yaml:"periodDays,omitempty" json:"periodDays,omitempty"`
}

// MaxSize is the largest seed file read: 1,000 RSA versions of a key are
// under 2 MB.
const MaxSize = 64 << 20

// Problem is one thing wrong with a seed file, at a line (0 when unknown).
type Problem struct {
	Line int
	Err  *nkms.SeedError
}

// Error is every problem of a seed file. It never contains a secret or key
// material.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", p.Line)
		}
		b.WriteString(p.Err.Error())
	}
	return b.String()
}

// Parse reads a seed file: it decodes data strictly, expands ${NAME} with
// lookup (os.LookupEnv), decodes tags and Base64 material and validates every
// declaration (nkms.Seed.Validate). A YAML error is returned as the decoder
// gives it (with its line); problems of the declarations are an *Error.
func Parse(data []byte, lookup func(string) (string, bool)) (nkms.Seed, error) {
	if len(data) > MaxSize {
		return nkms.Seed{}, fmt.Errorf("larger than %d MiB", MaxSize>>20)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nkms.Seed{}, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nkms.Seed{}, err
		}
		return nkms.Seed{}, fmt.Errorf("line %d: a second YAML document; a seed file holds one", extra.Line)
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc) // decoded above already; only for the lines of problems

	sd, problems := convert(&f, lookup)
	seen := map[string]bool{}
	for _, p := range problems {
		seen[p.key()] = true
	}
	for _, e := range nkms.SeedProblems(sd.Validate()) {
		if p := (problem{e}); !seen[p.key()] {
			problems = append(problems, p)
		}
	}
	if len(problems) == 0 {
		return sd, nil
	}
	out := &Error{}
	for _, p := range problems {
		out.Problems = append(out.Problems, Problem{Line: lineOf(&doc, p.Section, p.Index, p.Field), Err: p.SeedError})
	}
	return nkms.Seed{}, out
}

// problem is a SeedError found by convert or Validate.
type problem struct{ *nkms.SeedError }

// key identifies the field of a problem.
func (p problem) key() string { return fmt.Sprint(p.Section, p.Index, ".", p.Field) }

// convert turns the decoded file into declarations: it expands variables
// and decodes tags and material. A field it cannot convert is reported
// and left at its zero value (Validate's complaint about that zero value
// is then dropped by Parse).
func convert(f *File, lookup func(string) (string, bool)) (nkms.Seed, []problem) {
	var sd nkms.Seed
	var problems []problem
	for i, a := range f.AccessKeys {
		label := fmt.Sprintf("accessKey %q", a.AccessKey)
		str := func(field string, s *string) {
			if err := expandField(s, lookup); err != nil {
				problems = append(problems, problem{&nkms.SeedError{Section: "accessKeys", Index: i, Label: label, Field: field, Msg: err.Error()}})
			}
		}
		str("accessKey", &a.AccessKey)
		str("secretKey", &a.SecretKey)
		str("role", &a.Role)
		sd.AccessKeys = append(sd.AccessKeys, nkms.SeedAccessKey{AccessKey: a.AccessKey, SecretKey: a.SecretKey,
			Keystore: a.Keystore, Role: nkms.Role(a.Role)})
	}
	for i, k := range f.Keys {
		label := fmt.Sprintf("keystore %d, name %q", k.Keystore, k.Name)
		bad := func(field, msg string) {
			problems = append(problems, problem{&nkms.SeedError{Section: "keys", Index: i, Label: label, Field: field, Msg: msg}})
		}
		str := func(field string, s *string) bool {
			if err := expandField(s, lookup); err != nil {
				bad(field, err.Error())
				return false
			}
			return true
		}
		str("name", &k.Name)
		str("type", &k.Type)
		str("protectionType", &k.ProtectionType)
		str("memo", &k.Memo)
		d := nkms.SeedKey{Keystore: k.Keystore, Name: k.Name, Type: nkms.KeyType(k.Type),
			Protection: nkms.Protection(k.ProtectionType), Convergent: k.Convergent, Memo: k.Memo,
			Disabled: k.Enabled != nil && !*k.Enabled}
		if r := k.AutoRotation; r != nil {
			d.AutoRotation = r.Enabled
			d.RotationPeriod = r.PeriodDays // 0: the default
		}
		if str("tag", &k.Tag) && k.Tag != "" {
			t, err := nkms.ParseTag(k.Tag)
			if err != nil || t.String() != k.Tag {
				bad("tag", "must be 64 lower-case hexadecimal characters")
			} else {
				d.Tag = t
			}
		}
		if k.Material == "" && len(k.Versions) > 0 {
			bad("versions", "need material: versions lists versions 2, 3, ... after version 1's material")
		}
		materials := []string{k.Material}
		for _, v := range k.Versions {
			materials = append(materials, v.Material)
		}
		if k.Material == "" {
			materials = nil
		}
		for n := range materials {
			field := materialField(n + 1)
			if !str(field, &materials[n]) {
				d.Material = nil
				break
			}
			m, err := base64.StdEncoding.Strict().DecodeString(materials[n])
			if err != nil {
				bad(field, "not standard Base64 (with padding)")
				d.Material = nil
				break
			}
			d.Material = append(d.Material, m)
		}
		sd.Keys = append(sd.Keys, d)
	}
	return sd, problems
}

// materialField names the field of version n's material.
func materialField(n int) string {
	if n == 1 {
		return "material"
	}
	return fmt.Sprintf("versions[%d].material", n-2)
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Expand replaces ${NAME} in s with the value lookup gives for NAME and $${
// with ${; any other $ stays. An unset variable, or a ${ without a valid
// name and a closing }, is an error that names it (never a value).
func Expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // $${: a literal ${
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("a ${ without its closing } (write $${ for a literal ${)")
		}
		name := s[i+2 : i+end]
		if !nameRE.MatchString(name) {
			// Not shown: it may be a secret that happens to hold "${".
			return "", errors.New("a ${...} that is not a variable name (letters, digits and '_'; write $${ for a literal ${)")
		}
		v, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

// expandField expands *s in place.
func expandField(s *string, lookup func(string) (string, bool)) error {
	v, err := Expand(*s, lookup)
	if err == nil {
		*s = v
	}
	return err
}

// lineOf returns the line of a field of a declaration in doc ("keys", 2,
// "autoRotation.periodDays"), or of the declaration itself when the field
// is not in the file; 0 when neither is found.
func lineOf(doc *yaml.Node, section string, index int, field string) int {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return 0
	}
	seq := mapValue(doc.Content[0], section)
	if seq == nil || seq.Kind != yaml.SequenceNode || index >= len(seq.Content) {
		return 0
	}
	n := seq.Content[index]
	line := n.Line
	for _, part := range strings.Split(field, ".") {
		if part == "" {
			break
		}
		name, idx := part, -1
		if j := strings.IndexByte(part, '['); j > 0 && strings.HasSuffix(part, "]") {
			name = part[:j]
			idx, _ = strconv.Atoi(part[j+1 : len(part)-1])
		}
		key := mapKey(n, name)
		if key == nil {
			break
		}
		line = key.Line
		n = mapValue(n, name)
		if idx >= 0 {
			if n == nil || n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				break
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

// mapKey and mapValue return the key node and value node of name in the
// mapping m, or nil.
func mapKey(m *yaml.Node, name string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i]
		}
	}
	return nil
}

func mapValue(m *yaml.Node, name string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i+1]
		}
	}
	return nil
}
