package nkms

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nkms/nkms/internal/crypto"
)

// Batch crypto of API 3.0 (ncp-kms-api-v3.md §3.6.3-3.6.5, decisions.md D9):
// 1 to MaxItems items, each of the single call's shape with a context of its
// own; all or nothing. A batch is one Service call and one usage-log entry.
// Its work is bounded by at most MaxItems items, each within the key type's
// plaintext or ciphertext limit; the HTTP route's body limit bounds their sum.

// EncryptItem is one item of BatchEncrypt.
type EncryptItem struct {
	Plaintext []byte
	Context   string // Base64; used by convergent keys only
}

// CiphertextItem is one item of BatchDecrypt or BatchReEncrypt.
type CiphertextItem struct {
	Ciphertext string // ncpkms:v<N>:<Base64>
	Context    string
}

// BatchError is the answer of a batch in which one or more items failed:
// nothing was done, and Failures holds the cause of each failed item by its
// 0-based request index (only the items that failed). Its Code is the
// failures' code when they share one, else Invalid.
type BatchError struct {
	Failures map[int]error
}

func (e *BatchError) Error() string {
	idx := e.Indexes()
	parts := make([]string, 0, min(len(idx), 3))
	for _, i := range idx[:min(len(idx), 3)] {
		parts = append(parts, fmt.Sprintf("%d: %v", i, e.Failures[i]))
	}
	return fmt.Sprintf("batch: %d item(s) failed (%s)", len(idx), strings.Join(parts, "; "))
}

// Unwrap returns an *Error carrying the batch's Code, so that ErrorCode and
// the usage log see a batch failure like any other.
func (e *BatchError) Unwrap() error {
	return &Error{Code: e.Code(), Message: fmt.Sprintf("%d batch item(s) failed", len(e.Failures))}
}

// Code is the failures' common code, or Invalid when they differ.
func (e *BatchError) Code() Code {
	var code Code
	for _, err := range e.Failures {
		c := ErrorCode(err)
		if code != "" && c != code {
			return Invalid
		}
		code = c
	}
	return code
}

// Indexes returns the failed items' indexes in increasing order.
func (e *BatchError) Indexes() []int {
	idx := make([]int, 0, len(e.Failures))
	for i := range e.Failures {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}

// itemErr names the field of item i in an Invalid or InvalidState error
// ("requests[3].plaintext"); other errors pass unchanged.
func itemErr(i int, field string, err error) error {
	var e *Error
	if !errors.As(err, &e) || (e.Code != Invalid && e.Code != InvalidState) {
		return err
	}
	return &Error{Code: e.Code, Message: e.Message, Field: fmt.Sprintf("requests[%d].%s", i, field)}
}

// BatchEncrypt encrypts each item with the current version of the key and
// its own context. Every item must be within the key type's plaintext
// limit; if any item fails, nothing is returned but a *BatchError.
func (s *Service) BatchEncrypt(ctx context.Context, c Caller, tag Tag, items []EncryptItem) (Ciphertexts, error) {
	return call(ctx, s, c, ActBatchEncrypt, tag, func() (Ciphertexts, error) {
		k, err := s.batchKey(ctx, c, tag)
		if err != nil {
			return Ciphertexts{}, err
		}
		if err := batchSize(len(items)); err != nil {
			return Ciphertexts{}, err
		}
		aads := make([][]byte, len(items))
		fails := map[int]error{}
		for i, it := range items {
			if len(it.Plaintext) > k.Type.MaxPlaintext() {
				fails[i] = itemErr(i, "plaintext", invalid("plaintext must be at most %d bytes for %s", k.Type.MaxPlaintext(), k.Type))
				continue
			}
			if aads[i], err = convergentContext(k, it.Context); err != nil {
				fails[i] = itemErr(i, "context", err)
			}
		}
		if len(fails) > 0 {
			return Ciphertexts{}, &BatchError{Failures: fails}
		}
		vk, err := s.useVersion(k, 0)
		if err != nil {
			return Ciphertexts{}, err
		}
		out := Ciphertexts{Values: make([]string, len(items)), Version: vk.version}
		for i, it := range items {
			if err := ctx.Err(); err != nil {
				return Ciphertexts{}, err
			}
			body, err := vk.ck.Encrypt(it.Plaintext, aads[i])
			if err = vk.tokenResult("encrypt", err); err != nil {
				return Ciphertexts{}, fmt.Errorf("encrypt: %w", err)
			}
			out.Values[i] = crypto.FormatCiphertext(vk.version, body)
		}
		return out, nil
	})
}

// BatchDecrypt decrypts each item with the version its ciphertext names and
// its own context. A ciphertext naming a version the key does not have is a
// decryption failure (Invalid), as any other: no oracle (D9). Version of the
// answer is the version the ciphertexts named, 0 when several.
func (s *Service) BatchDecrypt(ctx context.Context, c Caller, tag Tag, items []CiphertextItem) (Plaintexts, error) {
	return call(ctx, s, c, ActBatchDecrypt, tag, func() (Plaintexts, error) {
		k, err := s.batchKey(ctx, c, tag)
		if err != nil {
			return Plaintexts{}, err
		}
		return s.batchDecrypt(ctx, k, items)
	})
}

// BatchReEncrypt decrypts each item and encrypts it again with the current
// version and the item's context; the plaintexts are never returned.
func (s *Service) BatchReEncrypt(ctx context.Context, c Caller, tag Tag, items []CiphertextItem) (Ciphertexts, error) {
	return call(ctx, s, c, ActBatchReEncrypt, tag, func() (Ciphertexts, error) {
		k, err := s.batchKey(ctx, c, tag)
		if err != nil {
			return Ciphertexts{}, err
		}
		plain, err := s.batchDecrypt(ctx, k, items)
		if err != nil {
			return Ciphertexts{}, err
		}
		defer clearAll(plain.Values)
		vk, err := s.useVersion(k, 0)
		if err != nil {
			return Ciphertexts{}, err
		}
		out := Ciphertexts{Values: make([]string, len(items)), Version: vk.version}
		for i, it := range items {
			if err := ctx.Err(); err != nil {
				return Ciphertexts{}, err
			}
			aad, _ := convergentContext(k, it.Context) // validated by batchDecrypt
			body, err := vk.ck.Encrypt(plain.Values[i], aad)
			if err = vk.tokenResult("encrypt", err); err != nil {
				return Ciphertexts{}, fmt.Errorf("encrypt: %w", err)
			}
			out.Values[i] = crypto.FormatCiphertext(vk.version, body)
		}
		return out, nil
	})
}

// batchKey fetches the key of a batch and checks what concerns the whole
// batch (its type and state) before any item is looked at: those failures
// are the batch's error, not its items'.
func (s *Service) batchKey(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	k, err := s.cryptoKey(ctx, c, tag, false)
	if err != nil {
		return nil, err
	}
	if err := Allowed(k.State, OpCrypto); err != nil {
		return nil, err
	}
	return k, nil
}

func batchSize(n int) error {
	if n == 0 {
		return &Error{Code: Invalid, Message: "requests must have 1 to 100 items", Field: "requests"}
	}
	if n > MaxItems {
		return &Error{Code: Invalid, Message: fmt.Sprintf("requests may have at most %d items", MaxItems), Field: "requests"}
	}
	return nil
}

func clearAll(bs [][]byte) {
	for _, b := range bs {
		clear(b)
	}
}

// batchDecrypt checks every item in two stages (D9, §3.6.5): first the
// format of each ciphertext, reporting only those failures; then each item's
// size, context, version and decryption. Failures are collected for every
// item; any failure discards all plaintexts.
func (s *Service) batchDecrypt(ctx context.Context, k *Key, items []CiphertextItem) (Plaintexts, error) {
	if err := batchSize(len(items)); err != nil {
		return Plaintexts{}, err
	}
	type parsed struct {
		version int
		body    []byte
	}
	ps := make([]parsed, len(items))
	fails := map[int]error{}
	for i, it := range items {
		n, body, err := crypto.ParseCiphertext(it.Ciphertext)
		if err != nil {
			fails[i] = itemErr(i, "ciphertext", invalid("ciphertext must be ncpkms:v<version>:<Base64>"))
			continue
		}
		ps[i] = parsed{n, body}
	}
	if len(fails) > 0 {
		return Plaintexts{}, &BatchError{Failures: fails}
	}
	// One place in the Heavy pool for the whole batch (heavy.go), taken
	// once its format is checked.
	run, release, err := s.heavy(ctx, k.Type)
	if err != nil {
		return Plaintexts{}, err
	}
	defer release()
	out := Plaintexts{Values: make([][]byte, len(items)), Version: ps[0].version}
	versions := map[int]*versionKey{}
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			clearAll(out.Values)
			return Plaintexts{}, err
		}
		p := ps[i]
		if p.version != out.Version {
			out.Version = 0
		}
		if (k.Type == AES256 && len(p.body) > maxAESBody) || (k.Type == RSA2048 && len(p.body) != rsaBodySize) {
			fails[i] = itemErr(i, "ciphertext", ErrDecrypt)
			continue
		}
		aad, err := convergentContext(k, it.Context)
		if err != nil {
			fails[i] = itemErr(i, "context", err)
			continue
		}
		vk := versions[p.version]
		if vk == nil {
			vk, err = s.useVersion(k, p.version)
			switch {
			case errors.Is(err, ErrVersionNotFound):
				fails[i] = itemErr(i, "ciphertext", ErrDecrypt) // no oracle (D9)
				continue
			case ErrorCode(err) == InvalidState:
				fails[i] = itemErr(i, "ciphertext", err)
				continue
			case err != nil:
				clearAll(out.Values)
				return Plaintexts{}, err
			}
			versions[p.version] = vk
		}
		run(func() { out.Values[i], err = vk.ck.Decrypt(p.body, aad) })
		if err = vk.tokenResult("decrypt", err); err != nil {
			if !errors.Is(err, crypto.ErrDecrypt) {
				clearAll(out.Values)
				return Plaintexts{}, fmt.Errorf("decrypt: %w", err)
			}
			fails[i] = itemErr(i, "ciphertext", ErrDecrypt)
		}
	}
	if len(fails) > 0 {
		clearAll(out.Values)
		return Plaintexts{Version: out.Version}, &BatchError{Failures: fails}
	}
	return out, nil
}
