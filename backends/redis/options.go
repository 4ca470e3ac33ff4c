package redis

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// An Option configures a Backend.
//
// A nil Option is ignored.
type Option func(*config) error

type config struct {
	prefix       string
	maxBlobSize  int
	leaseTTL     time.Duration
	autoExtend   bool
	keepPrevious bool

	replicaAck        int // WithReplicaAck; 0: off
	replicaAckTimeout time.Duration
	replicaAckSet     bool // given as an Option (wins over the URL)

	rollbackCheck bool

	// Connection options: NewFromURL only.
	tlsConfig   *tls.Config
	username    string
	password    []byte
	hasCreds    bool
	dialTimeout time.Duration
	connOption  bool
}

func defaultConfig() config {
	return config{
		prefix:        DefaultPrefix,
		maxBlobSize:   DefaultMaxBlobSize,
		leaseTTL:      DefaultLeaseTTL,
		autoExtend:    true,
		keepPrevious:  true,
		rollbackCheck: true,
	}
}

// WithPrefix sets the key prefix (default DefaultPrefix). All keys of the
// Backend are "{prefix}:...", so the prefix is also the Redis Cluster hash
// tag. Use one prefix per vault (a vault id, an application name); two
// Backends with the same prefix on one server see the same blobs.
// The prefix must be 1 to MaxPrefixLen bytes of printable UTF-8 without
// braces or whitespace.
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		if prefix == "" || len(prefix) > MaxPrefixLen || !utf8.ValidString(prefix) ||
			strings.ContainsAny(prefix, "{} \t\r\n") || strings.ContainsFunc(prefix, isControl) {
			return errors.New("redis: invalid key prefix")
		}
		c.prefix = prefix
		return nil
	}
}

// WithMaxBlobSize lowers the largest blob Put stores and Get returns
// (default and maximum DefaultMaxBlobSize). Put of a larger
// blob fails with backends.ErrTooLarge; a larger stored value makes Get
// fail with ErrCorrupt. What a Get transfers before it refuses is bounded
// by the reply limits of LimitReplies (NewFromURL's connections), which
// are set by DefaultMaxBlobSize, not by n: a read of both slots of a name
// (the first Get of a name in a Backend) may transfer up to two values of
// that size.
func WithMaxBlobSize(n int) Option {
	return func(c *config) error {
		if n <= 0 || n > DefaultMaxBlobSize {
			return fmt.Errorf("redis: max blob size %d outside 1..%d", n, DefaultMaxBlobSize)
		}
		c.maxBlobSize = n
		return nil
	}
}

// WithLeaseTTL sets the lifetime of a lease taken by Lock (default
// DefaultLeaseTTL, between MinLeaseTTL and MaxLeaseTTL). It is how long
// the others wait when a holder dies without releasing.
func WithLeaseTTL(ttl time.Duration) Option {
	return func(c *config) error {
		if ttl < MinLeaseTTL || ttl > MaxLeaseTTL {
			return fmt.Errorf("redis: lease TTL %v outside %v..%v", ttl, MinLeaseTTL, MaxLeaseTTL)
		}
		c.leaseTTL = ttl
		return nil
	}
}

// WithAutoExtend sets whether a held Lease extends itself every TTL/3
// until Unlock (default true). Without it the lease ends TTL after Lock
// unless the holder calls Extend.
func WithAutoExtend(on bool) Option {
	return func(c *config) error {
		c.autoExtend = on
		return nil
	}
}

// WithKeepPrevious sets whether Put and Restore keep the blob they
// replace, so that Previous can return it (default true). It doubles the
// memory a blob takes in Redis. Off, a Backend leaves no copy of a
// replaced blob behind (a previous generation another Backend kept can
// still be restored; the blob it replaces is then dropped).
func WithKeepPrevious(on bool) Option {
	return func(c *config) error {
		c.keepPrevious = on
		return nil
	}
}

// WithTLSConfig makes NewFromURL connect with TLS using a clone of cfg
// (for example with a private CA in RootCAs, or a client certificate).
// MinVersion is raised to TLS 1.2 if lower; an empty ServerName is set to
// the URL's host. A "rediss://" URL uses TLS with the system roots even
// without this option. Only for NewFromURL: configure TLS on the client
// you pass to New.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return errors.New("redis: nil TLS config")
		}
		c.tlsConfig = cfg.Clone()
		if c.tlsConfig.MinVersion < tls.VersionTLS12 {
			c.tlsConfig.MinVersion = tls.VersionTLS12
		}
		c.connOption = true
		return nil
	}
}

// WithCredentials makes NewFromURL authenticate as an ACL user (username
// "" means the "default" user, as with a bare requirepass). It overrides
// credentials in the URL, which would otherwise sit in a command line or
// a process listing. The password is copied; the caller may wipe its own.
// go-redis keeps the copy as a Go string, which cannot be wiped: see
// SECURITY.md. Only for NewFromURL.
func WithCredentials(username string, password []byte) Option {
	return func(c *config) error {
		c.username = username
		c.password = append([]byte(nil), password...)
		c.hasCreds = true
		c.connOption = true
		return nil
	}
}

// WithDialTimeout bounds each connection attempt of NewFromURL's client
// (default: go-redis's 5 s). Calls still end at their context's deadline.
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("redis: dial timeout must be positive")
		}
		c.dialTimeout = d
		c.connOption = true
		return nil
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
