package storetest

import (
	"testing"
	"time"

	"github.com/nkms/nkms"
)

// testActivityFilters: the field filters of API 3.0 (actionCode,
// resultCode, requestType, requestorId, requestorIp) match exactly and
// case-sensitively, OR within one filter, AND across filters, with the
// keyword, the time range and paging, over ordinary entries and refusals.
func testActivityFilters(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "Filtered"))
	at := func(i int, action, result, reqType, requestor, ip string, refused bool) nkms.Activity {
		a := activity(k, t0.Add(time.Duration(i)*time.Second), action)
		a.Result, a.RequestType, a.Requestor, a.IP, a.Refused = result, reqType, requestor, ip, refused
		if refused {
			a.Count, a.Message = 1, "permission_denied"
		}
		return a
	}
	as := []nkms.Activity{
		at(0, "Encrypt", "SUCCESS", "API", "NKa", "192.0.2.1", false),
		at(1, "Decrypt", "FAIL", "API", "NKb", "192.0.2.2", false),
		at(2, "Encrypt", "FAIL", "API", "NKa", "192.0.2.2", true),
		at(3, "AutoRotate", "SUCCESS", "SYSTEM", "", "", false),
		at(4, "Encrypt", "SUCCESS", "API", "NKb", "192.0.2.1", false),
		at(5, "encrypt", "SUCCESS", "API", "NKa", "192.0.2.1", false), // another action: filters are case-sensitive
	}
	appendActivities(t, s, 0, as...)
	pick := func(is ...int) []nkms.Activity {
		var out []nkms.Activity
		for _, i := range is {
			out = append(out, as[i])
		}
		return newestFirst(out)
	}
	for _, tc := range []struct {
		name string
		set  func(*nkms.ActivityQuery)
		want []nkms.Activity
	}{
		{"one action", func(q *nkms.ActivityQuery) { q.Actions = []string{"Encrypt"} }, pick(0, 2, 4)},
		{"two actions (OR)", func(q *nkms.ActivityQuery) { q.Actions = []string{"Decrypt", "AutoRotate"} }, pick(1, 3)},
		{"result", func(q *nkms.ActivityQuery) { q.Results = []string{"FAIL"} }, pick(1, 2)},
		{"request type", func(q *nkms.ActivityQuery) { q.RequestTypes = []string{"SYSTEM"} }, pick(3)},
		{"requestor", func(q *nkms.ActivityQuery) { q.Requestors = []string{"NKb"} }, pick(1, 4)},
		{"ip", func(q *nkms.ActivityQuery) { q.IPs = []string{"192.0.2.2"} }, pick(1, 2)},
		{"action AND requestor", func(q *nkms.ActivityQuery) {
			q.Actions, q.Requestors = []string{"Encrypt"}, []string{"NKa"}
		}, pick(0, 2)},
		{"action AND result AND ip", func(q *nkms.ActivityQuery) {
			q.Actions, q.Results, q.IPs = []string{"Encrypt", "Decrypt"}, []string{"FAIL"}, []string{"192.0.2.2", "192.0.2.9"}
		}, pick(1, 2)},
		{"filter and keyword", func(q *nkms.ActivityQuery) { q.Actions, q.Keyword = []string{"Encrypt"}, "nkb" }, pick(4)},
		{"filter and time range", func(q *nkms.ActivityQuery) {
			q.Actions, q.From, q.To = []string{"Encrypt"}, t0.Add(time.Second), t0.Add(3*time.Second)
		}, pick(2)},
		{"no value matches", func(q *nkms.ActivityQuery) { q.Actions = []string{"ENCRYPT"} }, nil},
		{"prefix is not a match", func(q *nkms.ActivityQuery) { q.IPs = []string{"192.0.2"} }, nil},
	} {
		q := allOf(k)
		tc.set(&q)
		checkActivities(t, s, tc.name, q, tc.want, len(tc.want))
	}
	// Paging over a filtered log: the second page of one.
	q := allOf(k)
	q.Actions, q.PageNo, q.PageSize = []string{"Encrypt"}, 2, 1
	checkActivities(t, s, "second page of a filter", q, pick(0, 2, 4)[1:2], 3)
}
