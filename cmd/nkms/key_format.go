package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nkms/nkms/client"
)

// printKeyList writes keys as an aligned table. NOTE says when a key
// pending deletion is destroyed, and "-" otherwise.
func (c *cli) printKeyList(keys []client.KeySummary, now time.Time) error {
	w := c.table()
	fmt.Fprintln(w, "KEY TAG\tNAME\tTYPE\tSTATE\tCREATED\tNOTE")
	for _, k := range keys {
		note := "-"
		if k.Status == "REVOKE" && k.DestroyDate != nil {
			note = destroyNote(*k.DestroyDate, now)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n",
			k.KeyTag, printable(k.KeyName), k.KeyType, k.Status, formatMillis(k.RegisterDate), note)
	}
	return w.Flush()
}

// printKeyInfo writes k as aligned "field  value" lines.
func (c *cli) printKeyInfo(k *client.Key, now time.Time) error {
	w := c.table()
	line := func(field, value string) { fmt.Fprintf(w, "%s\t%s\n", field, value) }
	line("tag", k.KeyTag)
	line("name", printable(k.KeyName))
	line("type", k.KeyType)
	line("state", k.Status)
	if k.Status == "REVOKE" && k.DestroyDate != nil {
		line("destroy date", destroyWhen(*k.DestroyDate, now))
	}
	line("protection", k.ProtectionType)
	line("current version", strconv.Itoa(k.CurrentVersion))
	line("convergent", yesNo(k.IsConvergent))
	if k.IsAutoRotation {
		line("auto rotation", fmt.Sprintf("on, every %d days", k.RotationPeriod))
		line("next rotation", formatMillisPtr(k.NextRotationDate))
	} else {
		line("auto rotation", "off")
	}
	memo := "-"
	if k.Memo != "" {
		memo = printable(k.Memo)
	}
	line("memo", memo)
	line("keystore", strconv.FormatInt(k.KeystoreID, 10))
	if k.Nrn != "" {
		line("nrn", k.Nrn)
	}
	line("created", formatMillis(k.RegisterDate))
	return w.Flush()
}

// printVersions writes the versions of a key as an aligned table; the
// current version is marked "(current)".
func (c *cli) printVersions(l *client.VersionList) error {
	w := c.table()
	fmt.Fprintln(w, "VERSION\tSTATUS\tROTATED\tCHANGED")
	for _, v := range l.VersionList {
		version := strconv.Itoa(v.Version)
		if v.Version == l.CurrentVersion {
			version += " (current)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", version, v.Status, formatMillis(v.RotatedDate), formatMillis(v.StatusDate))
	}
	return w.Flush()
}

// destroyNote says when a key pending deletion, destroyed at the
// millisecond time ms, goes: "destroyed in 71h 58m", or "destruction
// overdue" once the time is past and the server has not yet purged it.
func destroyNote(ms int64, now time.Time) string {
	left := timeLeft(ms, now)
	if left == "overdue" {
		return "destruction overdue"
	}
	return "destroyed in " + left
}

// destroyWhen writes the destroy time ms of a key pending deletion with
// the time left: "2026-11-30 11:23:48Z (in 71h 59m)".
func destroyWhen(ms int64, now time.Time) string {
	left := timeLeft(ms, now)
	if left != "overdue" {
		left = "in " + left
	}
	return fmt.Sprintf("%s (%s)", formatMillis(ms), left)
}

// formatMillisPtr is formatMillis for a time that may be absent.
func formatMillisPtr(ms *int64) string {
	if ms == nil {
		return "-"
	}
	return formatMillis(*ms)
}

// yesNo writes a boolean for people.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// printable returns s, or s quoted when it holds control characters
// (a memo with a newline or tab must not break, or forge, table lines).
func printable(s string) string {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}
