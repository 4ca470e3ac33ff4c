package redis

import "context"

// dropScript removes the previous generation of a blob in one atomic
// step: in layout 2 the slot that is not current and pv, in layout 1 the
// fields pv and pd. A missing key, or one without a previous generation,
// is left as it is; a key that is not a hash, or a hash of a layout this
// version does not know, is reported, never changed.
//
//	KEYS[1] blob hash
var dropScript = newScript(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return {'ok'} end
if t ~= 'hash' then return {'corrupt', 'key holds a ' .. t} end
local r = redis.call('HMGET', KEYS[1], 'layout', 's')
if r[1] == '2' then
  if r[2] == '0' then redis.call('HDEL', KEYS[1], 'd1', 'pv', 'pd')
  elseif r[2] == '1' then redis.call('HDEL', KEYS[1], 'd0', 'pv', 'pd')
  else return {'corrupt', 'malformed slot field'} end
elseif r[1] then
  return {'corrupt', 'hash has a layout this version cannot write'}
else
  redis.call('HDEL', KEYS[1], 'pv', 'pd')
end
return {'ok'}
`)

// DropPrevious removes the previous generation of name atomically
// (backends.Recoverer): the hash field of the slot that is not current
// and its version pv (layout 1: the fields pv and pd). The Redis backend
// keeps no other copy of a blob in the keyspace; what the server's own
// persistence files (RDB snapshots, the AOF until it is rewritten) and
// its replicas still hold is outside it: see SECURITY.md. With
// WithReplicaAck, a drop that reached the master but not enough replicas
// fails with an error matching ErrNotReplicated: a failover could bring
// the dropped generation back, so call it again.
func (b *Backend) DropPrevious(ctx context.Context, name string) (err error) {
	defer recoverPanic("drop previous", name, &err)
	if err := b.start(ctx, "drop previous", name, true); err != nil {
		return err
	}
	r, acked, waitErr, err := b.write(ctx, dropScript, evalArgs([]string{b.blobPrefix + name}))
	if err != nil {
		return wrap(ctx, "drop previous", name, err)
	}
	arr, _ := r.([]any)
	if _, err := reply("drop previous", name, arr); err != nil {
		return err
	}
	return b.notReplicated("drop previous", name, acked, waitErr)
}
