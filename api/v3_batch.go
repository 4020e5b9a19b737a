package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/nkms/nkms"
)

// API 3.0 batches (ncp-kms-api-v3.md §3.6.3-3.6.5, D9): {"requests": [item,
// ...]} with 1-100 items of the single call's shape; {"results": {"0": ...}}
// keyed by request index; all or nothing, with {"failures": {"<index>":
// <Error>}} naming only the items that failed. Validation is two-staged:
// first the format and emptiness of every item (here), reporting only those
// failures; then sizes, contexts, versions and the crypto (the Service's
// Batch* methods).

// batchItems is the "requests" array, read item by item so that no more
// than nkms.MaxItems items are ever decoded, and so that a value of the
// wrong type inside an item names its place ("requests[3].ciphertext").
// Such a value rejects the whole request as "error", not "failures".
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

// indexed is the "results" of a batch: one value of one field per request
// item, written as a JSON object keyed by index ("0", "1", ...) in index
// order: {"0": {"<field>": "<value>"}, ...}.
type indexed struct {
	field  string
	values []string
}

func (l indexed) MarshalJSON() ([]byte, error) {
	n := 2
	for _, v := range l.values {
		n += len(v) + len(l.field) + 16
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, v := range l.values {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `":{"`...)
		b = append(b, l.field...)
		b = append(b, `":`...)
		b = appendJSONString(b, v)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendJSONString appends v as a JSON string: Base64 and ciphertexts as
// they are, anything else through encoding/json.
func appendJSONString(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isBase64Char(c) && c != '=' && c != ':' {
			q, _ := json.Marshal(v)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"')
}

type v3Results struct {
	Results indexed `json:"results"`
}

func itemField(i int, name string) string { return fmt.Sprintf("requests[%d].%s", i, name) }

func (s *Server) batchEncryptV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req struct {
		Requests batchItems[v3EncryptRequest] `json:"requests"`
	}
	if err := decodeV3(rq, &req, false); err != nil {
		return result{}, err
	}
	n, err := req.Requests.count()
	if err != nil {
		return result{}, err
	}
	items := make([]nkms.EncryptItem, n)
	fails := map[int]error{}
	for i, r := range req.Requests.items {
		p, err := plaintextV3(itemField(i, "plaintext"), r.Plaintext)
		if err != nil {
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
	return result{version: cts.Version, data: v3Results{Results: indexed{"ciphertext", cts.Values}}}, nil
}

// ciphertextItems reads the body of batch-decrypt and batch-re-encrypt and
// checks each ciphertext's format (stage one).
func ciphertextItems(rq *request) ([]nkms.CiphertextItem, error) {
	var req struct {
		Requests batchItems[v3CiphertextRequest] `json:"requests"`
	}
	if err := decodeV3(rq, &req, false); err != nil {
		return nil, err
	}
	n, err := req.Requests.count()
	if err != nil {
		return nil, err
	}
	items := make([]nkms.CiphertextItem, n)
	fails := map[int]error{}
	for i, r := range req.Requests.items {
		if err := cipherTextV3(itemField(i, "ciphertext"), r.Ciphertext); err != nil {
			fails[i] = err
			continue
		}
		items[i] = nkms.CiphertextItem{Ciphertext: r.Ciphertext, Context: r.Context}
	}
	if len(fails) > 0 {
		return nil, &nkms.BatchError{Failures: fails}
	}
	return items, nil
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
	return result{version: plain.Version, data: v3Results{Results: indexed{"plaintext", out}}}, nil
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
	return result{version: cts.Version, data: v3Results{Results: indexed{"ciphertext", cts.Values}}}, nil
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
