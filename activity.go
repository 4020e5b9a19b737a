package nkms

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Activity is one usage-log entry of a key (ncp-kms-api.md §6.7): a call that
// touched the key, or a scheduler action on it.
type Activity struct {
	Tag         string
	Keystore    int64
	KeyName     string // the key's name when the event happened
	Time        time.Time
	RequestType string // "API" or "SYSTEM"
	Requestor   string // access key id; for token calls the access key that issued the token; "" for SYSTEM
	IP          string // client address; "" for SYSTEM
	Result      string // "SUCCESS" or "FAIL"
	Action      string // operation name, e.g. "Encrypt", "RequestKeyDeletion", "AutoRotate"
	AuthType    string // "ACCOUNT", "TOKEN" or "SYSTEM"
	// Message is the outcome detail: "" on success, the error code otherwise;
	// for a refusal that stands for several calls, the code and the count,
	// e.g. "210 (x37)". Never secrets.
	Message string
	// Refused marks a call that the caller's role or the key's IP ACL
	// refused before the operation ran. A failure of the operation itself
	// (a 422, a decryption failure) is an ordinary entry. Refusals are kept
	// apart from ordinary entries and aggregated (see ActivityLog), so that
	// no flood of them pushes a real use out of the log or shows as the
	// key's last use. Entries stored before refusals were marked are ordinary.
	Refused bool
	// Count is how many refused calls a refusal stands for; 0 and 1 both mean
	// one (see Calls). Only refusals are aggregated.
	Count int
	// Version is the key version a crypto call used (encrypted, decrypted,
	// signed or verified with, public key of); 0 for other calls, and when a
	// call's items named several versions.
	Version int
}

// Calls is how many calls a stands for: Count for an aggregated refusal, 1
// for any other entry.
func (a *Activity) Calls() int { return max(a.Count, 1) }

// RefusalActivity is the usage-log entry of a call of c on key tag, at time
// at, that c's role or the key's IP ACL refused before the operation ran:
// action is the operation name, code the error code of the refusal (the
// domain's: "permission_denied" for a role, "forbidden" for the IP ACL).
func RefusalActivity(tag string, at time.Time, c Caller, action, code string) Activity {
	a := Activity{Tag: tag, Time: at, RequestType: RequestAPI, Requestor: c.AccessKey, IP: c.IP,
		Result: ResultFail, Action: action, AuthType: AuthAccount, Message: code, Refused: true, Count: 1}
	if c.Token {
		a.AuthType = AuthToken
	}
	return a
}

// Refusals are aggregated: every refusal of one key by one requestor, from
// one address, of one action, auth type and code, within one minute (UTC)
// is one entry, whose Time is the first of those calls that the log took in
// and whose Count (and Message, "210 (x37)") says how many there were. The
// Recorder folds a flush window's refusals of a group into one entry before
// it writes them, and AppendActivities folds an entry into the group's entry
// already stored for that minute: a flood costs at most one write per group
// per flush window and one entry per group per minute.

// RefusalGroup is what refusals must share to be aggregated into one entry.
// It is comparable, for use as a map key.
type RefusalGroup struct {
	Tag, RequestType, Requestor, IP, Action, AuthType, Code string
	Minute                                                  int64 // Unix time of the minute's start
}

// RefusalGroup returns the group of a, a refusal.
func (a *Activity) RefusalGroup() RefusalGroup {
	return RefusalGroup{Tag: a.Tag, RequestType: a.RequestType, Requestor: a.Requestor, IP: a.IP,
		Action: a.Action, AuthType: a.AuthType, Code: a.refusalCode(), Minute: RefusalMinute(a.Time).Unix()}
}

// RefusalMinute returns the start of the minute of t (UTC): refusals of one
// group are aggregated per minute.
func RefusalMinute(t time.Time) time.Time { return t.Truncate(time.Minute) }

// AddRefusals folds the calls of b, a refusal of a's group, into a: a's
// Count grows by b's and its Message shows the new count. a keeps its time,
// key name and every other field.
func (a *Activity) AddRefusals(b *Activity) {
	code := a.refusalCode()
	a.Count = a.Calls() + b.Calls()
	a.Message = code + countSuffix(a.Count)
}

// refusalCode is the error code of a refusal: its Message without the count.
func (a *Activity) refusalCode() string {
	if a.Count > 1 {
		return strings.TrimSuffix(a.Message, countSuffix(a.Count))
	}
	return a.Message
}

// countSuffix is what Message adds to the code of a refusal of n calls.
func countSuffix(n int) string {
	if n <= 1 {
		return ""
	}
	return " (x" + strconv.Itoa(n) + ")"
}

// MaxRefusalsPerKey bounds the refusal entries of a key's log (see
// RefusalsPerKey).
const MaxRefusalsPerKey = 1000

// RefusalsPerKey is how many refusal entries a key's log keeps beside at
// most maxPerKey ordinary entries: min(maxPerKey, MaxRefusalsPerKey), and no
// limit when maxPerKey <= 0, as for ordinary entries.
func RefusalsPerKey(maxPerKey int) int {
	if maxPerKey <= 0 {
		return 0
	}
	return min(maxPerKey, MaxRefusalsPerKey)
}

// ActivityQuery selects one page of a key's usage log: entries with
// From <= Time <= To whose Keyword (if any) occurs, case-insensitively, in
// Action, Requestor, IP, Result, AuthType, RequestType or Message, and that
// pass every field filter given (API 3.0); newest first.
type ActivityQuery struct {
	Tag      string
	From, To time.Time
	Keyword  string
	// Field filters: an entry passes a filter that is not empty when its
	// field equals (case-sensitively) one of the filter's values.
	Actions      []string // Action
	Results      []string // Result
	RequestTypes []string // RequestType
	Requestors   []string // Requestor
	IPs          []string // IP
	PageNo       int      // from 1
	PageSize     int      // 1-200
}

// ActivityLog is the part of a Store that keeps usage logs. Entries of a key
// leave the store with the key (in Delete's transaction).
//
// A key's log holds two kinds of entries, each with its own quota: ordinary
// entries and refusals (Activity.Refused). Each kind is trimmed oldest first
// within its own kind only, so no number of refusals ever removes an
// ordinary entry; and refusals are aggregated (see RefusalGroup), so a flood
// of them costs few entries.
type ActivityLog interface {
	// AppendActivities stores entries (of any keys) in one transaction. An
	// entry whose key no longer exists is dropped silently. A refusal whose
	// group already has an entry in the key's log for that minute is added
	// to it (Activity.AddRefusals) instead of being stored apart. After
	// appending, each touched key keeps at most maxPerKey ordinary entries
	// and at most RefusalsPerKey(maxPerKey) refusals (the oldest of each
	// kind go first); maxPerKey <= 0 means no count limit.
	AppendActivities(ctx context.Context, entries []Activity, maxPerKey int) error
	// Activities returns one page of a key's entries, of both kinds, and the
	// number of all entries that match the query. Entries with the same
	// time come most recently appended first (an aggregated refusal counts
	// as appended when its group's first entry was). An unknown tag has an
	// empty log. The caller fills every field of the query (To included).
	Activities(ctx context.Context, q ActivityQuery) ([]Activity, int, error)
	// LastActivity returns the key's newest entry that is not a refusal;
	// ErrNoActivity when it has none (a key with only refusals was never used).
	LastActivity(ctx context.Context, tag string) (*Activity, error)
	// PruneActivities removes every entry older than before, of both kinds,
	// and returns how many.
	PruneActivities(ctx context.Context, before time.Time) (int, error)
}

// ErrNoActivity is the answer of LastActivity for a key that was never used.
var ErrNoActivity = &Error{Code: NotFound, Message: "the key has no usage log yet"}
