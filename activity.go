package nkms

import (
	"context"
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
	Message     string // outcome detail: "" on success, the error code otherwise; never secrets
}

// ActivityQuery selects one page of a key's usage log: entries with
// From <= Time <= To whose Keyword (if any) occurs, case-insensitively, in
// Action, Requestor, IP, Result, AuthType, RequestType or Message; newest first.
type ActivityQuery struct {
	Tag      string
	From, To time.Time
	Keyword  string
	PageNo   int // from 1
	PageSize int // 1-200
}

// ActivityLog is the part of a Store that keeps usage logs. Entries of a key
// leave the store with the key (in Delete's transaction).
type ActivityLog interface {
	// AppendActivities stores entries (of any keys) in one transaction. An
	// entry whose key no longer exists is dropped silently. After appending,
	// each touched key keeps at most maxPerKey entries (the oldest go first);
	// maxPerKey <= 0 means no count limit.
	AppendActivities(ctx context.Context, entries []Activity, maxPerKey int) error
	// Activities returns one page of a key's entries and the number of all
	// entries that match the query. Entries with the same time come most
	// recently appended first. An unknown tag has an empty log. The caller
	// fills every field of the query (To included).
	Activities(ctx context.Context, q ActivityQuery) ([]Activity, int, error)
	// LastActivity returns the key's newest entry; ErrNoActivity when it has none.
	LastActivity(ctx context.Context, tag string) (*Activity, error)
	// PruneActivities removes every entry older than before and returns how many.
	PruneActivities(ctx context.Context, before time.Time) (int, error)
}

// ErrNoActivity is the answer of LastActivity for a key that was never used.
var ErrNoActivity = &Error{Code: NotFound, Message: "the key has no usage log yet"}
