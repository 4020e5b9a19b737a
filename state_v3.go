package nkms

import (
	"strings"
	"time"
	"unicode/utf8"
)

// The pure state transitions of API 3.0 (ncp-kms-api-v3.md §3.1, D9): the
// merge-patches of a key and of its rotation settings. The 2.0 transitions
// (state.go) stay as they are.

// KeyPatch is a merge-patch of a key (updateKey): a nil field was not sent.
type KeyPatch struct {
	Name      *string
	Memo      *string // sanitised (SanitizeMemo), then 1-100 characters
	ClearMemo bool    // "memo": null
	Status    *State  // StateEnable or StateDisable
}

// Empty reports whether p changes nothing ({}).
func (p KeyPatch) Empty() bool {
	return p.Name == nil && p.Memo == nil && !p.ClearMemo && p.Status == nil
}

// UpdateV3 applies p to k at now, all or nothing: the name must differ from
// the key's own (case-insensitively; the same name is ErrNameConflict, as
// NAVER answers), the status is ENABLE or DISABLE, and a REVOKE key takes
// no change (ErrInvalidStatus). Uniqueness among the other keys is the
// store's to enforce.
func (k *Key) UpdateV3(p KeyPatch, now time.Time) error {
	if p.Name != nil {
		if err := ValidateName(*p.Name); err != nil {
			return FieldErrorf("keyName", "%s", ErrorMessage(err))
		}
	}
	var memo string
	if p.Memo != nil {
		var err error
		if memo, err = ValidateMemoV3(*p.Memo); err != nil {
			return err
		}
	}
	if p.Status != nil && *p.Status != StateEnable && *p.Status != StateDisable {
		return FieldErrorf("status", "status must be ENABLED or DISABLED")
	}
	if p.Name != nil && NameKey(*p.Name) == NameKey(k.Name) {
		return ErrNameConflict
	}
	if p.Status != nil {
		change := k.Enable
		if *p.Status == StateDisable {
			change = k.Disable
		}
		if err := change(now); err != nil {
			return err
		}
	}
	if p.Name != nil {
		if err := k.SetName(*p.Name); err != nil {
			return err
		}
	}
	if p.Memo != nil || p.ClearMemo {
		if err := k.SetMemo(memo); err != nil {
			return err
		}
	}
	return nil
}

// RotationPatch is a merge-patch of a key's rotation settings
// (updateKeyRotation): a nil field was not sent.
type RotationPatch struct {
	Enabled    *bool
	PeriodDays *int
}

// Empty reports whether p changes nothing ({}).
func (p RotationPatch) Empty() bool { return p.Enabled == nil && p.PeriodDays == nil }

// PeriodDaysV3 is the rotation period that API 3.0 shows (§3.1.8, D9): the
// period while auto rotation is on, the last one when it was turned off
// through 3.0, and 0 when it was turned off through 2.0, never turned on or
// the key was created without it.
func (k *Key) PeriodDaysV3() int {
	if k.AutoRotation || k.RotationPeriodKept {
		return k.RotationPeriod
	}
	return 0
}

// UpdateRotationV3 applies p to k at now (§3.1.9): enabled first, then
// periodDays, which is allowed only if auto rotation is on afterwards
// (enabled false with periodDays is Invalid). Turning it on without a
// period uses PeriodDaysV3, or the default when that is 0; turning it off
// keeps the period. The key must be ENABLE (D9).
func (k *Key) UpdateRotationV3(p RotationPatch, now time.Time) error {
	if p.PeriodDays != nil {
		if d := *p.PeriodDays; d < MinRotationPeriod || d > MaxRotationPeriod {
			return FieldErrorf("periodDays", "periodDays must be %d-%d", MinRotationPeriod, MaxRotationPeriod)
		}
		if p.Enabled != nil && !*p.Enabled {
			return FieldErrorf("periodDays", "periodDays may be sent only with rotation enabled")
		}
	}
	if err := Allowed(k.State, OpSettingsV3); err != nil {
		return err
	}
	on := k.AutoRotation
	if p.Enabled != nil {
		on = *p.Enabled
	}
	if p.PeriodDays != nil && !on {
		return FieldErrorf("periodDays", "periodDays may be sent only with rotation enabled")
	}
	switch {
	case on && !k.AutoRotation:
		if k.PeriodDaysV3() == 0 {
			k.RotationPeriod = DefaultRotationPeriod
		}
		k.AutoRotation, k.RotationBase, k.RotationPeriodKept = true, now, false
	case !on && k.AutoRotation:
		k.AutoRotation, k.RotationBase, k.RotationPeriodKept = false, time.Time{}, true
	}
	if p.PeriodDays != nil {
		k.RotationPeriod = *p.PeriodDays
	}
	return nil
}

// ValidateMemoV3 sanitises a 3.0 memo (SanitizeMemo) and checks that 1-100
// characters are left.
func ValidateMemoV3(memo string) (string, error) {
	m := SanitizeMemo(memo)
	if n := utf8.RuneCountInString(m); n < 1 || n > MaxMemo {
		return "", FieldErrorf("memo", "memo must be 1-%d characters after emoji and HTML tags are removed", MaxMemo)
	}
	return m, nil
}

// SanitizeMemo removes emoji and HTML tags from a memo, as API 3.0 does
// before it stores one (§3.1.1). A tag is '<' followed by a letter, '/', '!'
// or '?', up to the next '>'; a '<' that opens no tag ("a < b") stays.
func SanitizeMemo(memo string) string {
	var b strings.Builder
	closes := true // a '>' may follow; once none does, no later '<' is a tag (linear time)
	for i := 0; i < len(memo); {
		if closes && memo[i] == '<' && i+1 < len(memo) && opensTag(memo[i+1]) {
			if end := strings.IndexByte(memo[i:], '>'); end >= 0 {
				i += end + 1
				continue
			}
			closes = false
		}
		r, size := utf8.DecodeRuneInString(memo[i:])
		if !isEmoji(r) {
			b.WriteString(memo[i : i+size]) // invalid UTF-8 stays as it is; ValidateMemo counts it
		}
		i += size
	}
	return b.String()
}

func opensTag(c byte) bool {
	return c == '/' || c == '!' || c == '?' || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

// isEmoji reports whether r is an emoji or a part of one: pictographs,
// dingbats and symbols, regional indicators, skin tones, and the joiners,
// variation selectors, keycap and tag characters that build sequences.
func isEmoji(r rune) bool {
	switch {
	case r >= 0x1F000 && r <= 0x1FAFF, // mahjong, cards, enclosed, pictographs, emoticons, transport, supplemental
		r >= 0x2600 && r <= 0x27BF,                           // miscellaneous symbols, dingbats
		r >= 0x2B00 && r <= 0x2BFF,                           // arrows and stars (⭐, ⬛)
		r == 0x231A, r == 0x231B, r >= 0x23E9 && r <= 0x23FA, // ⌚ ⌛ ⏩…⏺
		r == 0x200D, r == 0x20E3, // zero-width joiner, keycap
		r >= 0xFE00 && r <= 0xFE0F,   // variation selectors
		r >= 0xE0020 && r <= 0xE007F: // tag characters
		return true
	}
	return false
}
