package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// Fixed inputs shared by the envelope tests. The known answers below were
// computed from them by an independent implementation of the format in
// Python with pyca/cryptography (HKDF-SHA256, AESGCM, json.dumps with
// separators=(",", ":")).
var (
	envKey     = seq(0x00, 32)
	envSalt    = seq(0x20, 32)
	envWrapped = "ncpkms:v1:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7"
)

// seq returns n bytes counting up from start.
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// pattern returns n bytes of non-repeating-per-chunk plaintext.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) ^ byte(i>>8)
	}
	return b
}

func envHeader(chunk int) EnvelopeHeader {
	return EnvelopeHeader{KeyTag: "kat-key", WrappedKey: envWrapped, ChunkSize: chunk}
}

// sealFixed seals pt under envKey with the fixed salt.
func sealFixed(tb testing.TB, pt []byte, chunk int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := sealStream(&buf, bytes.NewReader(pt), envKey, envHeader(chunk), envSalt); err != nil {
		tb.Fatalf("sealStream: %v", err)
	}
	return buf.Bytes()
}

func unwrapWith(key []byte) func(EnvelopeHeader) ([]byte, error) {
	return func(EnvelopeHeader) ([]byte, error) { return key, nil }
}

// openBytes opens env with envKey and returns what OpenStream wrote.
func openBytes(env []byte) ([]byte, EnvelopeHeader, error) {
	var out bytes.Buffer
	h, err := OpenStream(&out, bytes.NewReader(env), unwrapWith(envKey))
	return out.Bytes(), h, err
}

// preambleLen returns the length of magic ‖ headerLen ‖ header of env.
func preambleLen(env []byte) int {
	return 12 + int(binary.BigEndian.Uint32(env[8:12]))
}

func TestEnvelopeKnownAnswers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		pt    []byte
		chunk int
		want  string
	}{
		{"70 bytes in chunks of 32", []byte("The nkms envelope known-answer test: seventy bytes of plaintext here.."), 32,
			"4e4b4d53454e5631000000c57b2276223a312c226b6579546167223a226b61742d6b6579222c22777261707065644b6579223a226e63706b6d733a76313a5145464351305246526b64495355704c5445314f54314252556c4e5556565a5857466c6157317864586c396759574a6a5a47566d5a326870616d7473625735766348467963335231646e643465587037222c226368756e6b223a33322c2273616c74223a22494345694979516c4a69636f4b536f724c4330754c7a41784d6a4d304e5459334f446b364f7a7739506a383d227d" +
				"10153849a95dd4af62ae211b02119ea57339bc6f3c517000fca40e8ea3bb24221e456043f7c661855dd5203c399d5a22" +
				"687d19fdb02dd63fbbfcce5ed80d8582d58f24bcfc3fd5498769dd7e0edf44ca56860debd2d935749bbab774dccd9d90" +
				"bcb5de1b0adb5184a956cc38983788b4ed2a2acbbf96"},
		{"empty, default chunk", nil, 0,
			"4e4b4d53454e5631000000c87b2276223a312c226b6579546167223a226b61742d6b6579222c22777261707065644b6579223a226e63706b6d733a76313a5145464351305246526b64495355704c5445314f54314252556c4e5556565a5857466c6157317864586c396759574a6a5a47566d5a326870616d7473625735766348467963335231646e643465587037222c226368756e6b223a36353533362c2273616c74223a22494345694979516c4a69636f4b536f724c4330754c7a41784d6a4d304e5459334f446b364f7a7739506a383d227d" +
				"818cfa257f96e5852849ad5d1f577aa7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			want := unhex(t, c.want)
			if got := sealFixed(t, c.pt, c.chunk); !bytes.Equal(got, want) {
				t.Errorf("sealStream =\n%x\nwant\n%x", got, want)
			}
			got, h, err := openBytes(want)
			wantH := envHeader(c.chunk)
			if c.chunk == 0 {
				wantH.ChunkSize = DefaultEnvelopeChunk
			}
			if err != nil || !bytes.Equal(got, c.pt) || h != wantH {
				t.Errorf("OpenStream = %q, %+v, %v; want %q, %+v, nil", got, h, err, c.pt, wantH)
			}
		})
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, chunk := range []int{1, 64, DefaultEnvelopeChunk} {
		for _, n := range []int{0, 1, chunk - 1, chunk, chunk + 1, 3*chunk + 7} {
			t.Run(fmt.Sprintf("chunk %d size %d", chunk, n), func(t *testing.T) {
				t.Parallel()
				pt := pattern(n)
				var env bytes.Buffer
				if err := SealStream(&env, bytes.NewReader(pt), envKey, envHeader(chunk)); err != nil {
					t.Fatalf("SealStream: %v", err)
				}
				pre := preambleLen(env.Bytes())
				if got, want := env.Len(), pre+n/chunk*(chunk+gcmTagSize)+n%chunk+gcmTagSize; got != want {
					t.Errorf("sealed length = %d, want %d", got, want)
				}
				got, h, err := openBytes(env.Bytes())
				if err != nil || !bytes.Equal(got, pt) || h != envHeader(chunk) {
					t.Errorf("OpenStream = %d bytes (equal: %t), %+v, %v; want %d bytes, %+v, nil",
						len(got), bytes.Equal(got, pt), h, err, n, envHeader(chunk))
				}
			})
		}
	}
}

// TestEnvelopeReadSizes checks that the bytes written depend only on the
// input, not on how the reader splits it.
func TestEnvelopeReadSizes(t *testing.T) {
	t.Parallel()
	pt := pattern(3*64 + 7)
	want := sealFixed(t, pt, 64)
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var env bytes.Buffer
			if err := sealStream(&env, wrap(bytes.NewReader(pt)), envKey, envHeader(64), envSalt); err != nil || !bytes.Equal(env.Bytes(), want) {
				t.Errorf("sealStream = %x, %v; want %x, nil", env.Bytes(), err, want)
			}
			var out bytes.Buffer
			if _, err := OpenStream(&out, wrap(bytes.NewReader(want)), unwrapWith(envKey)); err != nil || !bytes.Equal(out.Bytes(), pt) {
				t.Errorf("OpenStream = %x, %v; want %x, nil", out.Bytes(), err, pt)
			}
		})
	}
}

func TestEnvelopeSaltIsRandom(t *testing.T) {
	t.Parallel()
	var a, b bytes.Buffer
	for _, w := range []*bytes.Buffer{&a, &b} {
		if err := SealStream(w, strings.NewReader("same"), envKey, envHeader(0)); err != nil {
			t.Fatal(err)
		}
	}
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two seals of the same input under the same data key are equal")
	}
}

// checkFailure checks that err is the expected kind of failure and that out
// holds only whole, authenticated, non-final chunks: a prefix of pt whose
// length is a multiple of chunk and at most maxOut.
func checkFailure(t *testing.T, name string, out, pt []byte, err, want error, chunk, maxOut int) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", name, err, want)
	}
	if want == ErrDecrypt && errors.Is(err, ErrNotEnvelope) || want == ErrNotEnvelope && errors.Is(err, ErrDecrypt) {
		t.Errorf("%s: err = %v is both ErrDecrypt and ErrNotEnvelope", name, err)
	}
	if len(out)%chunk != 0 || len(out) > maxOut || len(out) >= len(pt) || !bytes.Equal(out, pt[:len(out)]) {
		t.Errorf("%s: wrote %d bytes (prefix of plaintext: %t); want a prefix of whole chunks of at most %d bytes",
			name, len(out), len(out) <= len(pt) && bytes.Equal(out, pt[:len(out)]), maxOut)
	}
}

func TestEnvelopeTruncation(t *testing.T) {
	t.Parallel()
	const chunk = 64
	pt := pattern(3*chunk + 7)
	env := sealFixed(t, pt, chunk)
	pre := preambleLen(env)
	for n := range len(env) { // every chunk boundary and every byte inside
		out, _, err := openBytes(env[:n])
		want, maxOut := error(ErrDecrypt), 0
		if n < len(envelopeMagic) {
			want = ErrNotEnvelope
		}
		if n > pre {
			maxOut = min(3, (n-pre)/(chunk+gcmTagSize)) * chunk
		}
		name := fmt.Sprintf("cut at %d", n)
		checkFailure(t, name, out, pt, err, want, chunk, maxOut)
		if len(out) != maxOut {
			t.Errorf("%s: wrote %d bytes, want the %d bytes of the whole chunks before the cut", name, len(out), maxOut)
		}
	}
}

func TestEnvelopeBitFlips(t *testing.T) {
	t.Parallel()
	const chunk = 64
	pt := pattern(3*chunk + 7)
	env := sealFixed(t, pt, chunk)
	pre := preambleLen(env)
	for i := range env {
		for _, mask := range []byte{0x01, 0x80} {
			out, _, err := openBytes(flip(env, i, mask))
			want, maxOut := error(ErrDecrypt), 0
			if i < len(envelopeMagic) {
				want = ErrNotEnvelope
			}
			if i >= pre {
				maxOut = min(3, (i-pre)/(chunk+gcmTagSize)) * chunk // the chunks before the flipped one
			}
			checkFailure(t, fmt.Sprintf("byte %d ^ %#x", i, mask), out, pt, err, want, chunk, maxOut)
		}
	}
}

// rawEnvelope returns magic ‖ len(header) ‖ header ‖ rest.
func rawEnvelope(header string, rest []byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte(envelopeMagic), uint32(len(header)))
	return append(append(b, header...), rest...)
}

func TestEnvelopeCorruption(t *testing.T) {
	t.Parallel()
	const chunk, ct = 64, 64 + gcmTagSize
	pt := pattern(3*chunk + 7)
	env := sealFixed(t, pt, chunk)
	pre := preambleLen(env)
	header, body := string(env[12:pre]), env[pre:]
	c := func(i int) []byte { return body[i*ct : min(len(body), (i+1)*ct)] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// other is the same plaintext sealed under the same key with another salt.
	var other bytes.Buffer
	if err := SealStream(&other, bytes.NewReader(pt), envKey, envHeader(chunk)); err != nil {
		t.Fatal(err)
	}
	otherBody := other.Bytes()[preambleLen(other.Bytes()):]
	salt := base64.StdEncoding.EncodeToString(envSalt)
	hdr := func(v int, tag, wrapped string, chunk int, salt string) string {
		return fmt.Sprintf(`{"v":%d,"keyTag":%q,"wrappedKey":%q,"chunk":%d,"salt":%q}`, v, tag, wrapped, chunk, salt)
	}
	if got := hdr(1, "kat-key", envWrapped, chunk, salt); got != header {
		t.Fatalf("test header %s differs from the sealed one %s", got, header)
	}
	for _, tc := range []struct {
		name   string
		in     []byte
		want   error
		maxOut int
		key    []byte // envKey if nil
		// refused: the header is refused before unwrap is called
		refused bool
	}{
		{"empty input", nil, ErrNotEnvelope, 0, nil, false},
		{"other magic", cat([]byte("NKMSENV2"), env[8:]), ErrNotEnvelope, 0, nil, false},
		{"plain text", []byte("hello, world\n"), ErrNotEnvelope, 0, nil, false},
		{"header only", env[:pre], ErrDecrypt, 0, nil, false},
		{"drop final chunk", env[:len(env)-len(c(3))], ErrDecrypt, 3 * chunk, nil, false},
		{"drop first chunk", cat(env[:pre], c(1), c(2), c(3)), ErrDecrypt, 0, nil, false},
		{"drop middle chunk", cat(env[:pre], c(0), c(2), c(3)), ErrDecrypt, chunk, nil, false},
		{"swap chunks 0 and 1", cat(env[:pre], c(1), c(0), c(2), c(3)), ErrDecrypt, 0, nil, false},
		{"swap chunks 1 and 2", cat(env[:pre], c(0), c(2), c(1), c(3)), ErrDecrypt, chunk, nil, false},
		{"repeat chunk 0", cat(env[:pre], c(0), c(0), c(2), c(3)), ErrDecrypt, chunk, nil, false},
		{"final chunk early", cat(env[:pre], c(0), c(3)), ErrDecrypt, chunk, nil, false},
		{"append one byte", cat(env, []byte{0}), ErrDecrypt, 3 * chunk, nil, false},
		{"append a tag's worth", cat(env, make([]byte, gcmTagSize)), ErrDecrypt, 3 * chunk, nil, false},
		{"append the final chunk again", cat(env, c(3)), ErrDecrypt, 3 * chunk, nil, false},
		{"append another envelope", cat(env, env), ErrDecrypt, 3 * chunk, nil, false},
		{"chunks of another file", cat(env[:pre], otherBody), ErrDecrypt, 0, nil, false},
		{"wrong data key", env, ErrDecrypt, 0, seq(0x01, 32), false},
		// Well-formed headers that differ from the sealed one: the chunks' associated data no longer matches.
		{"other key tag", rawEnvelope(hdr(1, "kat-kez", envWrapped, chunk, salt), body), ErrDecrypt, 0, nil, false},
		{"other wrapped key", rawEnvelope(hdr(1, "kat-key", "ncpkms:v2:AAAA", chunk, salt), body), ErrDecrypt, 0, nil, false},
		{"other chunk size", rawEnvelope(hdr(1, "kat-key", envWrapped, chunk+gcmTagSize, salt), body), ErrDecrypt, 0, nil, false},
		{"other salt", rawEnvelope(hdr(1, "kat-key", envWrapped, chunk, base64.StdEncoding.EncodeToString(seq(1, 32))), body), ErrDecrypt, 0, nil, false},
		// Malformed headers.
		{"header length 0", rawEnvelope("", body), ErrDecrypt, 0, nil, true},
		{"header length too big", cat([]byte(envelopeMagic), []byte{0, 1, 0, 1}, make([]byte, 1<<16+1)), ErrDecrypt, 0, nil, true},
		{"header length short", cat(env[:8], []byte{0, 0}), ErrDecrypt, 0, nil, true},
		{"not JSON", rawEnvelope("nkms", body), ErrDecrypt, 0, nil, true},
		{"version 2", rawEnvelope(hdr(2, "kat-key", envWrapped, chunk, salt), body), ErrDecrypt, 0, nil, true},
		{"whitespace", rawEnvelope(" "+header, body), ErrDecrypt, 0, nil, true},
		{"field order", rawEnvelope(fmt.Sprintf(`{"keyTag":"kat-key","wrappedKey":%q,"chunk":%d,"salt":%q,"v":1}`, envWrapped, chunk, salt), body), ErrDecrypt, 0, nil, true},
		{"unknown field", rawEnvelope(header[:len(header)-1]+`,"x":1}`, body), ErrDecrypt, 0, nil, true},
		{"duplicate field", rawEnvelope(`{"v":1,"v":1,`+header[len(`{"v":1,`):], body), ErrDecrypt, 0, nil, true},
		{"field name case", rawEnvelope(strings.Replace(header, "keyTag", "KeyTag", 1), body), ErrDecrypt, 0, nil, true},
		{"empty key tag", rawEnvelope(hdr(1, "", envWrapped, chunk, salt), body), ErrDecrypt, 0, nil, true},
		{"bad wrapped key", rawEnvelope(hdr(1, "kat-key", "vault:v1:AAAA", chunk, salt), body), ErrDecrypt, 0, nil, true},
		{"chunk 0", rawEnvelope(hdr(1, "kat-key", envWrapped, 0, salt), body), ErrDecrypt, 0, nil, true},
		{"chunk too big", rawEnvelope(hdr(1, "kat-key", envWrapped, maxEnvelopeChunk+1, salt), body), ErrDecrypt, 0, nil, true},
		{"chunk negative", rawEnvelope(hdr(1, "kat-key", envWrapped, -1, salt), body), ErrDecrypt, 0, nil, true},
		{"short salt", rawEnvelope(hdr(1, "kat-key", envWrapped, chunk, base64.StdEncoding.EncodeToString(envSalt[:31])), body), ErrDecrypt, 0, nil, true},
		{"unpadded salt", rawEnvelope(hdr(1, "kat-key", envWrapped, chunk, strings.TrimRight(salt, "=")), body), ErrDecrypt, 0, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := tc.key
			if key == nil {
				key = envKey
			}
			var out bytes.Buffer
			unwrapped := false
			_, err := OpenStream(&out, bytes.NewReader(tc.in), func(EnvelopeHeader) ([]byte, error) {
				unwrapped = true
				return key, nil
			})
			checkFailure(t, tc.name, out.Bytes(), pt, err, tc.want, chunk, tc.maxOut)
			if tc.refused && unwrapped {
				t.Errorf("unwrap was called for a malformed header")
			}
		})
	}
}

func TestEnvelopeSealErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		key  []byte
		h    EnvelopeHeader
	}{
		{"short data key", envKey[:31], envHeader(0)},
		{"no key tag", envKey, EnvelopeHeader{WrappedKey: envWrapped}},
		{"key tag not UTF-8", envKey, EnvelopeHeader{KeyTag: "\xff", WrappedKey: envWrapped}},
		{"no wrapped key", envKey, EnvelopeHeader{KeyTag: "k"}},
		{"bad wrapped key", envKey, EnvelopeHeader{KeyTag: "k", WrappedKey: "ncpkms:v1:not base64"}},
		{"negative chunk", envKey, EnvelopeHeader{KeyTag: "k", WrappedKey: envWrapped, ChunkSize: -1}},
		{"chunk too big", envKey, EnvelopeHeader{KeyTag: "k", WrappedKey: envWrapped, ChunkSize: maxEnvelopeChunk + 1}},
		{"header too long", envKey, EnvelopeHeader{KeyTag: strings.Repeat("k", maxEnvelopeHeader), WrappedKey: envWrapped}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			if err := SealStream(&out, strings.NewReader("x"), tc.key, tc.h); err == nil || out.Len() != 0 {
				t.Errorf("SealStream wrote %d bytes, err %v; want nothing written and an error", out.Len(), err)
			}
		})
	}
}

var errBoom = errors.New("boom")

// eofThenMore reads first, reports io.EOF once, then reads then.
type eofThenMore struct {
	first, then []byte
	eofSent     bool
}

func (r *eofThenMore) Read(p []byte) (int, error) {
	switch {
	case len(r.first) > 0:
		n := copy(p, r.first)
		r.first = r.first[n:]
		return n, nil
	case !r.eofSent:
		r.eofSent = true
		return 0, io.EOF
	case len(r.then) > 0:
		n := copy(p, r.then)
		r.then = r.then[n:]
		return n, nil
	}
	return 0, io.EOF
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errBoom
	}
	return len(p), nil
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestEnvelopeIOAndUnwrapErrors(t *testing.T) {
	t.Parallel()
	pt := pattern(3*64 + 7)
	env := sealFixed(t, pt, 64)
	failingReader := func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b), iotest.ErrReader(errBoom)) }
	check := func(t *testing.T, err, want error) {
		t.Helper()
		if !errors.Is(err, want) || want != ErrDecrypt && errors.Is(err, ErrDecrypt) {
			t.Errorf("err = %v, want %v and not ErrDecrypt", err, want)
		}
	}
	t.Run("seal read", func(t *testing.T) {
		check(t, SealStream(io.Discard, failingReader(pt[:100]), envKey, envHeader(64)), errBoom)
	})
	t.Run("seal write header", func(t *testing.T) {
		check(t, SealStream(&failWriter{}, bytes.NewReader(pt), envKey, envHeader(64)), errBoom)
	})
	t.Run("seal write chunk", func(t *testing.T) {
		check(t, SealStream(&failWriter{after: 300}, bytes.NewReader(pt), envKey, envHeader(64)), errBoom)
	})
	t.Run("seal short write", func(t *testing.T) {
		check(t, SealStream(shortWriter{}, bytes.NewReader(pt), envKey, envHeader(64)), io.ErrShortWrite)
	})
	for _, n := range []int{4, 10, 100, preambleLen(env) + 100, len(env) - 1, len(env)} {
		t.Run(fmt.Sprint("open read ", n), func(t *testing.T) {
			_, err := OpenStream(io.Discard, failingReader(env[:n]), unwrapWith(envKey))
			check(t, err, errBoom)
		})
	}
	t.Run("data after an early EOF", func(t *testing.T) {
		// A greedy read folds appended bytes into the final chunk, whose tag
		// then fails; a reader that reports EOF and then has more (a terminal,
		// a growing file) reaches the check after the final chunk instead.
		var out bytes.Buffer
		r := &eofThenMore{first: env, then: []byte{0}}
		if _, err := OpenStream(&out, r, unwrapWith(envKey)); !errors.Is(err, ErrDecrypt) || out.Len() != 3*64 {
			t.Errorf("wrote %d bytes, err %v; want the %d bytes of the non-final chunks and ErrDecrypt", out.Len(), err, 3*64)
		}
	})
	t.Run("open write", func(t *testing.T) {
		_, err := OpenStream(&failWriter{after: 100}, bytes.NewReader(env), unwrapWith(envKey))
		check(t, err, errBoom)
	})
	t.Run("unwrap error", func(t *testing.T) {
		var out bytes.Buffer
		h, err := OpenStream(&out, bytes.NewReader(env), func(h EnvelopeHeader) ([]byte, error) { return nil, errBoom })
		check(t, err, errBoom)
		if out.Len() != 0 || h != envHeader(64) {
			t.Errorf("wrote %d bytes, header %+v; want nothing and %+v", out.Len(), h, envHeader(64))
		}
	})
	t.Run("unwrap short key", func(t *testing.T) {
		var out bytes.Buffer
		if _, err := OpenStream(&out, bytes.NewReader(env), unwrapWith(envKey[:16])); err == nil || out.Len() != 0 {
			t.Errorf("wrote %d bytes, err %v; want nothing and an error", out.Len(), err)
		}
	})
}

// zeroReader reads an endless stream of zero bytes without touching memory
// beyond the caller's buffer.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// zeroCheckWriter counts bytes and checks that they are all zero.
type zeroCheckWriter struct {
	n       int64
	nonZero bool
}

var zeroChunk = make([]byte, DefaultEnvelopeChunk)

func (w *zeroCheckWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), len(zeroChunk))
		w.nonZero = w.nonZero || !bytes.Equal(p[:k], zeroChunk[:k])
		w.n += int64(k)
		p = p[k:]
	}
	return n, nil
}

// streamZeros seals size zero bytes and opens them again through a pipe, so
// neither side ever holds more than a chunk.
func streamZeros(size int64) (*zeroCheckWriter, error) {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(SealStream(pw, io.LimitReader(zeroReader{}, size), envKey, envHeader(0)))
	}()
	w := &zeroCheckWriter{}
	_, err := OpenStream(w, pr, unwrapWith(envKey))
	pr.Close()
	return w, err
}

func TestEnvelopeLargeStream(t *testing.T) {
	t.Parallel()
	size := int64(256 << 20)
	if testing.Short() {
		size = 16 << 20
	}
	w, err := streamZeros(size + 7)
	if err != nil || w.n != size+7 || w.nonZero {
		t.Errorf("streamed %d bytes (non-zero: %t), %v; want %d zero bytes, nil", w.n, w.nonZero, err, size+7)
	}
}

// TestEnvelopeConstantMemory checks that sealing and opening allocate the same
// whatever the size of the stream: no allocation per chunk. It does not run in
// parallel, so that other tests' allocations do not count.
func TestEnvelopeConstantMemory(t *testing.T) {
	measure := func(size int64) (bytes, mallocs uint64) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := streamZeros(size); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, after.Mallocs - before.Mallocs
	}
	measure(1 << 20) // warm up
	smallB, smallM := measure(1 << 20)
	largeB, largeM := measure(32 << 20) // 496 more chunks
	t.Logf("1 MiB: %d bytes in %d allocations; 32 MiB: %d bytes in %d allocations", smallB, smallM, largeB, largeM)
	if largeB > smallB+DefaultEnvelopeChunk/2 || largeM > smallM+100 {
		t.Errorf("32 MiB allocated %d bytes in %d allocations, 1 MiB %d bytes in %d; want no growth with size",
			largeB, largeM, smallB, smallM)
	}
}

// FuzzOpenStream checks that OpenStream never panics, fails only with
// ErrDecrypt or ErrNotEnvelope, and accepts only exactly what SealStream
// writes under the fuzzer's key: any input it opens must seal back, with the
// same header and salt, to the very same bytes.
func FuzzOpenStream(f *testing.F) {
	for _, n := range []int{0, 5, 16, 40} {
		env := sealFixed(f, pattern(n), 16)
		f.Add(env)
		f.Add(env[:len(env)-1])
		f.Add(flip(env, len(env)-1, 1))
		f.Add(flip(env, 20, 1))
	}
	f.Add([]byte(envelopeMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		h, err := OpenStream(&out, bytes.NewReader(data), unwrapWith(envKey))
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrNotEnvelope) {
				t.Fatalf("OpenStream: unexpected error %v", err)
			}
			return
		}
		_, salt, _, err := readEnvelopePreamble(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("OpenStream accepted a header that readEnvelopePreamble refuses: %v", err)
		}
		var again bytes.Buffer
		if err := sealStream(&again, bytes.NewReader(out.Bytes()), envKey, h, salt); err != nil || !bytes.Equal(again.Bytes(), data) {
			t.Fatalf("OpenStream accepted\n%x\nwhich seals back to\n%x, %v", data, again.Bytes(), err)
		}
	})
}

func benchmarkEnvelope(b *testing.B, open bool) {
	const size = 8 << 20
	pt := make([]byte, size)
	var env bytes.Buffer
	if err := SealStream(&env, bytes.NewReader(pt), envKey, envHeader(0)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if open {
			_, err = OpenStream(io.Discard, bytes.NewReader(env.Bytes()), unwrapWith(envKey))
		} else {
			err = SealStream(io.Discard, bytes.NewReader(pt), envKey, envHeader(0))
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealStream(b *testing.B) { benchmarkEnvelope(b, false) }
func BenchmarkOpenStream(b *testing.B) { benchmarkEnvelope(b, true) }
