package activityfilter

import (
	"slices"

	"github.com/nkms/nkms"
)

// Filter is what an nkms.ActivityQuery asks of an entry beside its time:
// its keyword, and its field filters (exact, OR within one filter, AND
// across filters).
type Filter struct {
	keyword Keyword
	fields  []field
}

type field struct {
	of     func(*nkms.Activity) string
	values []string
}

// New prepares the filter of q.
func New(q nkms.ActivityQuery) Filter {
	f := Filter{keyword: NewKeyword(q.Keyword)}
	for _, fd := range []field{
		{func(a *nkms.Activity) string { return a.Action }, q.Actions},
		{func(a *nkms.Activity) string { return a.Result }, q.Results},
		{func(a *nkms.Activity) string { return a.RequestType }, q.RequestTypes},
		{func(a *nkms.Activity) string { return a.Requestor }, q.Requestors},
		{func(a *nkms.Activity) string { return a.IP }, q.IPs},
	} {
		if len(fd.values) > 0 {
			f.fields = append(f.fields, fd)
		}
	}
	return f
}

// Empty reports whether f passes every entry.
func (f Filter) Empty() bool { return f.keyword.Empty() && len(f.fields) == 0 }

// Match reports whether the entry passes f.
func (f Filter) Match(a *nkms.Activity) bool {
	for _, fd := range f.fields {
		if !slices.Contains(fd.values, fd.of(a)) {
			return false
		}
	}
	return f.keyword.Match(a)
}

// MayMatch reports whether the JSON record rec (of store/codec) may hold an
// entry that f passes; false means it certainly does not (see
// Keyword.MayMatch: only the keyword is checked on the raw bytes).
func (f Filter) MayMatch(rec []byte) bool { return f.keyword.MayMatch(rec) }
