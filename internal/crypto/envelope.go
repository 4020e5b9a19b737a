package crypto

// This file owns the nkms envelope: the streaming file format behind
// `nkms seal` and `nkms unseal`. A file is encrypted locally under a data key
// that the server generated and returned wrapped under a KMS key; the wrapped
// data key travels in the envelope's header, so unseal asks the server to
// unwrap it and then decrypts the file in constant memory.
//
// Format, version 1. All integers are big-endian.
//
//	envelope = magic ‖ headerLen ‖ header ‖ chunk_0 ‖ … ‖ chunk_n
//	magic     = "NKMSENV1"                       (8 bytes)
//	headerLen = uint32(len(header))              (4 bytes, 1 ≤ headerLen ≤ 65536)
//	header    = {"v":1,"keyTag":K,"wrappedKey":W,"chunk":C,"salt":S}
//
// The header is compact JSON with exactly these fields in this order, written
// by encoding/json (no whitespace; strings escaped as json.Marshal escapes
// them). OpenStream accepts only header bytes that are byte-for-byte what it
// would write itself for the parsed values.
//
//   - K is the tag of the KMS key that wrapped the data key (non-empty UTF-8).
//   - W is the wrapped data key: the server's "ncpkms:v<N>:<Base64>" ciphertext
//     of the 32-byte data key.
//   - C is the plaintext chunk size in bytes, 1 ≤ C ≤ 4 MiB; nkms writes
//     65536 (DefaultEnvelopeChunk).
//   - S is a random 32-byte salt, standard Base64 with padding.
//
// Chunks. The plaintext is cut into chunks of exactly C bytes followed by one
// final chunk of 0 to C-1 bytes, so a plaintext of n bytes gives n/C full
// chunks and a final chunk of n mod C bytes (an empty final chunk when C
// divides n, including n = 0). Chunk i is
//
//	chunk_i = AES-256-GCM-Seal(key = subkey, nonce = nonce_i, plaintext_i, ad)
//	          (ciphertext ‖ 16-byte tag; C+16 bytes, the final chunk 16 to C+15)
//	subkey  = HKDF-SHA256(secret = data key, salt = S, info = "nkms envelope v1", 32 bytes)
//	nonce_i = 0x00 0x00 0x00 ‖ uint64(i) ‖ f   (12 bytes; f = 0x01 for the final chunk, else 0x00)
//	ad      = SHA-256(magic ‖ headerLen ‖ header)
//
// This is the STREAM construction (Hoang, Reyhanitabar, Rogaway and Vizár,
// "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance",
// CRYPTO 2015), as in age. The counter in the nonce detects reordered,
// dropped or duplicated chunks; the final flag detects truncation at a chunk
// boundary and data appended after the end; the associated data binds every
// chunk to this header; the salt gives every file its own subkey, so a data
// key used twice by mistake never repeats a (key, nonce) pair.
//
// A full-length chunk is never final, so a reader needs no lookahead to tell
// the final chunk: it is the one that ends short of C+16 bytes.

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// DefaultEnvelopeChunk is the plaintext chunk size SealStream uses when the
// header does not name one: 64 KiB.
const DefaultEnvelopeChunk = 64 << 10

const (
	envelopeMagic     = "NKMSENV1"
	envelopeVersion   = 1
	envelopeInfo      = "nkms envelope v1" // HKDF info for the per-file subkey
	envelopeSaltSize  = 32
	maxEnvelopeHeader = 64 << 10
	maxEnvelopeChunk  = 4 << 20
	envelopeFinal     = 0x01 // last nonce byte of the final chunk
)

// ErrNotEnvelope is returned by OpenStream when the input does not start with
// the envelope magic "NKMSENV1": it is not an nkms envelope, or one of a
// version this build does not read.
var ErrNotEnvelope = errors.New("crypto: not an nkms envelope")

// errEnvelopeCorrupt is every other failure to open an envelope that is not
// an I/O error: a malformed header, a wrong data key, or a truncated,
// extended, reordered or tampered chunk. It is ErrDecrypt, so no caller can
// tell one cause from another.
var errEnvelopeCorrupt = fmt.Errorf("%w: envelope is corrupt or truncated", ErrDecrypt)

// EnvelopeHeader is what unseal needs to get the data key back from the
// server. It holds no secret.
type EnvelopeHeader struct {
	KeyTag     string // the KMS key that wrapped the data key
	WrappedKey string // the "ncpkms:v<N>:" ciphertext of the 32-byte data key
	ChunkSize  int    // plaintext bytes per chunk; 0 in SealStream means DefaultEnvelopeChunk
}

// envelopeHeaderJSON is the header on disk. Its field order is the format.
type envelopeHeaderJSON struct {
	V          int    `json:"v"`
	KeyTag     string `json:"keyTag"`
	WrappedKey string `json:"wrappedKey"`
	Chunk      int    `json:"chunk"`
	Salt       []byte `json:"salt"`
}

// SealStream encrypts everything read from r until io.EOF into an envelope
// written to w, under dataKey (32 bytes, the plaintext of h.WrappedKey). It
// holds one chunk in memory at a time. h.KeyTag must be non-empty UTF-8 and
// h.WrappedKey a well-formed ncpkms value; h.ChunkSize 0 means
// DefaultEnvelopeChunk. Errors from r and w are returned wrapped.
func SealStream(w io.Writer, r io.Reader, dataKey []byte, h EnvelopeHeader) error {
	salt, err := RandomBytes(envelopeSaltSize)
	if err != nil {
		return err
	}
	return sealStream(w, r, dataKey, h, salt)
}

// sealStream is SealStream with a given salt, for known-answer tests.
func sealStream(w io.Writer, r io.Reader, dataKey []byte, h EnvelopeHeader, salt []byte) error {
	if h.ChunkSize == 0 {
		h.ChunkSize = DefaultEnvelopeChunk
	}
	if err := checkEnvelopeHeader(h); err != nil {
		return err
	}
	preamble, err := encodeEnvelopePreamble(h, salt)
	if err != nil {
		return err
	}
	aead, err := envelopeAEAD(dataKey, salt)
	if err != nil {
		return err
	}
	if err := writeAll(w, preamble); err != nil {
		return err
	}
	ad := sha256.Sum256(preamble)
	buf := make([]byte, h.ChunkSize+gcmTagSize)
	nonce := make([]byte, gcmNonceSize) // reused: one allocation per stream, not per chunk
	for i := uint64(0); ; i++ {
		n, err := io.ReadFull(r, buf[:h.ChunkSize])
		final := false
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			final = true
		default:
			return fmt.Errorf("crypto: reading plaintext: %w", err)
		}
		if i == math.MaxUint64 {
			return errors.New("crypto: envelope too long")
		}
		setEnvelopeNonce(nonce, i, final)
		if err := writeAll(w, aead.Seal(buf[:0], nonce, buf[:n], ad[:])); err != nil {
			return err
		}
		if final {
			return nil
		}
	}
}

// OpenStream reads an envelope from r and writes its plaintext to w. It
// parses the header, calls unwrap to get the 32-byte data key back (from the
// server, using h.KeyTag and h.WrappedKey), and decrypts one chunk at a time.
// The header unwrap sees is well formed but not yet authenticated: the chunks
// authenticate it, so a forged header only makes decryption fail.
//
// Each chunk is authenticated before any of its plaintext is written, and the
// final chunk is written only once the end of r is confirmed. On failure,
// though, w may already hold the plaintext of earlier chunks: the caller must
// discard the output unless OpenStream returns nil (for a file: write to a
// temporary name and rename it on success).
//
// Errors: ErrNotEnvelope for input that does not start with the magic; an
// error wrapping ErrDecrypt, the same whatever the cause, for a malformed
// header, a wrong data key, or a truncated, extended, reordered or tampered
// stream; errors from unwrap, r and w wrapped as they are. The header is
// returned once it has been parsed, even when decryption then fails.
func OpenStream(w io.Writer, r io.Reader, unwrap func(h EnvelopeHeader) ([]byte, error)) (EnvelopeHeader, error) {
	h, salt, ad, err := readEnvelopePreamble(r)
	if err != nil {
		return EnvelopeHeader{}, err
	}
	dataKey, err := unwrap(h)
	if err != nil {
		return h, fmt.Errorf("crypto: unwrapping the data key: %w", err)
	}
	aead, err := envelopeAEAD(dataKey, salt)
	if err != nil {
		return h, err
	}
	buf := make([]byte, h.ChunkSize+gcmTagSize)
	nonce := make([]byte, gcmNonceSize)
	for i := uint64(0); i < math.MaxUint64; i++ {
		n, err := io.ReadFull(r, buf)
		final := false
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			final = true
		default:
			return h, fmt.Errorf("crypto: reading envelope: %w", err)
		}
		if n < gcmTagSize { // no final chunk, or a runt
			return h, errEnvelopeCorrupt
		}
		setEnvelopeNonce(nonce, i, final)
		pt, err := aead.Open(buf[:0], nonce, buf[:n], ad[:])
		if err != nil {
			return h, errEnvelopeCorrupt
		}
		if final {
			var extra [1]byte
			switch n, err := io.ReadFull(r, extra[:]); {
			case n > 0:
				return h, errEnvelopeCorrupt // data after the final chunk
			case err != io.EOF:
				return h, fmt.Errorf("crypto: reading envelope: %w", err)
			}
		}
		if err := writeAll(w, pt); err != nil {
			return h, err
		}
		if final {
			return h, nil
		}
	}
	return h, errEnvelopeCorrupt
}

// checkEnvelopeHeader validates the fields SealStream writes and OpenStream
// accepts.
func checkEnvelopeHeader(h EnvelopeHeader) error {
	switch {
	case h.KeyTag == "" || !utf8.ValidString(h.KeyTag):
		return errors.New("crypto: envelope key tag must be non-empty UTF-8")
	case h.ChunkSize < 1 || h.ChunkSize > maxEnvelopeChunk:
		return fmt.Errorf("crypto: envelope chunk size %d out of range 1 to %d", h.ChunkSize, maxEnvelopeChunk)
	}
	if _, _, err := ParseCiphertext(h.WrappedKey); err != nil {
		return fmt.Errorf("crypto: envelope wrapped key: %w", err)
	}
	return nil
}

// encodeEnvelopePreamble returns magic ‖ headerLen ‖ header.
func encodeEnvelopePreamble(h EnvelopeHeader, salt []byte) ([]byte, error) {
	if len(salt) != envelopeSaltSize {
		return nil, errors.New("crypto: envelope salt must be 32 bytes")
	}
	header, err := json.Marshal(envelopeHeaderJSON{
		V: envelopeVersion, KeyTag: h.KeyTag, WrappedKey: h.WrappedKey, Chunk: h.ChunkSize, Salt: salt,
	})
	if err != nil {
		return nil, fmt.Errorf("crypto: encoding the envelope header: %w", err)
	}
	if len(header) > maxEnvelopeHeader {
		return nil, errors.New("crypto: envelope header too long")
	}
	out := make([]byte, 0, len(envelopeMagic)+4+len(header))
	out = append(out, envelopeMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(header)))
	return append(out, header...), nil
}

// readEnvelopePreamble reads and strictly parses magic ‖ headerLen ‖ header,
// and returns the header, the salt and the chunks' associated data.
func readEnvelopePreamble(r io.Reader) (h EnvelopeHeader, salt []byte, ad [sha256.Size]byte, err error) {
	var fixed [len(envelopeMagic) + 4]byte
	if _, err := io.ReadFull(r, fixed[:len(envelopeMagic)]); err != nil || string(fixed[:len(envelopeMagic)]) != envelopeMagic {
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return h, nil, ad, fmt.Errorf("crypto: reading envelope: %w", err)
		}
		return h, nil, ad, ErrNotEnvelope
	}
	if _, err := io.ReadFull(r, fixed[len(envelopeMagic):]); err != nil {
		return h, nil, ad, readErr(err)
	}
	n := binary.BigEndian.Uint32(fixed[len(envelopeMagic):])
	if n < 1 || n > maxEnvelopeHeader {
		return h, nil, ad, errEnvelopeCorrupt
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(r, header); err != nil {
		return h, nil, ad, readErr(err)
	}
	var j envelopeHeaderJSON
	if err := json.Unmarshal(header, &j); err != nil || j.V != envelopeVersion {
		return h, nil, ad, errEnvelopeCorrupt
	}
	h = EnvelopeHeader{KeyTag: j.KeyTag, WrappedKey: j.WrappedKey, ChunkSize: j.Chunk}
	if checkEnvelopeHeader(h) != nil {
		return EnvelopeHeader{}, nil, ad, errEnvelopeCorrupt
	}
	preamble, err := encodeEnvelopePreamble(h, j.Salt)
	if err != nil || !bytes.Equal(preamble[len(fixed):], header) { // canonical bytes only
		return EnvelopeHeader{}, nil, ad, errEnvelopeCorrupt
	}
	// The associated data hashes the bytes as read, not as re-encoded, so that
	// it would still catch an edit the canonical check above let through.
	return h, j.Salt, sha256.Sum256(append(fixed[:], header...)), nil
}

// readErr maps a short read inside the envelope to errEnvelopeCorrupt and
// passes any other read error through.
func readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errEnvelopeCorrupt
	}
	return fmt.Errorf("crypto: reading envelope: %w", err)
}

// envelopeAEAD returns AES-256-GCM under the file's subkey.
func envelopeAEAD(dataKey, salt []byte) (cipher.AEAD, error) {
	if len(dataKey) != 32 {
		return nil, errors.New("crypto: envelope data key must be 32 bytes")
	}
	subkey, err := hkdf.Key(sha256.New, dataKey, salt, envelopeInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("crypto: deriving the envelope key: %w", err)
	}
	defer clear(subkey)
	return newGCM(subkey)
}

// setEnvelopeNonce sets the 12-byte nonce to 0x000000 ‖ uint64be(i) ‖ final flag.
func setEnvelopeNonce(nonce []byte, i uint64, final bool) {
	clear(nonce[:3])
	binary.BigEndian.PutUint64(nonce[3:11], i)
	nonce[11] = 0
	if final {
		nonce[11] = envelopeFinal
	}
}

// writeAll writes b to w, turning a short write into io.ErrShortWrite.
func writeAll(w io.Writer, b []byte) error {
	n, err := w.Write(b)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("crypto: writing: %w", err)
	}
	return nil
}
