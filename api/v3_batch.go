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
	dec := json.NewDecoder(bytes.NewReader(data)) // data is valid JSON: Unmarshal checked it
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return &fieldError{"requests", "requests must be an array of 1 to 100 items"}
	}
	b.set = true
	for i := 0; dec.More(); i++ {
		if i == nkms.MaxItems {
			return &fieldError{"requests", fmt.Sprintf("requests may have at most %d items", nkms.MaxItems)}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return &fieldError{"requests", "requests must be an array of 1 to 100 items"}
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
		b.items = append(b.items, it)
	}
	return nil
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

// indexed is a list written as a JSON object keyed by index ("0", "1", ...),
// in index order.
type indexed[T any] []T

func (l indexed[T]) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, v := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + strconv.Itoa(i) + `":`)
		item, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b.Write(item)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type v3Results[T any] struct {
	Results indexed[T] `json:"results"`
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
	out := make(indexed[v3Ciphertext], n)
	for i, ct := range cts.Values {
		out[i] = v3Ciphertext{Ciphertext: ct}
	}
	return result{version: cts.Version, data: v3Results[v3Ciphertext]{Results: out}}, nil
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
	out := make(indexed[v3Plaintext], len(items))
	for i, p := range plain.Values {
		out[i] = v3Plaintext{Plaintext: base64.StdEncoding.EncodeToString(p)}
		clear(p)
	}
	return result{version: plain.Version, data: v3Results[v3Plaintext]{Results: out}}, nil
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
	out := make(indexed[v3Ciphertext], len(items))
	for i, ct := range cts.Values {
		out[i] = v3Ciphertext{Ciphertext: ct}
	}
	return result{version: cts.Version, data: v3Results[v3Ciphertext]{Results: out}}, nil
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
