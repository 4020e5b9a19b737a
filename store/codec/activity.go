package codec

import (
	"encoding/json"
	"fmt"

	"github.com/nkms/nkms"
)

// activityRecord is the stored form of nkms.Activity, format 1. It holds no
// secrets: a usage-log entry says who called what on a key, and how it ended.
// Refused and Count came later, omitted when zero: a record written before
// them decodes as an ordinary entry, and an older nkms that reads a newer
// record ignores them (it sees a refusal as an ordinary failed call).
type activityRecord struct {
	Format      int    `json:"format"`
	Tag         string `json:"tag"`
	Keystore    int64  `json:"keystore"`
	KeyName     string `json:"keyName"`
	Time        int64  `json:"time"`
	RequestType string `json:"requestType"`
	Requestor   string `json:"requestor,omitempty"`
	IP          string `json:"ip,omitempty"`
	Result      string `json:"result"`
	Action      string `json:"action"`
	AuthType    string `json:"authType"`
	Message     string `json:"message,omitempty"`
	Refused     bool   `json:"refused,omitempty"`
	Count       int    `json:"count,omitempty"`
	Version     int    `json:"version,omitempty"` // came after Count: absent is 0, "none"
}

// MarshalActivity encodes a as a record. It fails only for a time that Unix
// nanoseconds cannot hold (before 1678 or after 2262).
func MarshalActivity(a *nkms.Activity) ([]byte, error) {
	at, err := nanos(a.Time)
	if err != nil {
		return nil, fmt.Errorf("encode activity of key %s: time: %w", a.Tag, err)
	}
	r := activityRecord{
		Format: Format, Tag: a.Tag, Keystore: a.Keystore, KeyName: a.KeyName, Time: at,
		RequestType: a.RequestType, Requestor: a.Requestor, IP: a.IP,
		Result: a.Result, Action: a.Action, AuthType: a.AuthType, Message: a.Message,
		Refused: a.Refused, Count: a.Count, Version: a.Version,
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, fmt.Errorf("encode activity of key %s: %w", a.Tag, err)
	}
	return b, nil
}

// UnmarshalActivity decodes a record written by MarshalActivity.
func UnmarshalActivity(b []byte) (*nkms.Activity, error) {
	var r activityRecord
	if err := decode(b, &r, &r.Format, "activity"); err != nil {
		return nil, err
	}
	return &nkms.Activity{
		Tag: r.Tag, Keystore: r.Keystore, KeyName: r.KeyName, Time: fromNanos(r.Time),
		RequestType: r.RequestType, Requestor: r.Requestor, IP: r.IP,
		Result: r.Result, Action: r.Action, AuthType: r.AuthType, Message: r.Message,
		Refused: r.Refused, Count: r.Count, Version: r.Version,
	}, nil
}
