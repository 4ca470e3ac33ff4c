package fakeauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

func post(t *testing.T, s *Server, path string, body any) (*http.Response, TokenResponse) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := s.Client().Post(s.URL()+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr TokenResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			t.Fatal(err)
		}
	}
	return resp, tr
}

func call(t *testing.T, s *Server, access string, cookies []*http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL()+APIPath, nil)
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestLifecycle(t *testing.T) {
	s := Start()
	defer s.Close()

	if resp, _ := post(t, s, LoginPath, LoginRequest{Email: Email, Password: "wrong"}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad password: status %d", resp.StatusCode)
	}
	resp, login := post(t, s, LoginPath, LoginRequest{Email: Email, Password: Password})
	if resp.StatusCode != http.StatusOK || login.AccessToken == "" || login.Turnkey == nil {
		t.Fatalf("login: status %d, %+v", resp.StatusCode, login)
	}
	cookies := resp.Cookies()
	if len(cookies) != 2 {
		t.Fatalf("login set %d cookies, want 2", len(cookies))
	}
	if got := call(t, s, login.AccessToken, nil); got != http.StatusUnauthorized {
		t.Errorf("API without cookies: %d", got)
	}
	if got := call(t, s, "", cookies); got != http.StatusUnauthorized {
		t.Errorf("API without bearer: %d", got)
	}
	if got := call(t, s, login.AccessToken, cookies); got != http.StatusOK {
		t.Errorf("API with both: %d", got)
	}

	resp, ref := post(t, s, RefreshPath, RefreshRequest{RefreshToken: login.RefreshToken})
	if resp.StatusCode != http.StatusOK || ref.RefreshToken == login.RefreshToken {
		t.Fatalf("refresh: status %d, rotated %v", resp.StatusCode, ref.RefreshToken != login.RefreshToken)
	}
	if got := call(t, s, ref.AccessToken, resp.Cookies()); got != http.StatusOK {
		t.Errorf("API after refresh: %d", got)
	}
	if got := call(t, s, ref.AccessToken, cookies); got != http.StatusUnauthorized {
		t.Errorf("API with the old cookies after refresh: %d", got)
	}
	if resp, _ := post(t, s, RefreshPath, RefreshRequest{RefreshToken: login.RefreshToken}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("reused refresh token: status %d", resp.StatusCode)
	}
	// Reuse revokes the family: the newer refresh token is dead too.
	if resp, _ := post(t, s, RefreshPath, RefreshRequest{RefreshToken: ref.RefreshToken}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("refresh after reuse detection: status %d", resp.StatusCode)
	}
	c := s.Counts()
	if c.Logins != 1 || c.Refreshes != 1 || c.ReusedRefresh != 1 || c.APICalls != 2 || c.Unauthorized != 3 {
		t.Errorf("counts %+v", c)
	}
}

// Example: log in, then call the API with the bearer token and cookies.
func Example() {
	s := Start()
	defer s.Close()
	body, _ := json.Marshal(LoginRequest{Email: Email, Password: Password})
	resp, err := s.Client().Post(s.URL()+LoginPath, "application/json", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	var tr TokenResponse
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()

	req, _ := http.NewRequest("GET", s.URL()+APIPath, nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	api, err := s.Client().Do(req)
	if err != nil {
		panic(err)
	}
	api.Body.Close()
	fmt.Println(api.StatusCode, s.Counts().Logins, s.Counts().APICalls)
	// Output: 200 1 1
}
