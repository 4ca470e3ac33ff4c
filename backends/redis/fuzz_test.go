package redis

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// FuzzParseURL: no URL makes parseURL panic, and its error is always one
// of the fixed texts, so nothing from the URL (a password) can leak.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/0",
		"rediss://user:secret-pw@redis.example:6380/2?dial_timeout=3s",
		"redis://:secret-pw@[::1]:6379",
		"unix:///run/redis.sock?db=1",
		"redis://user:secret-pw@host:bad/0",
		"redis://user:secret-pw@host/0?skip_verify=true",
		"redis://user:secret%2Dpw@host/x/y",
		"redis:/user:secret-pw@host/0",
		"redis://host/0?dial_timeout=secret-pw",
		"redis://host/0?secret-pw=1",
	} {
		f.Add(s)
	}
	fixed := map[error]bool{errURLSyntax: true, errURLScheme: true, errURLSkipVerify: true,
		errURLPath: true, errURLOption: true, errURLSocket: true, errURLOther: true}
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := parseURL(raw); err != nil && !fixed[err] {
			t.Fatalf("parseURL(%q) error %q is not one of the fixed texts", raw, err)
		}
	})
}

var versionRE = regexp.MustCompile(`^[0-9]{1,20}-[0-9a-f]{16}$`)

// FuzzValidVersion: validVersion accepts exactly "<decimal uint64>-<16
// lowercase hex digits>".
func FuzzValidVersion(f *testing.F) {
	for _, s := range []string{"1-0123456789abcdef", "18446744073709551615-0123456789abcdef",
		"18446744073709551616-0123456789abcdef", "+1-0123456789abcdef", "-0123456789abcdef", "1-0123456789ABCDEF", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := validVersion(v)
		want := versionRE.MatchString(v)
		if want {
			// The regexp allows decimals that overflow uint64.
			n := v[:strings.IndexByte(v, '-')]
			if len(n) == 20 && n > "18446744073709551615" {
				want = false
			}
		}
		if got != want {
			t.Fatalf("validVersion(%q) = %v, want %v", v, got, want)
		}
	})
}

// FuzzReplyScanner: no byte stream makes LimitReplies' scanner panic; it
// reaches the same verdict whatever the chunks the network delivers it in;
// and while it accepts, its state stays within the limits (open aggregates
// at most maxReplyDepth deep, budget at most MaxReplyBytes, header line at
// most maxReplyLine).
func FuzzReplyScanner(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "$5\r\nhello\r\n", "*2\r\n$1\r\n1\r\n$-1\r\n", "%1\r\n+a\r\n:1\r\n", "*-1\r\n",
		"$9223372036854775807\r\n", "*4611686018427387904\r\n", "$3\r\nabcXY", "|1\r\n+a\r\n+b\r\n",
		strings.Repeat("*1\r\n", 20) + ":1\r\n", ">2\r\n+message\r\n$1\r\nx\r\n", "_\r\n,1.5\r\n#t\r\n(12\r\n",
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		whole := &limitedConn{}
		errWhole := whole.scan(data)
		parts := &limitedConn{}
		var errParts error
		n := int(chunk%16) + 1
		for i := 0; i < len(data) && errParts == nil; i += n {
			errParts = parts.scan(data[i:min(i+n, len(data))])
			if errParts == nil && (len(parts.open) > maxReplyDepth || parts.spent > MaxReplyBytes ||
				len(parts.line) > maxReplyLine) {
				t.Fatalf("state beyond the limits: depth %d, spent %d, line %d", len(parts.open), parts.spent, len(parts.line))
			}
		}
		if (errWhole == nil) != (errParts == nil) {
			t.Fatalf("whole: %v; in chunks of %d: %v", errWhole, n, errParts)
		}
		if errWhole != nil && !errors.Is(errWhole, ErrBadReply) {
			t.Fatalf("error %v does not match ErrBadReply", errWhole)
		}
	})
}
