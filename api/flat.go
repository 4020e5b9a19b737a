package api

import (
	"bytes"

	"github.com/nkms/nkms/internal/jsontext"
)

// Fast paths for the bodies that nearly every crypto call sends and gets:
// a JSON object of a plain string (or a list of them), such as
// {"plaintext":"AAAA"} and {"ciphertext":"ncpkms:v1:..."}. encoding/json
// reads such a body in two passes and writes it, with reflection; these
// read it in one and write it with appends. Whatever they do not recognize
// goes to encoding/json, so they never change a request or an answer: they
// only take the bodies whose JSON they know to be the same.

// flatDecoder is a request body that can decode itself from a flat object.
type flatDecoder interface {
	// decodeFlat decodes b and reports true when b is a flat object of
	// this body's own fields; otherwise it reports false and leaves the
	// body as it was.
	decodeFlat(b []byte) bool
}

// flatStrings calls set with the name and value of each member of b, in
// order, and reports whether b is a flat object: a JSON object whose
// members are all strings, names and values, of printable ASCII without
// escapes (encoding/json copies such a string as it is), with JSON
// whitespace around them and nothing after. It stops at the first member
// for which set returns false, and reports false.
func flatStrings(b []byte, set func(name, value []byte) bool) bool {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		name, j, ok := plainString(b, i)
		if !ok {
			return false
		}
		j = skipSpace(b, j)
		if j == len(b) || b[j] != ':' {
			return false
		}
		value, k, ok := plainString(b, skipSpace(b, j+1))
		if !ok || !set(name, value) {
			return false
		}
		k = skipSpace(b, k)
		switch {
		case k == len(b):
			return false
		case b[k] == '}':
			return skipSpace(b, k+1) == len(b)
		case b[k] != ',':
			return false
		}
		i = skipSpace(b, k+1)
	}
}

// flatEncoder is an answer's data that can write itself as a flat object.
type flatEncoder interface {
	// flatMember returns the name and value of the object's one member: a
	// string or a []string.
	flatMember() (name string, value any)
}

// writeFlat writes v, when it is a flatEncoder whose strings are all verbatim,
// as encoding/json would (without Encode's newline), and reports whether it
// did; otherwise it writes nothing.
func writeFlat(buf *bytes.Buffer, v any) bool {
	f, ok := v.(flatEncoder)
	if !ok {
		return false
	}
	name, value := f.flatMember()
	var items []string
	switch value := value.(type) {
	case string:
		items = []string{value}
	case []string:
		items = value
	default:
		return false
	}
	if len(items) == 0 || !jsontext.Verbatim(name) { // encoding/json writes an empty list as []: not this path
		return false
	}
	for _, s := range items {
		if !jsontext.Verbatim(s) {
			return false
		}
	}
	buf.WriteString(`{"`)
	buf.WriteString(name)
	buf.WriteString(`":`)
	_, list := value.([]string)
	if list {
		buf.WriteByte('[')
	}
	for i, s := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('"')
		buf.WriteString(s)
		buf.WriteByte('"')
	}
	if list {
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	return true
}

func (r encryptResponse) flatMember() (string, any)   { return "ciphertext", r.Ciphertext }
func (r decryptResponse) flatMember() (string, any)   { return "plaintext", r.Plaintext }
func (r reEncryptResponse) flatMember() (string, any) { return "newCiphertext", r.NewCiphertext }

// plainString returns the contents of the JSON string at b[i:] and the
// index after it, when it is one of printable ASCII without escapes.
func plainString(b []byte, i int) (s []byte, next int, ok bool) {
	if i == len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// trimJSONSpace cuts JSON whitespace (space, tab, LF, CR: RFC 8259) from
// both ends of b. bytes.TrimSpace would also cut form feeds, vertical tabs
// and Unicode spaces, and so accept bodies that are not JSON.
func trimJSONSpace(b []byte) []byte {
	b = b[skipSpace(b, 0):]
	for len(b) > 0 {
		switch b[len(b)-1] {
		case ' ', '\t', '\n', '\r':
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}

// decodeEncrypt is decode(rq, &req) of an encrypt body. The body of nearly
// every call is flat: it is decoded into a request that stays on the stack,
// where decode's v escapes to the heap.
func decodeEncrypt(rq *request) (encryptRequest, error) {
	buf, err := readBody(rq)
	if err != nil {
		return encryptRequest{}, err
	}
	defer putBodyBuffer(buf)
	var req encryptRequest
	if req.decodeFlat(buf.Bytes()) {
		return req, nil
	}
	slow := new(encryptRequest)
	err = decodeBytes(buf.Bytes(), slow)
	return *slow, err
}

// decodeDecrypt is decodeEncrypt for a decrypt or re-encrypt body.
func decodeDecrypt(rq *request) (decryptRequest, error) {
	buf, err := readBody(rq)
	if err != nil {
		return decryptRequest{}, err
	}
	defer putBodyBuffer(buf)
	var req decryptRequest
	if req.decodeFlat(buf.Bytes()) {
		return req, nil
	}
	slow := new(decryptRequest)
	err = decodeBytes(buf.Bytes(), slow)
	return *slow, err
}

func (r *encryptRequest) decodeFlat(b []byte) bool {
	v, c, ok := flatCrypto(b, "plaintext")
	if ok {
		*r = encryptRequest{Plaintext: v, Context: c}
	}
	return ok
}

func (r *decryptRequest) decodeFlat(b []byte) bool {
	v, c, ok := flatCrypto(b, "ciphertext")
	if ok {
		*r = decryptRequest{Ciphertext: v, Context: c}
	}
	return ok
}

// flatCrypto reads the flat body of a crypto call: one string under field
// and an optional "context"; any other member makes it false.
func flatCrypto(b []byte, field string) (value stringOrList, context string, ok bool) {
	ok = flatStrings(b, func(name, v []byte) bool {
		switch string(name) {
		case field:
			value = stringOrList{Items: []string{string(v)}, Set: true}
		case "context":
			context = string(v)
		default:
			return false
		}
		return true
	})
	return value, context, ok
}
