package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// dropScript removes the previous generation (fields pv and pd) of a
// blob, in one atomic step. A missing key, or one without a previous
// generation, is left as it is; a key that is not a hash is reported,
// never changed.
//
//	KEYS[1] blob hash
var dropScript = goredis.NewScript(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return {'ok'} end
if t ~= 'hash' then return {'corrupt', 'key holds a ' .. t} end
redis.call('HDEL', KEYS[1], 'pv', 'pd')
return {'ok'}
`)

// DropPrevious removes the previous generation of name, the fields pv
// and pd of its hash, atomically (backends.Recoverer). The Redis backend
// keeps no other copy of a blob in the keyspace; what the server's own
// persistence files (RDB snapshots, the AOF until it is rewritten) and
// its replicas still hold is outside it: see SECURITY.md.
func (b *Backend) DropPrevious(ctx context.Context, name string) error {
	if err := b.start(ctx, "drop previous", name, true); err != nil {
		return err
	}
	r, err := dropScript.Run(ctx, b.client, []string{b.blobPrefix + name}).Slice()
	if err != nil {
		return wrap(ctx, "drop previous", name, err)
	}
	_, err = reply("drop previous", name, r)
	return err
}
