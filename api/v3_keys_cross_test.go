package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The key operations of API 2.0 and 3.0 act on the same keys (D9 "One
// service, two wires"): what one API creates, changes or deletes, the other
// sees so.

// kv3Field returns the value at path (object keys, or array indexes as
// decimal strings) of a JSON body, formatted with %v; "<absent>" if missing.
func kv3Field(t *testing.T, body []byte, path ...string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				return "<absent>"
			}
		case []any:
			var i int
			fmt.Sscan(p, &i)
			if i >= len(x) {
				return "<absent>"
			}
			v = x[i]
		default:
			return "<absent>"
		}
	}
	if v == nil {
		return "null"
	}
	return fmt.Sprint(v)
}

// kv3Expect checks an answer's status and the values at some paths of its body
// (path elements joined with "."; "data." for 2.0 answers).
func kv3Expect(t *testing.T, what string, status int, body []byte, wantStatus int, want map[string]string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: HTTP %d %s, want %d", what, status, body, wantStatus)
	}
	for p, w := range want {
		if got := kv3Field(t, body, strings.Split(p, ".")...); got != w {
			t.Errorf("%s: %s = %s, want %s (body %s)", what, p, got, w, body)
		}
	}
}

func TestV3KeyCreatedThroughV3UsedThroughV2(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := e.kv3Create(kv3AES)
	s, b := e.raw("GET", "/kms/v1/keys/"+tag, "")
	kv3Expect(t, "2.0 key info", s, b, 200, map[string]string{"data.keyName": "k-aes", "data.status": "ENABLE",
		"data.memo": "payment key", "data.isAutoRotation": "true", "data.rotationPeriod": "30", "data.currentVersion": "1"})
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/encrypt", `{"plaintext":"aGVsbG8="}`)
	kv3Expect(t, "2.0 encrypt", s, b, 200, nil)
	ct := kv3Field(t, b, "data", "ciphertext")

	// A version made through 3.0 is the current version of 2.0.
	s, b = e.kv3("POST", "/kms/v3/keys/"+tag+"/versions", "", "")
	kv3Expect(t, "3.0 createKeyVersion", s, b, 201, map[string]string{"version": "2"})
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/re-encrypt", `{"ciphertext":"`+ct+`"}`)
	kv3Expect(t, "2.0 re-encrypt", s, b, 200, nil)
	if got := kv3Field(t, b, "data", "newCiphertext"); !strings.HasPrefix(got, "ncpkms:v2:") {
		t.Errorf("2.0 re-encrypt after a 3.0 rotation: %s, want version 2", b)
	}

	// Disabled through 3.0: 2.0 sees DISABLE and refuses crypto.
	s, b = e.kv3("PATCH", "/kms/v3/keys/"+tag, `{"status":"DISABLED","keyName":"k-renamed"}`, kv3Merge)
	kv3Expect(t, "3.0 updateKey", s, b, 200, nil)
	s, b = e.raw("GET", "/kms/v1/keys/"+tag, "")
	kv3Expect(t, "2.0 key info after 3.0 disable", s, b, 200, map[string]string{"data.status": "DISABLE", "data.keyName": "k-renamed"})
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/decrypt", `{"ciphertext":"`+ct+`"}`)
	kv3Expect(t, "2.0 decrypt of a key disabled through 3.0", s, b, 422, nil)

	// Revoked through 3.0: 2.0 sees REVOKE with the same destroy date.
	s, b = e.kv3("POST", "/kms/v3/keys/"+tag+"/request-deletion", "", "")
	kv3Expect(t, "3.0 requestKeyDeletion", s, b, 200, map[string]string{"scheduledDestroyDateTime": "2026-11-30T09:00:00.000Z"})
	s, b = e.raw("GET", "/kms/v1/keys/"+tag, "")
	kv3Expect(t, "2.0 key info after 3.0 deletion request", s, b, 200, map[string]string{"data.status": "REVOKE",
		"data.destroyDate": fmt.Sprint(float64(t0.Add(72 * time.Hour).UnixMilli()))})

	// Cancelled through 2.0, deleted through 3.0 after a new request.
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/cancel-deletion", "")
	kv3Expect(t, "2.0 cancel", s, b, 200, nil)
	s, b = e.kv3("GET", "/kms/v3/keys/"+tag, "", "")
	kv3Expect(t, "3.0 getKey after 2.0 cancel", s, b, 200, map[string]string{"status": "DISABLED", "scheduledDestroyDateTime": "null"})
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/request-deletion", "")
	kv3Expect(t, "2.0 request deletion", s, b, 200, nil)
	s, b = e.kv3("DELETE", "/kms/v3/keys/"+tag, "", "")
	kv3Expect(t, "3.0 deleteKey of a key revoked through 2.0", s, b, 204, nil)
	s, b = e.raw("GET", "/kms/v1/keys/"+tag, "")
	kv3Expect(t, "2.0 key info after 3.0 delete", s, b, 404, nil)
}

func TestV3KeyCreatedThroughV2UsedThroughV3(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.svc.HSMEmulate = true // no HSM here: COMMON_HSM kept in software (--hsm-emulate-software)
	s, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"legacy","keyType":"RSA2048","protectionType":"COMMON_HSM","memo":"from 2.0"}`)
	kv3Expect(t, "2.0 create", s, b, 200, nil)
	tag := kv3Field(t, b, "data", "keyTag")
	s, b = e.kv3("GET", "/kms/v3/keys/"+tag, "", "")
	kv3Expect(t, "3.0 getKey", s, b, 200, map[string]string{"keyName": "legacy", "keyType": "RSA2048", "protectionType": "COMMON_HSM",
		"status": "ENABLED", "memo": "from 2.0", "currentVersion": "1", "createdDateTime": "2026-11-27T09:00:00.000Z"})
	s, b = e.kv3("GET", "/kms/v3/keys", "", "")
	kv3Expect(t, "3.0 listKeys", s, b, 200, map[string]string{"totalCount": "1", "keys.0.keyTag": tag, "pageNo": "0", "pageSize": "20"})

	e.clk.Add(time.Minute)
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/rotate", "")
	kv3Expect(t, "2.0 rotate", s, b, 200, nil)
	s, b = e.kv3("GET", "/kms/v3/keys/"+tag+"/versions", "", "")
	kv3Expect(t, "3.0 listKeyVersions after a 2.0 rotation", s, b, 200, map[string]string{"totalCount": "2",
		"versions.0.current": "false", "versions.1.current": "true", "versions.1.createdDateTime": "2026-11-27T09:01:00.000Z"})

	// A version disabled through 2.0 reads DISABLED through 3.0, and back.
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/versions/1/disable", "")
	kv3Expect(t, "2.0 disable version", s, b, 200, nil)
	s, b = e.kv3("GET", "/kms/v3/keys/"+tag+"/versions/1", "", "")
	kv3Expect(t, "3.0 getKeyVersion", s, b, 200, map[string]string{"status": "DISABLED", "current": "false"})
	s, b = e.kv3("PATCH", "/kms/v3/keys/"+tag+"/versions/1", `{"status":"ENABLED"}`, "")
	kv3Expect(t, "3.0 enable version", s, b, 200, map[string]string{"status": "ENABLED"})
	s, b = e.raw("GET", "/kms/v1/keys/"+tag+"/versions", "")
	kv3Expect(t, "2.0 versions", s, b, 200, map[string]string{"data.versionList.0.status": "ENABLE"})

	// Signed through 2.0, the key disabled through 2.0: 3.0 sees DISABLED.
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/disable", "")
	kv3Expect(t, "2.0 disable", s, b, 200, nil)
	s, b = e.kv3("GET", "/kms/v3/keys/"+tag, "", "")
	kv3Expect(t, "3.0 getKey after 2.0 disable", s, b, 200, map[string]string{"status": "DISABLED", "statusChangedDateTime": "2026-11-27T09:01:00.000Z"})
	s, b = e.kv3("POST", "/kms/v3/keys/"+tag+"/versions", "", "")
	kv3Expect(t, "3.0 createKeyVersion of a key disabled through 2.0", s, b, 400, map[string]string{"error.errorCode": "InvalidState"})

	// Revoked through 2.0: REVOKED through 3.0; cancelled through 3.0.
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/request-deletion", "")
	kv3Expect(t, "2.0 request deletion", s, b, 200, nil)
	s, b = e.kv3("GET", "/kms/v3/keys/"+tag, "", "")
	kv3Expect(t, "3.0 getKey after 2.0 deletion request", s, b, 200, map[string]string{"status": "REVOKED",
		"scheduledDestroyDateTime": "2026-11-30T09:01:00.000Z"})
	s, b = e.kv3("POST", "/kms/v3/keys/"+tag+"/cancel-deletion", "", "")
	kv3Expect(t, "3.0 cancel", s, b, 200, map[string]string{"status": "DISABLED"})
	s, b = e.raw("GET", "/kms/v1/keys/"+tag, "")
	kv3Expect(t, "2.0 key info after 3.0 cancel", s, b, 200, map[string]string{"data.status": "DISABLE", "data.destroyDate": "null"})
}

// TestV3RotationPeriodAcrossAPIs: periodDays reads as §3.1.8 says — the last
// period when rotation was turned off through 3.0, 0 when turned off through
// 2.0 or created off — and 2.0 sees the period 3.0 set.
func TestV3RotationPeriodAcrossAPIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := e.kv3Create(kv3AES) // on, 30 days
	rot := "/kms/v3/keys/" + tag + "/rotation"
	s, b := e.kv3("PATCH", rot, `{"enabled":false}`, kv3Merge)
	kv3Expect(t, "3.0 off", s, b, 200, map[string]string{"enabled": "false", "periodDays": "30"})
	s, b = e.raw("GET", "/kms/v1/keys/"+tag, "")
	kv3Expect(t, "2.0 after 3.0 off", s, b, 200, map[string]string{"data.isAutoRotation": "false", "data.rotationPeriod": "30"})
	e.clk.Add(time.Hour)
	s, b = e.kv3("PATCH", rot, `{"enabled":true}`, kv3Merge)
	kv3Expect(t, "3.0 on again: the kept period", s, b, 200, map[string]string{"enabled": "true", "periodDays": "30",
		"nextRotationDateTime": "2026-12-27T10:00:00.000Z"})

	// Turned off through 2.0: 3.0 reads 0, and turning it on through 3.0
	// takes the default.
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/disable-auto-rotation", "")
	kv3Expect(t, "2.0 off", s, b, 200, nil)
	s, b = e.kv3("GET", rot, "", "")
	kv3Expect(t, "3.0 after 2.0 off", s, b, 200, map[string]string{"enabled": "false", "periodDays": "0", "nextRotationDateTime": "null"})
	s, b = e.kv3("PATCH", rot, `{"enabled":true}`, kv3Merge)
	kv3Expect(t, "3.0 on after 2.0 off", s, b, 200, map[string]string{"periodDays": "90"})
	s, b = e.kv3("PATCH", rot, `{"periodDays":12}`, kv3Merge)
	kv3Expect(t, "3.0 period", s, b, 200, map[string]string{"periodDays": "12"})
	s, b = e.raw("GET", "/kms/v1/keys/"+tag, "")
	kv3Expect(t, "2.0 after 3.0 period", s, b, 200, map[string]string{"data.isAutoRotation": "true", "data.rotationPeriod": "12"})

	// Turned off through 3.0, then "off" again through 2.0: 0.
	s, b = e.kv3("PATCH", rot, `{"enabled":false}`, kv3Merge)
	kv3Expect(t, "3.0 off", s, b, 200, map[string]string{"periodDays": "12"})
	s, b = e.raw("POST", "/kms/v1/keys/"+tag+"/disable-auto-rotation", "")
	kv3Expect(t, "2.0 off again", s, b, 200, nil)
	s, b = e.kv3("GET", rot, "", "")
	kv3Expect(t, "3.0 after 2.0 off again", s, b, 200, map[string]string{"periodDays": "0"})

	// Created off through 3.0 with a period: 0, and 2.0 shows its default.
	off := e.kv3Create(`{"keyName":"off","keyType":"AES256","protectionType":"BASIC","rotation":{"enabled":false,"periodDays":45}}`)
	s, b = e.kv3("GET", "/kms/v3/keys/"+off+"/rotation", "", "")
	kv3Expect(t, "3.0 created off", s, b, 200, map[string]string{"periodDays": "0"})
	s, b = e.raw("GET", "/kms/v1/keys/"+off, "")
	kv3Expect(t, "2.0 created off through 3.0", s, b, 200, map[string]string{"data.rotationPeriod": "90"})
}

// TestV3DeletionScheduledWithV2: a deletion requested through 3.0 and one
// requested through 2.0 at the same instant are destroyed by the same
// scheduler pass at the same instant, and not a millisecond before.
func TestV3DeletionScheduledWithV2(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v3 := e.kv3Create(kv3AES)
	v2 := e.kv3Create(kv3Off)
	s, b := e.kv3("POST", "/kms/v3/keys/"+v3+"/request-deletion", "", "")
	kv3Expect(t, "3.0 request", s, b, 200, nil)
	s, b = e.raw("POST", "/kms/v1/keys/"+v2+"/request-deletion", "")
	kv3Expect(t, "2.0 request", s, b, 200, nil)

	e.clk.Add(kv3Window - time.Millisecond)
	res, err := e.svc.RunDue(context.Background())
	if err != nil || res.Destroyed != 0 {
		t.Fatalf("pass a millisecond early: %+v, %v; want nothing destroyed", res, err)
	}
	for _, tag := range []string{v3, v2} {
		s, b = e.kv3("GET", "/kms/v3/keys/"+tag, "", "")
		kv3Expect(t, "before the instant", s, b, 200, map[string]string{"status": "REVOKED"})
	}
	e.clk.Add(time.Millisecond)
	res, err = e.svc.RunDue(context.Background())
	if err != nil || res.Destroyed != 2 {
		t.Fatalf("pass at the instant: %+v, %v; want both destroyed", res, err)
	}
	for _, tag := range []string{v3, v2} {
		s, b = e.kv3("GET", "/kms/v3/keys/"+tag, "", "")
		kv3Expect(t, "3.0 after the pass", s, b, 404, map[string]string{"error.errorCode": "ResourceNotFound"})
		s, b = e.raw("GET", "/kms/v1/keys/"+tag, "")
		kv3Expect(t, "2.0 after the pass", s, b, 404, nil)
	}
}

const kv3Window = 72 * time.Hour

// TestV3AutoRotationByScheduler: a key created through 3.0 with rotation on
// is rotated by the scheduler when due; both APIs see the new version and
// the next date.
func TestV3AutoRotationByScheduler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := e.kv3Create(kv3AES) // 30 days
	e.clk.Add(30 * 24 * time.Hour)
	res, err := e.svc.RunDue(context.Background())
	if err != nil || res.Rotated != 1 {
		t.Fatalf("pass: %+v, %v; want one rotation", res, err)
	}
	s, b := e.kv3("GET", "/kms/v3/keys/"+tag, "", "")
	kv3Expect(t, "3.0 getKey", s, b, 200, map[string]string{"currentVersion": "2"})
	s, b = e.kv3("GET", "/kms/v3/keys/"+tag+"/rotation", "", "")
	kv3Expect(t, "3.0 getKeyRotation", s, b, 200, map[string]string{"periodDays": "30", "nextRotationDateTime": "2027-01-26T09:00:00.000Z"})
	s, b = e.raw("GET", "/kms/v1/keys/"+tag, "")
	kv3Expect(t, "2.0 key info", s, b, 200, map[string]string{"data.currentVersion": "2",
		"data.nextRotationDate": fmt.Sprint(float64(t0.Add(60 * 24 * time.Hour).UnixMilli()))})
}
