package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// VerifyError names the first bad line of an audit log and why it is bad.
type VerifyError struct {
	Line   int // 1-based
	Reason string
}

func (e *VerifyError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Verify reads an audit log and checks its chain: every line a record,
// seq counting from 1, every prev the hash of the line before. It returns
// the number of lines that check out; the error, a *VerifyError unless
// reading failed, names the first bad line. An edited line is named by the
// line after it, whose prev no longer matches: Verify then names the edited
// one (or the one after it, if that one's prev is what was changed).
func Verify(r io.Reader) (lines int, err error) {
	br := bufio.NewReaderSize(r, MaxLine)
	prevSeq, prevHash := int64(0), zeroHash
	for n := 1; ; n++ {
		b, err := br.ReadSlice('\n')
		switch {
		case err == io.EOF && len(b) == 0:
			return n - 1, nil
		case err == io.EOF:
			return n - 1, &VerifyError{n, "cut short: no newline at its end (a torn line from a crash, or a truncated file)"}
		case errors.Is(err, bufio.ErrBufferFull):
			return n - 1, &VerifyError{n, fmt.Sprintf("longer than %d bytes", MaxLine)}
		case err != nil:
			return n - 1, err
		}
		b = b[:len(b)-1]
		rec, err := parseRecord(b)
		if err != nil {
			return n - 1, &VerifyError{n, err.Error()}
		}
		if err := link(rec, prevSeq, prevHash); err != nil {
			if errors.Is(err, errPrev) && n > 1 {
				return n - 2, &VerifyError{n - 1, fmt.Sprintf("its hash is not the prev of line %d: line %d was changed (or the prev of line %d was)", n, n-1, n)}
			}
			return n - 1, &VerifyError{n, err.Error()}
		}
		prevSeq, prevHash = rec.Seq, hashHex(b)
	}
}

var errPrev = errors.New("prev does not match")

// link checks that rec follows a line with seq prevSeq and hash prevHash
// (0 and zeroHash for the first line of a file).
func link(rec Record, prevSeq int64, prevHash []byte) error {
	if rec.Seq != prevSeq+1 {
		why := "lines are missing before it, or were reordered or inserted"
		if prevSeq == 0 {
			why = "the file does not start at the beginning of a chain"
		}
		return fmt.Errorf("seq %d, want %d: %s", rec.Seq, prevSeq+1, why)
	}
	if rec.Prev != string(prevHash) {
		if prevSeq == 0 {
			return errors.New("prev is not 64 zeros, as the first line's must be")
		}
		return errPrev
	}
	return nil
}

// parseRecord decodes one line (without its newline).
func parseRecord(b []byte) (Record, error) {
	var rec Record
	if len(b) == 0 {
		return rec, errors.New("empty line")
	}
	if b[0] != '{' {
		return rec, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, errors.New("not a valid audit record: " + jsonProblem(err))
	}
	if len(rec.Prev) != len(zeroHash) || !isLowerHex(rec.Prev) {
		return rec, errors.New("prev is not 64 lower-case hex digits")
	}
	if bytes.IndexByte(b, '\r') >= 0 {
		return rec, errors.New("carriage return in the line")
	}
	return rec, nil
}

// jsonProblem says what is wrong without echoing the line.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("JSON syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return "field " + te.Field + " has the wrong type"
	}
	return "malformed JSON"
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
