package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sessionvault/sessionvault/backends"
)

// Backend stores blobs in Redis. It implements backends.Backend,
// backends.Locker and backends.Recoverer, and is safe for concurrent use.
//
// The zero value is not usable: call New or NewFromURL.
type Backend struct {
	client goredis.UniversalClient
	own    bool // Close closes client
	cfg    config

	blobPrefix  string // "{prefix}:b:"
	leasePrefix string // "{prefix}:lock:"
	indexKey    string // "{prefix}:names"
	seqKey      string // "{prefix}:seq"

	// indexKey and seqKey as interface values, and the part of the put
	// script's ARGV[4] that is the same for every Put (keep and the size
	// limit): made once, not on every Put.
	indexKeyArg, seqKeyArg any
	putArgsMid             string // " <keep> <maxBlobSize> "
	keepArg                string // "1" if the Backend keeps previous generations, else "0"

	closed atomic.Bool
	seen   seenVersions // WithRollbackCheck
	slots  slotGuesses  // where Get expects each name's blob
	nonces nonceSource  // the random parts of new versions
}

var (
	_ backends.Backend   = (*Backend)(nil)
	_ backends.Locker    = (*Backend)(nil)
	_ backends.Recoverer = (*Backend)(nil)
)

// New returns a Backend that uses client, which may be a single-node,
// Sentinel (failover) or Cluster client. The caller keeps ownership:
// Close does not close client. Configure TLS, credentials and timeouts on
// the client; for methods to end at their context's deadline while
// waiting on the network, set ContextTimeoutEnabled in its options.
//
// New does no I/O. Connection options (WithTLSConfig, WithCredentials,
// WithDialTimeout) are refused: they belong to NewFromURL.
func New(client goredis.UniversalClient, opts ...Option) (*Backend, error) {
	if client == nil {
		return nil, errors.New("redis: nil client")
	}
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.connOption {
		return nil, errors.New("redis: TLS, credential and dial options apply to NewFromURL; configure them on the client given to New")
	}
	return newBackend(client, false, cfg), nil
}

// NewFromURL connects to the Redis server at rawURL
// ("redis://[user:password@]host:port/db", "rediss://..." for TLS, or
// "unix:///path/to/socket"), checks the connection and the credentials
// with a PING bounded by ctx, and returns a Backend that owns the client:
// Close closes it. Methods end at their context's deadline even while
// waiting on the network.
//
// Prefer WithCredentials to a password in the URL, which would sit in a
// command line or a configuration file. The URL query parameter
// skip_verify (which turns off TLS certificate checks) is refused. Errors
// never contain the URL's password.
//
// A server that refuses the credentials is an error matching
// backends.ErrPermission; one that cannot be reached matches
// backends.ErrUnavailable.
func NewFromURL(ctx context.Context, rawURL string, opts ...Option) (*Backend, error) {
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	defer clear(cfg.password)
	rawURL, urlCfg, err := urlOptions(rawURL)
	if err != nil {
		return nil, opErr("connect", "", nil, err)
	}
	if !cfg.replicaAckSet {
		cfg.replicaAck, cfg.replicaAckTimeout = urlCfg.replicaAck, urlCfg.replicaAckTimeout
	}
	opt, err := parseURL(rawURL)
	if err != nil {
		return nil, opErr("connect", "", nil, err)
	}
	if cfg.tlsConfig != nil {
		t := cfg.tlsConfig.Clone()
		if t.ServerName == "" {
			if u, err := url.Parse(rawURL); err == nil {
				t.ServerName = u.Hostname()
			}
		}
		opt.TLSConfig = t
	}
	if cfg.hasCreds {
		opt.Username = cfg.username
		opt.Password = string(cfg.password) // go-redis needs a string; see SECURITY.md
	}
	if cfg.dialTimeout > 0 {
		opt.DialTimeout = cfg.dialTimeout
	}
	opt.ContextTimeoutEnabled = true
	opt.Dialer = LimitReplies(opt.NewDialer())
	client := goredis.NewClient(opt)
	b := newBackend(client, true, cfg)
	if err := ping(ctx, client); err != nil {
		client.Close()
		return nil, err
	}
	return b, nil
}

func ping(ctx context.Context, client *goredis.Client) (err error) {
	defer recoverPanic("connect", "", &err)
	if err := client.Ping(ctx).Err(); err != nil {
		return wrap(ctx, "connect", "", err)
	}
	return nil
}

// URL errors. Their text never depends on the URL, which may hold a
// password (in its user information, or anywhere after a typo).
var (
	errURLSyntax     = errors.New("invalid URL: not parseable")
	errURLScheme     = errors.New("invalid URL: scheme must be redis, rediss or unix")
	errURLSkipVerify = errors.New("invalid URL: skip_verify is not allowed (it turns off TLS certificate checks)")
	errURLPath       = errors.New("invalid URL: path must be empty or /<database number>")
	errURLOption     = errors.New("invalid URL: unknown query option or invalid option value")
	errURLSocket     = errors.New("invalid URL: empty unix socket path")
	errURLOther      = errors.New("invalid URL")
	errURLReplicaAck = errors.New("invalid URL: replica_ack must be a count from 0 to 16 and replica_ack_timeout a duration from 1ms to 2s")
)

// urlOptions takes this package's own query parameters (replica_ack,
// replica_ack_timeout) out of rawURL, which go-redis would refuse.
func urlOptions(rawURL string) (string, config, error) {
	var cfg config
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", cfg, errURLSyntax
	}
	q := u.Query()
	if !q.Has("replica_ack") && !q.Has("replica_ack_timeout") {
		return rawURL, cfg, nil
	}
	n, err := strconv.Atoi(q.Get("replica_ack"))
	if err != nil {
		return "", cfg, errURLReplicaAck
	}
	timeout := DefaultReplicaAckTimeout
	if q.Has("replica_ack_timeout") {
		if timeout, err = time.ParseDuration(q.Get("replica_ack_timeout")); err != nil {
			return "", cfg, errURLReplicaAck
		}
	}
	if WithReplicaAck(n, timeout)(&cfg) != nil {
		return "", cfg, errURLReplicaAck
	}
	q.Del("replica_ack")
	q.Del("replica_ack_timeout")
	u.RawQuery = q.Encode()
	return u.String(), cfg, nil
}

// parseURL parses a Redis URL. Its errors are fixed texts: no part of the
// URL ever reaches them.
func parseURL(rawURL string) (*goredis.Options, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errURLSyntax
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return nil, errURLScheme
	}
	if u.Query().Has("skip_verify") {
		return nil, errURLSkipVerify
	}
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "database number"), strings.Contains(msg, "URL path"):
			return nil, errURLPath
		case strings.Contains(msg, "unix socket path"):
			return nil, errURLSocket
		case strings.Contains(msg, "option"), strings.Contains(msg, "number"),
			strings.Contains(msg, "duration"), strings.Contains(msg, "boolean"):
			return nil, errURLOption
		}
		return nil, errURLOther
	}
	return opt, nil
}

func buildConfig(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			clear(cfg.password)
			return config{}, err
		}
	}
	return cfg, nil
}

func newBackend(client goredis.UniversalClient, own bool, cfg config) *Backend {
	tag := "{" + cfg.prefix + "}:"
	keep := "0"
	if cfg.keepPrevious {
		keep = "1"
	}
	b := &Backend{
		client:      client,
		own:         own,
		cfg:         cfg,
		blobPrefix:  tag + "b:",
		leasePrefix: tag + "lock:",
		indexKey:    tag + "names",
		seqKey:      tag + "seq",
		putArgsMid:  " " + keep + " " + strconv.Itoa(cfg.maxBlobSize) + " ",
		keepArg:     keep,
	}
	b.indexKeyArg, b.seqKeyArg = b.indexKey, b.seqKey
	return b
}

// Close releases the client if the Backend owns it (NewFromURL). Methods
// called after Close fail with an error matching backends.ErrUnavailable.
// Leases still held expire on the server after their TTL.
func (b *Backend) Close() error {
	if b.closed.Swap(true) || !b.own {
		return nil
	}
	if err := b.client.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
		return opErr("close", "", nil, err)
	}
	return nil
}

// start checks what every method checks before any I/O: the name, a
// closed backend and an ended context.
func (b *Backend) start(ctx context.Context, op, name string, checkName bool) error {
	if checkName {
		if err := backends.ValidateName(name); err != nil {
			return opErr(op, name, nil, err)
		}
	}
	if b.closed.Load() {
		return opErr(op, name, backends.ErrUnavailable, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return opErr(op, name, nil, err)
	}
	return nil
}

// Get returns the blob stored under name and its version. It is one
// HMGET (no script) in the common case, plus one script run when the name
// is missing.
//
// The HMGET asks for the version, the current slot and the one field the
// Backend expects the blob in: where it last read or wrote the name (a
// name it has not seen yet is read with both slots, and layout 1's field,
// in the same single HMGET). When another client's write has moved the
// blob to the other slot since, the reply says so and Get reads again
// from the right one: version, slot and blob always come from one HMGET,
// which Redis runs atomically.
//
// With WithRollbackCheck (the default), a blob older than one this
// Backend has already read or written for name is refused with an error
// matching ErrRollback.
func (b *Backend) Get(ctx context.Context, name string) (blob []byte, v backends.Version, err error) {
	defer recoverPanic("get", name, &err)
	if err := b.start(ctx, "get", name, true); err != nil {
		return nil, "", err
	}
	key := b.blobPrefix + name
	least := b.least(name)
	guess, guessed := b.slots.get(name)
	ask := -1 // the data field asked for; -1: all of them (getFields)
	if guessed {
		ask = int(guess.field)
	}
	var vs, d string
	for reads := 1; ; reads++ {
		fields := getFields
		if ask >= 0 {
			fields = slotFields[ask]
		}
		r, err := b.client.HMGet(ctx, key, fields...).Result()
		if err != nil {
			return nil, "", wrap(ctx, "get", name, err)
		}
		if len(r) != len(fields) {
			return nil, "", opErr("get", name, ErrCorrupt, errors.New("unexpected reply to HMGET"))
		}
		field, err := blobField(name, r)
		if err != nil {
			return nil, "", err
		}
		if field < 0 {
			// Missing, a later layout, or a hash without our fields:
			// the get script tells which atomically (an EXISTS after
			// the HMGET could see a blob created in between).
			if vs, d, err = b.getByScript(ctx, name, key); err != nil {
				if errors.Is(err, backends.ErrNotFound) {
					b.slots.forget(name)
				}
				return nil, "", err
			}
			break
		}
		i := -1
		switch ask {
		case -1:
			i = 3 + field
		case field:
			i = 3
		}
		if i < 0 {
			// The blob is in another field than the one asked for: a
			// write of another client flipped the slot (or moved a
			// layout-1 hash to layout 2). Ask for the right one; after
			// maxSlotReads reads, for all, which always succeeds.
			ask = field
			if reads >= maxSlotReads {
				ask = -1
			}
			continue
		}
		vs, _ = r[1].(string)
		var ok bool
		if d, ok = r[i].(string); !ok {
			if field == fieldD {
				return nil, "", opErr("get", name, ErrCorrupt, errors.New("stored value is not a sessionvault blob: hash lacks the version or data field"))
			}
			return nil, "", opErr("get", name, ErrCorrupt, errors.New("stored value is not a sessionvault blob: hash lacks the version, slot or data field"))
		}
		if validVersion(vs) && len(d) <= b.cfg.maxBlobSize &&
			(!guessed || guess.v != backends.Version(vs) || int(guess.field) != field) {
			b.slots.set(name, slotGuess{v: backends.Version(vs), field: uint8(field)})
		}
		break
	}
	if !validVersion(vs) {
		return nil, "", opErr("get", name, ErrCorrupt, errors.New("stored value is not a sessionvault blob: malformed version"))
	}
	if len(d) > b.cfg.maxBlobSize {
		return nil, "", opErr("get", name, ErrCorrupt, errors.New("stored value is not a sessionvault blob: stored blob exceeds the size limit"))
	}
	if err := b.check("get", name, backends.Version(vs), least); err != nil {
		return nil, "", err
	}
	return []byte(d), backends.Version(vs), nil
}

// blobField tells from the first three fields of Get's HMGET reply
// (layout, v, s) which field holds the blob: fieldD0 or fieldD1 (layout
// 2), fieldD (layout 1), or -1 when the reply shows no blob of a layout
// this code reads (the get script tells what it is).
func blobField(name string, r []any) (int, error) {
	if lay, _ := r[0].(string); lay == layoutVersion {
		_, ok := r[1].(string)
		s, _ := r[2].(string)
		if !ok || s != "0" && s != "1" {
			return 0, opErr("get", name, ErrCorrupt, errors.New("stored value is not a sessionvault blob: hash lacks the version, slot or data field"))
		}
		if s == "0" {
			return fieldD0, nil
		}
		return fieldD1, nil
	}
	if _, ok := r[1].(string); ok && r[0] == nil && r[2] == nil {
		return fieldD, nil // layout 1: no write since layout 2
	}
	return -1, nil
}

// getByScript reads the current blob of name with the get script.
func (b *Backend) getByScript(ctx context.Context, name, key string) (vs, d string, err error) {
	sr, err := getScript.Run(ctx, b.client, []string{key}, b.cfg.maxBlobSize, "").Slice()
	if err != nil {
		return "", "", wrap(ctx, "get", name, err)
	}
	rest, err := reply("get", name, sr)
	if err != nil {
		return "", "", err
	}
	var ok1, ok2 bool
	if len(rest) == 2 {
		vs, ok1 = rest[0].(string)
		d, ok2 = rest[1].(string)
	}
	if !ok1 || !ok2 {
		return "", "", opErr("get", name, ErrCorrupt, errors.New("unexpected reply from the get script"))
	}
	return vs, d, nil
}

// Previous returns the blob that name held before its latest Put or
// Restore, and the version it had then (backends.Recoverer). A name
// written once, deleted or missing has none: ErrNotFound.
func (b *Backend) Previous(ctx context.Context, name string) (blob []byte, v backends.Version, err error) {
	defer recoverPanic("previous", name, &err)
	const op = "previous"
	if err := b.start(ctx, op, name, true); err != nil {
		return nil, "", err
	}
	r, err := getScript.Run(ctx, b.client, []string{b.blobPrefix + name}, b.cfg.maxBlobSize, "p").Slice()
	if err != nil {
		return nil, "", wrap(ctx, op, name, err)
	}
	rest, err := reply(op, name, r)
	if err != nil {
		return nil, "", err
	}
	if len(rest) != 2 {
		return nil, "", opErr(op, name, ErrCorrupt, errors.New("unexpected reply from the get script"))
	}
	vs, ok1 := rest[0].(string)
	d, ok2 := rest[1].(string)
	if !ok1 || !ok2 || !validVersion(vs) {
		return nil, "", opErr(op, name, ErrCorrupt, errors.New("stored value is not a sessionvault blob: malformed version"))
	}
	return []byte(d), backends.Version(vs), nil
}

// Put stores blob under name if the stored version is ifVersion, in one
// atomic script run, and returns the new version.
//
// If Put fails with backends.ErrUnavailable or a context error after the
// request left, the server may or may not have applied it (the reply was
// lost): the stored blob is then the old or the new one, whole. A retry
// with the same ifVersion fails with ErrConflict in the second case, so
// re-read before deciding. go-redis's own retries of a lost reply are
// recognised by the script (the version carries the writer's nonce) and
// reported as the success they were.
//
// With WithReplicaAck, a Put that reached the master but not enough
// replicas returns its new version together with an error matching
// ErrNotReplicated.
func (b *Backend) Put(ctx context.Context, name string, blob []byte, ifVersion backends.Version) (v backends.Version, err error) {
	defer recoverPanic("put", name, &err)
	if err := b.start(ctx, "put", name, true); err != nil {
		return "", err
	}
	if len(blob) > b.cfg.maxBlobSize {
		return "", opErr("put", name, backends.ErrTooLarge,
			fmt.Errorf("blob of %d bytes exceeds the limit of %d", len(blob), b.cfg.maxBlobSize))
	}
	if ifVersion != backends.Absent && ifVersion != backends.Any && !validVersion(string(ifVersion)) {
		// No stored version can equal it.
		return "", opErr("put", name, backends.ErrConflict, nil)
	}
	if blob == nil {
		blob = []byte{}
	}
	floor := b.floor(name)
	// ARGV[3] and ARGV[4] of the put script, built in one buffer and
	// converted to one string: the common path's new version ("<counter>-"
	// and the nonce, or "" when it does not apply), then the nonce, keep,
	// the size limit, the floor and the index name.
	var stack [128]byte
	buf := stack[:0]
	c, common := nextCounter(ifVersion, floor)
	common = common && b.cfg.keepPrevious
	if common {
		buf = strconv.AppendUint(buf, c, 10)
		buf = append(buf, '-')
	}
	nonceAt := len(buf)
	buf, err = b.nonces.appendHex(buf)
	if err != nil {
		return "", opErr("put", name, nil, err)
	}
	nextLen := 0
	if common {
		nextLen = len(buf)
		buf = append(buf, buf[nonceAt:]...)
	}
	buf = append(buf, b.putArgsMid...)
	buf = strconv.AppendUint(buf, floor, 10)
	buf = append(buf, ' ')
	buf = append(buf, b.indexName(name)...)
	packed := string(buf)
	next, rest := packed[:nextLen], packed[nextLen:]
	r, acked, waitErr, err := b.write(ctx, putScript, []any{nil, nil, 3,
		b.blobPrefix + name, b.indexKeyArg, b.seqKeyArg, string(ifVersion), blob, next, rest})
	if err != nil {
		b.slots.forget(name) // applied or not: unknown
		return "", wrap(ctx, "put", name, err)
	}
	if n, ok := r.(int64); ok && n == 1 && next != "" {
		r = next // the common path stored next
	}
	v, err = b.versionReply("put", name, r, acked, waitErr)
	b.noteWrite(name, false, ifVersion, v)
	return v, err
}

// Restore makes the previous generation of name current again if the
// current version is ifVersion (backends.Recoverer). The replaced blob
// becomes the previous generation; with backends.Any an unreadable
// current blob is dropped instead, and so is every replaced blob of a
// Backend WithKeepPrevious(false). WithReplicaAck applies as for Put.
func (b *Backend) Restore(ctx context.Context, name string, ifVersion backends.Version) (v backends.Version, err error) {
	defer recoverPanic("restore", name, &err)
	if err := b.start(ctx, "restore", name, true); err != nil {
		return "", err
	}
	if ifVersion != backends.Any && !validVersion(string(ifVersion)) {
		return "", opErr("restore", name, backends.ErrConflict, nil)
	}
	nonce, err := b.nonces.newNonce()
	if err != nil {
		return "", opErr("restore", name, nil, err)
	}
	r, acked, waitErr, err := b.write(ctx, restoreScript, evalArgs([]string{b.blobPrefix + name, b.seqKey},
		string(ifVersion), nonce, b.cfg.maxBlobSize, b.floor(name), b.keepArg))
	if err != nil {
		b.slots.forget(name) // applied or not: unknown
		return "", wrap(ctx, "restore", name, err)
	}
	v, err = b.versionReply("restore", name, r, acked, waitErr)
	b.noteWrite(name, true, ifVersion, v)
	return v, err
}

// noteWrite updates the slot guess of name after a Put (or a Restore,
// with restore) that returned v: the slot it made current, or, after a
// conflict (v empty: another client wrote, so the slot this Backend last
// saw is likely stale), none, so that the next Get reads both.
func (b *Backend) noteWrite(name string, restore bool, ifVersion, v backends.Version) {
	if v == "" {
		b.slots.forget(name)
		return
	}
	b.slots.wrote(name, restore, b.cfg.keepPrevious, ifVersion, v)
}

// versionReply decodes the reply of the put and restore scripts: the new
// version as a bare string, or a status array.
func (b *Backend) versionReply(op, name string, r any, acked int64, waitErr error) (backends.Version, error) {
	vs, ok := r.(string)
	if !ok {
		arr, _ := r.([]any)
		_, err := reply(op, name, arr)
		if err == nil {
			err = opErr(op, name, ErrCorrupt, errors.New("unexpected reply from the script"))
		}
		return "", err
	}
	if !validVersion(vs) {
		return "", opErr(op, name, ErrCorrupt, errors.New("stored value is not a sessionvault blob: malformed version"))
	}
	v := backends.Version(vs)
	b.saw(name, v)
	return v, b.notReplicated(op, name, acked, waitErr)
}

// Delete removes name, and its previous generation, if its version is
// ifVersion (backends.Any: whatever is stored, even a value that is not a
// blob). WithReplicaAck applies as for Put. A Delete whose reply was lost
// and that go-redis retried reports ErrNotFound although it deleted:
// either way nothing is stored under name when it returns (the vault
// raises the session's rollback floor in both cases).
func (b *Backend) Delete(ctx context.Context, name string, ifVersion backends.Version) (err error) {
	defer recoverPanic("delete", name, &err)
	if err := b.start(ctx, "delete", name, true); err != nil {
		return err
	}
	if ifVersion != backends.Any && !validVersion(string(ifVersion)) {
		// Absent, or a version this backend never made: it matches no
		// stored blob (conflict), and a missing one is still notfound.
		ifVersion = "-"
	}
	r, acked, waitErr, err := b.write(ctx, deleteScript, evalArgs([]string{b.blobPrefix + name, b.indexKey, b.seqKey},
		string(ifVersion), b.indexName(name)))
	if err != nil {
		return wrap(ctx, "delete", name, err)
	}
	arr, _ := r.([]any)
	if _, err := reply("delete", name, arr); err != nil {
		return err
	}
	b.forgetAll(name)
	b.slots.forget(name)
	return b.notReplicated("delete", name, acked, waitErr)
}

// List returns the names of all stored blobs except backends.HeaderName,
// sorted. It reads the vault's name index (a SET maintained by the same
// scripts that write blobs), not the keyspace: one round trip and one
// Cluster slot, whatever else the server holds. Index entries whose blob
// key was removed behind the backend's back are left out.
func (b *Backend) List(ctx context.Context) (list []string, err error) {
	defer recoverPanic("list", "", &err)
	if err := b.start(ctx, "list", "", false); err != nil {
		return nil, err
	}
	names, err := listScript.Run(ctx, b.client, []string{b.indexKey}, b.blobPrefix).StringSlice()
	if err != nil {
		return nil, wrap(ctx, "list", "", err)
	}
	out := names[:0]
	for _, n := range names {
		if n != backends.HeaderName && backends.ValidateName(n) == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// indexName is the name a write adds to the index: none for the header,
// which List never returns.
func (b *Backend) indexName(name string) string {
	if name == backends.HeaderName {
		return ""
	}
	return name
}

// reply decodes a script's status word into an error, or returns the rest
// of the reply on "ok".
func reply(op, name string, r []any) ([]any, error) {
	if len(r) == 0 {
		return nil, opErr(op, name, ErrCorrupt, errors.New("empty reply from the script"))
	}
	status, _ := r[0].(string)
	switch status {
	case "ok":
		return r[1:], nil
	case "notfound":
		return nil, opErr(op, name, backends.ErrNotFound, nil)
	case "conflict":
		return nil, opErr(op, name, backends.ErrConflict, nil)
	case "corrupt":
		detail := "unknown shape"
		if len(r) > 1 {
			if s, ok := r[1].(string); ok && len(s) < 100 {
				detail = s
			}
		}
		return nil, opErr(op, name, ErrCorrupt, errors.New("stored value is not a sessionvault blob: "+detail))
	}
	return nil, opErr(op, name, ErrCorrupt, errors.New("unexpected reply from the script"))
}

// validVersion reports whether v has the shape "<counter>-<nonce>".
func validVersion(v string) bool {
	if len(v) > maxVersionLen {
		return false
	}
	i := len(v) - 2*nonceBytes - 1
	if i < 1 || v[i] != '-' {
		return false
	}
	if _, err := strconv.ParseUint(v[:i], 10, 64); err != nil || v[0] == '+' {
		return false
	}
	for _, c := range []byte(v[i+1:]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
