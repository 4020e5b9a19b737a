package kmsv3

import (
	"errors"
	"strconv"
	"testing"
)

// FuzzParseError feeds error answers to the parser: it never panics, always
// gives an *Error or (batch only) a *BatchError with the answer's status,
// and a batch failure index is a canonical decimal.
func FuzzParseError(f *testing.F) {
	f.Add(400, []byte(`{"failures":{"3":{"errorCode":"InvalidParameter","message":"m"}}}`), true)
	f.Add(404, []byte(`{"error":{"errorCode":"ResourceNotFound","message":"m","fieldErrors":[{"field":"a","message":"b"}]}}`), false)
	f.Add(414, []byte(``), false)
	f.Add(400, []byte(`{"failures":{"007":{}}}`), true)
	c := &Client{token: "tok"}
	f.Fuzz(func(t *testing.T, status int, body []byte, batch bool) {
		err := c.parseError(status, body, "rid", batch)
		var e *Error
		var be *BatchError
		switch {
		case errors.As(err, &be):
			if !batch || be.Status != status || len(be.Failures) == 0 {
				t.Fatalf("BatchError %+v from batch=%v status %d", be, batch, status)
			}
			for i := range be.Failures {
				if _, ok := index(strconv.Itoa(i)); !ok {
					t.Fatalf("index %d", i)
				}
			}
			_ = be.Error()
		case errors.As(err, &e):
			if e.Status != status {
				t.Fatalf("status %d, want %d", e.Status, status)
			}
			_ = e.Error()
		default:
			t.Fatalf("error %T", err)
		}
	})
}
