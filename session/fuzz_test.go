package session

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzDecodeSession feeds arbitrary bytes to the session decoder: it must
// never panic, must fail only with ErrInvalidSession, and whatever it
// accepts must encode (unless its pretty form passes the size bound), to
// as many bytes as measure says, and decode again to the same encoding (a
// fixed point after one round).
func FuzzDecodeSession(f *testing.F) {
	golden := readGolden(f)
	f.Add(golden)
	f.Add([]byte(`{"access_token":"a","refresh_token":"r","expires_at":"2025-08-14T18:29:27.918204311Z"}`))
	f.Add([]byte(`{"access_token":"a\u00e9\ud83d\ude00","refresh_token":"r","expires_at":null}`))
	f.Add(bytes.Replace(golden, []byte(`"additional_cookies": {}`), []byte(`"additional_cookies": {"a":"b=c","z":"\""}`), 1))
	f.Add(bytes.Replace(golden, []byte(`"api_keys": []`), []byte(`"api_keys": [{"api_key_id":"i","api_key_name":"n","public_key":"p","key_type":"k","created_at":"2025-01-01T00:00:00+01:00","expires_at":null}]`), 1))
	f.Add(bytes.Replace(golden, []byte(`"user_info": null`), []byte(`"user_info": {"id":"1","email":null}`), 1))
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := decodeSession(in, now, "ua")
		if err != nil {
			if !errors.Is(err, ErrInvalidSession) {
				t.Fatalf("error %v does not match ErrInvalidSession", err)
			}
			return
		}
		defer s.Destroy()
		out, err := s.MarshalPlaintext()
		var le *LimitError
		if errors.As(err, &le) && le.Field == "" {
			// Compact JSON near the size bound, larger in the
			// pretty form the writer uses: refused when written,
			// never stored unreadable.
			return
		}
		if err != nil {
			t.Fatalf("decoded session does not encode: %v", err)
		}
		if n, err := s.measure(); err != nil || n != len(out) {
			t.Fatalf("measure = %d, %v; MarshalPlaintext wrote %d bytes", n, err, len(out))
		}
		s2, err := decodeSession(out, now, "ua")
		if err != nil {
			t.Fatalf("encoding does not decode: %v\n%s", err, out)
		}
		defer s2.Destroy()
		out2, err := s2.MarshalPlaintext()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip differs:\n%s\n%s", out, out2)
		}
	})
}
