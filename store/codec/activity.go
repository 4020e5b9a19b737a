package codec

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/jsontext"
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
	return AppendActivity(nil, a)
}

// AppendActivity appends the record of a to dst, as MarshalActivity makes
// it: byte for byte what encoding/json makes of activityRecord. The usage
// log writes one record per call, so the usual record, whose strings are
// printable ASCII that JSON does not escape, is written field by field
// here; any other goes through encoding/json.
func AppendActivity(dst []byte, a *nkms.Activity) ([]byte, error) {
	at, err := nanos(a.Time)
	if err != nil {
		return dst, fmt.Errorf("encode activity of key %s: time: %w", a.Tag, err)
	}
	for _, s := range [...]string{a.Tag, a.KeyName, a.RequestType, a.Requestor, a.IP, a.Result, a.Action, a.AuthType, a.Message} {
		if !jsontext.Verbatim(s) {
			return appendActivityJSON(dst, a, at)
		}
	}
	dst = append(dst, `{"format":`...)
	dst = strconv.AppendInt(dst, Format, 10)
	dst = appendString(dst, `,"tag":`, a.Tag)
	dst = append(dst, `,"keystore":`...)
	dst = strconv.AppendInt(dst, a.Keystore, 10)
	dst = appendString(dst, `,"keyName":`, a.KeyName)
	dst = append(dst, `,"time":`...)
	dst = strconv.AppendInt(dst, at, 10)
	dst = appendString(dst, `,"requestType":`, a.RequestType)
	if a.Requestor != "" {
		dst = appendString(dst, `,"requestor":`, a.Requestor)
	}
	if a.IP != "" {
		dst = appendString(dst, `,"ip":`, a.IP)
	}
	dst = appendString(dst, `,"result":`, a.Result)
	dst = appendString(dst, `,"action":`, a.Action)
	dst = appendString(dst, `,"authType":`, a.AuthType)
	if a.Message != "" {
		dst = appendString(dst, `,"message":`, a.Message)
	}
	if a.Refused {
		dst = append(dst, `,"refused":true`...)
	}
	if a.Count != 0 {
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendInt(dst, int64(a.Count), 10)
	}
	if a.Version != 0 {
		dst = append(dst, `,"version":`...)
		dst = strconv.AppendInt(dst, int64(a.Version), 10)
	}
	return append(dst, '}'), nil
}

// appendActivityJSON is AppendActivity through encoding/json.
func appendActivityJSON(dst []byte, a *nkms.Activity, at int64) ([]byte, error) {
	r := activityRecord{
		Format: Format, Tag: a.Tag, Keystore: a.Keystore, KeyName: a.KeyName, Time: at,
		RequestType: a.RequestType, Requestor: a.Requestor, IP: a.IP,
		Result: a.Result, Action: a.Action, AuthType: a.AuthType, Message: a.Message,
		Refused: a.Refused, Count: a.Count, Version: a.Version,
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return dst, fmt.Errorf("encode activity of key %s: %w", a.Tag, err)
	}
	return append(dst, b...), nil
}

// appendString appends name (`,"field":`) and s, verbatim, in quotes.
func appendString(dst []byte, name, s string) []byte {
	dst = append(dst, name...)
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
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
