package main

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// FuzzParseLogTime: --since/--until never panic; what is not a date is a
// duration ago, which is never after now.
func FuzzParseLogTime(f *testing.F) {
	for _, s := range []string{"2026-01-02T15:04:05Z", "2026-01-02", "2026-01-02 15:04", "90m", "2h", "7d", "0d",
		"-1d", "106752d", "1e3h", "yesterday", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parseLogTime("--since", v, now)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--since ") {
				t.Fatalf("error does not name the flag: %v", err)
			}
			return
		}
		for _, layout := range logTimeLayouts {
			if _, err := time.Parse(layout, v); err == nil {
				return // a date: any date
			}
		}
		if v != "" && got.After(now) {
			t.Fatalf("%q is a duration ago, but gives %v, after now (%v)", v, got, now)
		}
	})
}

// FuzzParseTokenHours: token lifetimes are "", UL or 1-17520 hours; never a panic.
func FuzzParseTokenHours(f *testing.F) {
	for _, s := range []string{"", "UL", "ul", "1", "17520", "17521", "0", "-5", "9999999999999999999999", "1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h, err := parseTokenHours("--access-hours", v)
		if err != nil {
			return
		}
		if v != "" && !strings.EqualFold(v, "UL") && (h < 1 || h > 17520) {
			t.Fatalf("%q accepted as %d hours", v, h)
		}
	})
}

// FuzzTokenExpiry: reading a token's exp claim never panics, whatever the
// server (or anyone in between) sent.
func FuzzTokenExpiry(f *testing.F) {
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"exp":1790000000,"kt":"x"}`))
	f.Add("eyJhbGciOiJIUzI1NiJ9." + claims + ".sig")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":9223372036854775807}`)) + ".s")
	f.Fuzz(func(t *testing.T, tok string) {
		if ms := tokenExpiry(tok); ms != nil {
			_ = expiryText(ms)
		}
	})
}
