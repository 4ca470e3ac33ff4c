package tamper

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionvault/sessionvault/backends/file"
	"github.com/sessionvault/sessionvault/session"
	"github.com/sessionvault/sessionvault/vault"
)

// FuzzVaultFolder puts fuzzed bytes on disk as the header and as a sealed
// session of a real vault folder, and opens them through the file backend
// and the vault as a program would: never a panic, never an untyped error,
// and the session never opens unless both files are the real ones.
// Seeds: the real header and sealed session of a vault made by realVault
// (testdata/fuzz/FuzzVaultFolder).
func FuzzVaultFolder(f *testing.F) {
	dir, _ := realVault(f, testPolicy)
	f.Add(blobAt(f, headerPath(dir)), blobAt(f, sessionPath(dir, sessionName)))
	f.Fuzz(func(t *testing.T, hdr, ses []byte) {
		ctx := context.Background()
		d := filepath.Join(t.TempDir(), "vault")
		b, err := file.New(d)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := os.WriteFile(filepath.Join(d, "vault.hdr"), hdr, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "sessions", sessionName+".sealed"), ses, 0o600); err != nil {
			t.Fatal(err)
		}
		v, err := vault.Open(ctx, b, opts(testPolicy)...)
		if err != nil {
			if classify(err) == "untyped" {
				t.Fatalf("vault.Open: untyped error: %v", err)
			}
			return
		}
		defer v.Close()
		plain, _, err := v.Store(sessionName).Open(ctx)
		if err != nil {
			if classify(err) == "untyped" {
				t.Fatalf("Store.Open: untyped error: %v", err)
			}
			return
		}
		if _, err := session.ParseSession(plain); err != nil && !errors.Is(err, session.ErrInvalidSession) {
			t.Fatalf("ParseSession of an opened session: %v", err)
		}
	})
}

// FuzzSetCookies feeds Set-Cookie lines (one per line of the input) from a
// hostile server to session.ParseSetCookies, then seals what it kept in a
// session: never a panic, and whatever the writer accepts the reader
// reads back, with the same cookies (a session that saves but does not
// load is a lost login).
func FuzzSetCookies(f *testing.F) {
	for _, s := range []string{
		"auth-access-token=eyJhbGciOi.x.y; Path=/; Secure; HttpOnly\nauth-refresh-token=r==", // values with '='
		"g_state={\"i_l\":0}; Max-Age=0",
		"a=1\nb=\"quoted\"; Expires=Thu, 01 Jan 1970 00:00:00 GMT\nc=; Max-Age=-1",
		"=novalue\n;\n\x00=\x01",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, lines string) {
		h := http.Header{}
		for _, l := range strings.Split(lines, "\n") {
			h.Add("Set-Cookie", l)
		}
		c := session.ParseSetCookies(h)
		s := &session.AuthSession{
			Tokens:   session.NewAuthTokens([]byte("a"), []byte("r"), nil),
			Cookies:  session.DefaultAuthCookies(),
			Metadata: session.SessionMetadata{CreatedAt: time.Unix(0, 0).UTC()},
		}
		defer s.Destroy()
		s.Cookies.Merge(c)
		plain, err := s.MarshalPlaintext()
		if err != nil {
			return // refused at write time: nothing is lost
		}
		back, err := session.ParseSession(plain)
		if err != nil {
			t.Fatalf("the writer produced a session the reader refuses: %v", err)
		}
		defer back.Destroy()
		if len(back.Cookies.Additional) != len(s.Cookies.Additional) {
			t.Fatalf("%d cookies written, %d read back", len(s.Cookies.Additional), len(back.Cookies.Additional))
		}
		for name, v := range s.Cookies.Additional {
			if !bytes.Equal(back.Cookies.Additional[name].Bytes(), v.Bytes()) {
				t.Fatalf("cookie %q changed in the round trip", name)
			}
		}
	})
}

// TestWriterAcceptsOnlyWhatReaderReads: a session with more cookies than
// the reader accepts must be refused when it is written, not sealed and
// then found unreadable at the next load.
func TestWriterAcceptsOnlyWhatReaderReads(t *testing.T) {
	for _, n := range []int{255, 256, 257, 300, 1600} {
		s := &session.AuthSession{
			Tokens:   session.NewAuthTokens([]byte("a"), []byte("r"), nil),
			Cookies:  session.DefaultAuthCookies(),
			Metadata: session.SessionMetadata{CreatedAt: time.Unix(0, 0).UTC()},
		}
		for i := range n {
			s.Cookies.Additional[strings.Repeat("c", 1+i%7)+itoa(i)] = session.NewSecret([]byte("v"))
		}
		plain, err := s.MarshalPlaintext()
		s.Destroy()
		if err != nil {
			t.Logf("%d cookies: refused when written: %v", n, err)
			continue
		}
		if _, err := session.ParseSession(plain); err != nil {
			t.Errorf("%d cookies: written, then refused when read: %v", n, err)
		}
	}
}

func itoa(i int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}
