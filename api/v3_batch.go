package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"sync"

	"github.com/nkms/nkms"
)

// API 3.0 batches (ncp-kms-api-v3.md §3.6.3-3.6.5, D9): {"requests": [item,
// ...]} with 1-100 items of the single call's shape; {"results": {"0": ...}}
// keyed by request index; all or nothing, with {"failures": {"<index>":
// <Error>}} naming only the items that failed. Validation is two-staged:
// first the format and emptiness of every item (here), reporting only those
// failures; then sizes, contexts, versions and the crypto (the Service's
// Batch* methods).

// batchItems is decodeBatch's careful reading of the "requests" array: item
// by item, so that no more than nkms.MaxItems items are ever decoded, and so
// that a value of the wrong type inside an item names its place
// ("requests[3].ciphertext"). Such a value rejects the whole request as
// "error", not "failures".
type batchItems[T any] struct {
	set   bool
	items []T
}

func (b *batchItems[T]) UnmarshalJSON(data []byte) error {
	b.set, b.items = false, nil // a repeated "requests" member: the last one counts
	if string(data) == "null" {
		return nil
	}
	n, isArray := countItems(data) // data is valid JSON: Unmarshal checked it
	if !isArray {
		return &fieldError{"requests", "requests must be an array of 1 to 100 items"}
	}
	if n > nkms.MaxItems {
		return &fieldError{"requests", fmt.Sprintf("requests may have at most %d items", nkms.MaxItems)}
	}
	b.set = true
	if err := json.Unmarshal(data, &b.items); err == nil {
		return nil
	}
	// Some item is of the wrong shape: find which, item by item.
	b.items = nil
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.Token() // [
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break
		}
		var it T
		if err := json.Unmarshal(raw, &it); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				f := fmt.Sprintf("requests[%d].%s", i, te.Field)
				return &fieldError{f, f + " has the wrong type"}
			}
			f := fmt.Sprintf("requests[%d]", i)
			return &fieldError{f, f + " must be an object"}
		}
	}
	return &fieldError{"requests", "requests must be an array of 1 to 100 items"}
}

// countItems counts the elements of the JSON array data (valid JSON) in one
// pass over its bytes, without decoding them; isArray is false when data is
// not an array.
func countItems(data []byte) (n int, isArray bool) {
	data = bytes.TrimSpace(data)
	if len(data) < 2 || data[0] != '[' {
		return 0, false
	}
	depth, inString, escaped, empty := 0, false, false, true
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
			empty = false
		case c == '[' || c == '{':
			if depth > 0 {
				empty = false
			}
			depth++
		case c == ']' || c == '}':
			depth--
		case c == ',' && depth == 1:
			n++
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			empty = false
		}
	}
	if empty {
		return 0, true
	}
	return n + 1, true
}

// count refuses a missing or empty "requests".
func (b *batchItems[T]) count() (int, error) {
	if !b.set {
		return 0, nkms.FieldErrorf("requests", "requests is required")
	}
	if len(b.items) == 0 {
		return 0, nkms.FieldErrorf("requests", "requests must have 1 to %d items", nkms.MaxItems)
	}
	return len(b.items), nil
}

// decodeBatch reads a batch body and returns its 1-100 items. The common
// shape takes one pass of fastBatch; other bodies one decoding pass: when the arrays of the body's members hold at
// most nkms.MaxItems elements in all (counted without decoding), the items
// are decoded directly. Otherwise, or when that decoding fails, batchItems
// reads the body again item by item, refusing the 101st item before it is
// decoded and naming the place of a value of the wrong type.
func decodeBatch[T any](rq *request, key string, mk func(value, context string) T) ([]T, error) {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(rq.Body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errTooLarge
		}
		return nil, nkms.Errorf(nkms.Invalid, "cannot read request body")
	}
	body := buf.Bytes()
	if jsonMedia(rq.Header.Get("Content-Type"), false) {
		if vals, ctxs, ok := fastBatch(body, key); ok {
			items := make([]T, len(vals))
			for i := range vals {
				items[i] = mk(vals[i], ctxs[i])
			}
			return items, nil
		}
	}
	if memberArrayItems(body) <= nkms.MaxItems {
		var fast struct {
			Requests *[]T `json:"requests"`
		}
		rq.Body = io.NopCloser(bytes.NewReader(body))
		if err := decodeV3(rq, &fast, false); err == nil {
			if fast.Requests == nil {
				return nil, nkms.FieldErrorf("requests", "requests is required")
			}
			if len(*fast.Requests) == 0 {
				return nil, nkms.FieldErrorf("requests", "requests must have 1 to %d items", nkms.MaxItems)
			}
			return *fast.Requests, nil
		}
	}
	var careful struct {
		Requests batchItems[T] `json:"requests"`
	}
	rq.Body = io.NopCloser(bytes.NewReader(body))
	if err := decodeV3(rq, &careful, false); err != nil {
		return nil, err
	}
	if _, err := careful.Requests.count(); err != nil {
		return nil, err
	}
	return careful.Requests.items, nil
}

// fastBatch parses the common shape of a batch body in one pass:
// {"requests":[{"<key>":"...","context":"..."},...]} with 1 to
// nkms.MaxItems items, each member at most once, strings of printable ASCII
// without escapes, whitespace anywhere JSON allows it. For anything else ok
// is false and encoding/json decides; where ok is true, encoding/json would
// read the same items (FuzzV3Patterns checks it).
func fastBatch(b []byte, key string) (vals, ctxs []string, ok bool) {
	p := fastParser{b: b}
	if !p.lit('{') || !p.key("requests") || !p.lit(':') || !p.lit('[') || p.peek(']') {
		return nil, nil, false
	}
	for {
		if len(vals) == nkms.MaxItems || !p.lit('{') {
			return nil, nil, false
		}
		var v, c string
		var hasV, hasC bool
		for !p.lit('}') {
			if (hasV || hasC) && !p.lit(',') {
				return nil, nil, false
			}
			k, ok := p.str()
			if !ok || !p.lit(':') {
				return nil, nil, false
			}
			val, ok := p.str()
			switch {
			case !ok:
				return nil, nil, false
			case k == key && !hasV:
				v, hasV = val, true
			case k == "context" && !hasC:
				c, hasC = val, true
			default:
				return nil, nil, false
			}
		}
		vals, ctxs = append(vals, v), append(ctxs, c)
		if p.lit(']') {
			break
		}
		if !p.lit(',') {
			return nil, nil, false
		}
	}
	if !p.lit('}') {
		return nil, nil, false
	}
	p.ws()
	return vals, ctxs, p.i == len(p.b)
}

// fastParser is fastBatch's cursor.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

// peek reports whether c comes next (after whitespace).
func (p *fastParser) peek(c byte) bool {
	p.ws()
	return p.i < len(p.b) && p.b[p.i] == c
}

// lit consumes c if it comes next.
func (p *fastParser) lit(c byte) bool {
	if p.peek(c) {
		p.i++
		return true
	}
	return false
}

// str consumes a string of printable ASCII without escapes.
func (p *fastParser) str() (string, bool) {
	if !p.lit('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return string(p.b[start : p.i-1]), true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", false
		}
	}
	return "", false
}

func (p *fastParser) key(k string) bool {
	s, ok := p.str()
	return ok && s == k
}

// memberArrayItems returns an upper bound of the elements of the arrays that
// are member values of the top-level object in data: the commas inside them
// plus one per array. It only scans the bytes (strings and nesting), so it
// costs far less than decoding; on input that is not JSON its answer means
// nothing, and decoding then fails anyway.
func memberArrayItems(data []byte) int {
	n, depth, inArray := 0, 0, false
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			// Skip the string: to the next quote not escaped by an odd
			// number of backslashes.
			for {
				j := bytes.IndexByte(data[i+1:], '"')
				if j < 0 {
					return n
				}
				i += j + 1
				k := i - 1
				for k >= 0 && data[k] == '\\' {
					k--
				}
				if (i-1-k)%2 == 0 {
					break
				}
			}
		case '[', '{':
			depth++
			if depth == 2 {
				inArray = data[i] == '['
				if inArray {
					n++
				}
			}
		case ']', '}':
			depth--
		case ',':
			if depth == 2 && inArray {
				n++
			}
		}
	}
	return n
}

// results is the "results" of a batch: one value per request item, keyed
// by index ("0", "1", ...) in index order. It is a struct made for the item
// count, with fields tagged "0" to "n-1": encoding/json writes a struct
// fastest, where a json.Marshaler's output would be compacted once more and
// a map's keys sorted (together as costly as the rest of the answer). The
// types are made once per item type and count (at most nkms.MaxItems).
func results[T any](values []string, item func(string) T) v3Results {
	v := reflect.New(indexedType(reflect.TypeFor[T](), len(values))).Elem()
	for i, s := range values {
		v.Field(i).Set(reflect.ValueOf(item(s)))
	}
	return v3Results{Results: v.Addr().Interface()}
}

type v3Results struct {
	Results any `json:"results"`
}

type indexedKey struct {
	item reflect.Type
	n    int
}

var indexedTypes sync.Map // indexedKey → reflect.Type

// indexedType returns the struct type of n fields of type item tagged
// json:"0" to json:"n-1".
func indexedType(item reflect.Type, n int) reflect.Type {
	key := indexedKey{item, n}
	if t, ok := indexedTypes.Load(key); ok {
		return t.(reflect.Type)
	}
	fields := make([]reflect.StructField, n)
	for i := range fields {
		fields[i] = reflect.StructField{Name: "F" + strconv.Itoa(i), Type: item, Tag: reflect.StructTag(`json:"` + strconv.Itoa(i) + `"`)}
	}
	t, _ := indexedTypes.LoadOrStore(key, reflect.StructOf(fields))
	return t.(reflect.Type)
}

func newCiphertext(v string) v3Ciphertext { return v3Ciphertext{Ciphertext: v} }
func newPlaintext(v string) v3Plaintext   { return v3Plaintext{Plaintext: v} }

func itemField(i int, name string) string { return fmt.Sprintf("requests[%d].%s", i, name) }

func (s *Server) batchEncryptV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	reqs, err := decodeBatch(rq, "plaintext", func(v, c string) v3EncryptRequest { return v3EncryptRequest{v, c} })
	if err != nil {
		return result{}, err
	}
	items := make([]nkms.EncryptItem, len(reqs))
	var fails map[int]error
	for i, r := range reqs {
		p, err := plaintextItem(i, r.Plaintext)
		if err != nil {
			if fails == nil {
				fails = map[int]error{}
			}
			fails[i] = err
			continue
		}
		items[i] = nkms.EncryptItem{Plaintext: p, Context: r.Context}
	}
	defer func() {
		for _, it := range items {
			clear(it.Plaintext)
		}
	}()
	if len(fails) > 0 {
		return result{}, &nkms.BatchError{Failures: fails}
	}
	cts, err := s.svc.BatchEncrypt(ctx, c, rq.tag, items)
	if err != nil {
		return result{}, err
	}
	return result{version: cts.Version, data: results(cts.Values, newCiphertext)}, nil
}

// ciphertextItems reads the body of batch-decrypt and batch-re-encrypt and
// checks each ciphertext's format (stage one).
func ciphertextItems(rq *request) ([]nkms.CiphertextItem, error) {
	reqs, err := decodeBatch(rq, "ciphertext", func(v, c string) v3CiphertextRequest { return v3CiphertextRequest{v, c} })
	if err != nil {
		return nil, err
	}
	items := make([]nkms.CiphertextItem, len(reqs))
	var fails map[int]error
	for i, r := range reqs {
		if r.Ciphertext == "" || !isCipherV3(r.Ciphertext) {
			if fails == nil {
				fails = map[int]error{}
			}
			fails[i] = cipherTextV3(itemField(i, "ciphertext"), r.Ciphertext)
			continue
		}
		items[i] = nkms.CiphertextItem{Ciphertext: r.Ciphertext, Context: r.Context}
	}
	if len(fails) > 0 {
		return nil, &nkms.BatchError{Failures: fails}
	}
	return items, nil
}

// plaintextItem decodes the plaintext of item i; the field's name is made
// only for a failure.
func plaintextItem(i int, v string) ([]byte, error) {
	if v != "" && isBase64V3(v) {
		if b, err := base64.StdEncoding.Strict().DecodeString(v); err == nil {
			return b, nil
		}
	}
	return plaintextV3(itemField(i, "plaintext"), v)
}

func (s *Server) batchDecryptV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	items, err := ciphertextItems(rq)
	if err != nil {
		return result{}, err
	}
	plain, err := s.svc.BatchDecrypt(ctx, c, rq.tag, items)
	if err != nil {
		return result{version: plain.Version}, err
	}
	out := make([]string, len(items))
	for i, p := range plain.Values {
		out[i] = base64.StdEncoding.EncodeToString(p)
		clear(p)
	}
	return result{version: plain.Version, data: results(out, newPlaintext)}, nil
}

func (s *Server) batchReEncryptV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	items, err := ciphertextItems(rq)
	if err != nil {
		return result{}, err
	}
	cts, err := s.svc.BatchReEncrypt(ctx, c, rq.tag, items)
	if err != nil {
		return result{}, err
	}
	return result{version: cts.Version, data: results(cts.Values, newCiphertext)}, nil
}

// v3Failures is the failure body of a batch: the bare Error object of each
// failed item by index, in index order.
type v3Failures struct {
	Failures failureMap `json:"failures"`
}

type failureMap struct {
	idx    []int
	errors []v3Error
}

func (m failureMap) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for j, i := range m.idx {
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + strconv.Itoa(i) + `":`)
		e, err := json.Marshal(m.errors[j])
		if err != nil {
			return nil, err
		}
		b.Write(e)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeBatchFailures writes a batch's failures with the failing cause's
// status, or 400 when the causes differ, and returns the errorCode for the
// audit line (InvalidParameter when they differ).
func (s *Server) writeBatchFailures(w http.ResponseWriter, r *http.Request, be *nkms.BatchError) string {
	var m failureMap
	status, code := 0, ""
	for _, i := range be.Indexes() {
		st, e, ok := v3ErrorOf(be.Failures[i])
		if !ok || e.ErrorCode == "InternalServerError" {
			// Items fail only with the domain's own refusals; anything
			// else is the whole request's failure.
			return s.writeErrorV3(w, r, fmt.Errorf("batch item %d: %w", i, be.Failures[i]))
		}
		switch {
		case status == 0:
			status, code = st, e.ErrorCode
		case st != status || e.ErrorCode != code:
			status, code = http.StatusBadRequest, "InvalidParameter" // several causes
		}
		m.idx = append(m.idx, i)
		m.errors = append(m.errors, e)
	}
	if len(m.idx) == 0 {
		return s.writeErrorV3(w, r, errors.New("batch failed with no failures"))
	}
	writeJSON(w, status, v3Failures{Failures: m})
	return code
}
