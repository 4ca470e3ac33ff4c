package session

import (
	"errors"
	"time"
)

// Times are written as chrono (axiomtrade-rs) writes a DateTime<Utc>:
// "2025-08-14T18:29:27.918204311Z", UTC, with 0, 3, 6 or 9 fraction
// digits, the fewest that hold the value exactly. They are read as RFC 3339
// with 0 to 9 fraction digits and a Z or numeric offset, converted to UTC.
// Either way the instant is kept to the nanosecond.

var errTimeRange = errors.New("year outside 0000-9999")

// appendTime appends t in the chrono form. Years outside 0000-9999 have no
// four-digit RFC 3339 form and are refused.
func appendTime(dst []byte, t time.Time) ([]byte, error) {
	t = t.UTC()
	y, mo, d := t.Date() // once: each of Year, Month, Day computes the date
	if y < 0 || y > 9999 {
		return dst, errTimeRange
	}
	h, mi, sec := t.Clock()
	dst = appendInt(dst, y, 4)
	dst = append(dst, '-')
	dst = appendInt(dst, int(mo), 2)
	dst = append(dst, '-')
	dst = appendInt(dst, d, 2)
	dst = append(dst, 'T')
	dst = appendInt(dst, h, 2)
	dst = append(dst, ':')
	dst = appendInt(dst, mi, 2)
	dst = append(dst, ':')
	dst = appendInt(dst, sec, 2)
	switch ns := t.Nanosecond(); {
	case ns == 0:
	case ns%1_000_000 == 0:
		dst = append(dst, '.')
		dst = appendInt(dst, ns/1_000_000, 3)
	case ns%1_000 == 0:
		dst = append(dst, '.')
		dst = appendInt(dst, ns/1_000, 6)
	default:
		dst = append(dst, '.')
		dst = appendInt(dst, ns, 9)
	}
	return append(dst, 'Z'), nil
}

// timeInRange reports whether t, in UTC, falls in years 0000-9999, the
// years appendTime writes and parseTime reads.
func timeInRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}

// timeLen is the length appendTime writes for t.
func timeLen(t time.Time) int {
	n := len("2006-01-02T15:04:05Z")
	switch ns := t.Nanosecond(); {
	case ns == 0:
	case ns%1_000_000 == 0:
		n += 4
	case ns%1_000 == 0:
		n += 7
	default:
		n += 10
	}
	return n
}

func appendInt(dst []byte, v, width int) []byte {
	var buf [9]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:width]...)
}

var errTimeSyntax = errors.New("not an RFC 3339 time")

// parseTime parses an RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS, an optional
// fraction of 1 to 9 digits, then Z or ±HH:MM. The date must exist (no
// February 30) and leap seconds (:60) are refused: time.Time cannot hold
// them. The result is in UTC.
func parseTime(b []byte) (time.Time, error) {
	num := func(i, n int) (int, bool) {
		if i+n > len(b) {
			return 0, false
		}
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	at := func(i int, c byte) bool { return i < len(b) && b[i] == c }
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || !at(4, '-') || !at(7, '-') ||
		!(at(10, 'T') || at(10, 't')) || !at(13, ':') || !at(16, ':') {
		return time.Time{}, errTimeSyntax
	}
	i := 19
	nsec := 0
	if at(i, '.') {
		i++
		digits := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if digits == 9 {
				return time.Time{}, errTimeSyntax
			}
			nsec = nsec*10 + int(b[i]-'0')
			digits++
			i++
		}
		if digits == 0 {
			return time.Time{}, errTimeSyntax
		}
		for ; digits < 9; digits++ {
			nsec *= 10
		}
	}
	offset := 0
	switch {
	case at(i, 'Z') || at(i, 'z'):
		i++
	case at(i, '+') || at(i, '-'):
		oh, okh := num(i+1, 2)
		om, okm := num(i+4, 2)
		if !okh || !okm || !at(i+3, ':') || oh > 23 || om > 59 {
			return time.Time{}, errTimeSyntax
		}
		offset = (oh*60 + om) * 60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return time.Time{}, errTimeSyntax
	}
	if i != len(b) || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, errTimeSyntax
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // time.Date normalised a day past the month's end
		return time.Time{}, errTimeSyntax
	}
	t = t.Add(-time.Duration(offset) * time.Second)
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, errTimeRange
	}
	return t, nil
}
