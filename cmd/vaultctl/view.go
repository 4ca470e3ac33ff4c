package main

import (
	"time"

	"github.com/sessionvault/sessionvault/session"
)

// redactedMark replaces every secret in show's output.
const redactedMark = "[REDACTED]"

// sessionView is the session in the axiomtrade-rs shape with every secret
// replaced by redactedMark. It is built field by field from the parsed
// session and holds no secret byte, so no encoder can leak one.
type sessionView struct {
	Tokens   tokensView   `json:"tokens"`
	Cookies  cookiesView  `json:"cookies"`
	Turnkey  *turnkeyView `json:"turnkey_session"`
	UserInfo *userView    `json:"user_info"`
	Metadata metadataView `json:"session_metadata"`
}

type tokensView struct {
	AccessToken  string     `json:"access_token"`
	RefreshToken string     `json:"refresh_token"`
	ExpiresAt    *time.Time `json:"expires_at"`
}

type cookiesView struct {
	AuthAccessToken  *string           `json:"auth_access_token"`
	AuthRefreshToken *string           `json:"auth_refresh_token"`
	GState           *string           `json:"g_state"`
	Additional       map[string]string `json:"additional_cookies"`
}

type turnkeyView struct {
	OrganizationID string       `json:"organization_id"`
	UserID         string       `json:"user_id"`
	Username       string       `json:"username"`
	ClientSecret   string       `json:"client_secret"`
	APIKeys        []apiKeyView `json:"api_keys"`
	CreatedAt      time.Time    `json:"created_at"`
	ExpiresAt      *time.Time   `json:"expires_at"`
}

type apiKeyView struct {
	APIKeyID   string     `json:"api_key_id"`
	APIKeyName string     `json:"api_key_name"`
	PublicKey  string     `json:"public_key"`
	KeyType    string     `json:"key_type"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

type userView struct {
	ID       *string `json:"id"`
	Email    *string `json:"email"`
	Username *string `json:"username"`
}

type metadataView struct {
	CreatedAt         time.Time  `json:"created_at"`
	LastRefreshedAt   *time.Time `json:"last_refreshed_at"`
	LastAPICallAt     *time.Time `json:"last_api_call_at"`
	CurrentAPIServer  *string    `json:"current_api_server"`
	UserAgent         string     `json:"user_agent"`
	IPAddress         *string    `json:"ip_address"`
	ClientFingerprint *string    `json:"client_fingerprint"`
}

// redactSecret says whether a secret is there, never what it is.
func redactSecret(s session.Secret) string {
	if s.IsEmpty() {
		return ""
	}
	return redactedMark
}

func redactOpt(s *session.Secret) *string {
	if s == nil {
		return nil
	}
	v := redactSecret(*s)
	return &v
}

// redact builds the view of s.
func redact(s *session.AuthSession) sessionView {
	v := sessionView{
		Tokens: tokensView{
			AccessToken:  redactSecret(s.Tokens.AccessToken),
			RefreshToken: redactSecret(s.Tokens.RefreshToken),
			ExpiresAt:    s.Tokens.ExpiresAt,
		},
		Cookies: cookiesView{
			AuthAccessToken:  redactOpt(s.Cookies.AuthAccessToken),
			AuthRefreshToken: redactOpt(s.Cookies.AuthRefreshToken),
			GState:           s.Cookies.GState,
			Additional:       make(map[string]string, len(s.Cookies.Additional)),
		},
		Metadata: metadataView{
			CreatedAt:         s.Metadata.CreatedAt,
			LastRefreshedAt:   s.Metadata.LastRefreshedAt,
			LastAPICallAt:     s.Metadata.LastAPICallAt,
			CurrentAPIServer:  s.Metadata.CurrentAPIServer,
			UserAgent:         s.Metadata.UserAgent,
			IPAddress:         s.Metadata.IPAddress,
			ClientFingerprint: s.Metadata.ClientFingerprint,
		},
	}
	for name, val := range s.Cookies.Additional {
		v.Cookies.Additional[name] = redactSecret(val)
	}
	if t := s.TurnkeySession; t != nil {
		tv := &turnkeyView{
			OrganizationID: t.OrganizationID,
			UserID:         t.UserID,
			Username:       t.Username,
			ClientSecret:   redactSecret(t.ClientSecret),
			APIKeys:        make([]apiKeyView, 0, len(t.APIKeys)),
			CreatedAt:      t.CreatedAt,
			ExpiresAt:      t.ExpiresAt,
		}
		for _, k := range t.APIKeys {
			tv.APIKeys = append(tv.APIKeys, apiKeyView{
				APIKeyID: k.APIKeyID, APIKeyName: k.APIKeyName, PublicKey: k.PublicKey,
				KeyType: k.KeyType, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt,
			})
		}
		v.Turnkey = tv
	}
	if u := s.UserInfo; u != nil {
		v.UserInfo = &userView{ID: u.ID, Email: u.Email, Username: u.Username}
	}
	return v
}

// sessionReport is one session's state, as status and show print it. It
// holds no secret.
type sessionReport struct {
	Name    string `json:"name"`
	Valid   bool   `json:"valid"`
	Tokens  string `json:"tokens"`  // VALID, NEEDS_REFRESH or EXPIRED
	Cookies string `json:"cookies"` // PRESENT or MISSING
	Turnkey string `json:"turnkey"` // ACTIVE or NOT_SET, as in the summary line
	// TurnkeyNeedsRefresh: the Turnkey session expires within the hour.
	TurnkeyNeedsRefresh bool `json:"turnkey_needs_refresh"`
	// AgeMinutes is the time since the session was created.
	AgeMinutes int64 `json:"age_minutes"`
	// LastAPICallAt is the last API call, null if never.
	LastAPICallAt *time.Time `json:"last_api_call_at"`
	// LastAPIMinutesAgo is the time since then, null if never.
	LastAPIMinutesAgo *int64     `json:"last_api_call_minutes_ago"`
	ExpiresAt         *time.Time `json:"expires_at"`
	Summary           string     `json:"summary"`
}

// report computes a session's state at now.
func report(name string, s *session.AuthSession, now time.Time, summary string) sessionReport {
	r := sessionReport{
		Name:          name,
		Valid:         s.IsValid(now),
		AgeMinutes:    s.Metadata.AgeMinutes(now),
		LastAPICallAt: s.Metadata.LastAPICallAt,
		ExpiresAt:     s.Tokens.ExpiresAt,
		Summary:       summary,
	}
	switch {
	case s.TokensExpired(now):
		r.Tokens = "EXPIRED"
	case s.TokensNeedRefresh(now):
		r.Tokens = "NEEDS_REFRESH"
	default:
		r.Tokens = "VALID"
	}
	r.Cookies = "MISSING"
	if s.HasValidCookies() {
		r.Cookies = "PRESENT"
	}
	r.Turnkey = "NOT_SET"
	if s.TurnkeySession != nil {
		r.Turnkey = "ACTIVE"
		r.TurnkeyNeedsRefresh = s.TurnkeySession.NeedsRefresh(now)
	}
	if m, ok := s.Metadata.MinutesSinceLastAPICall(now); ok {
		r.LastAPIMinutesAgo = &m
	}
	return r
}
