package redis

import goredis "github.com/redis/go-redis/v9"

// script is a write script: Backend.write sends it as EVALSHA, and as
// EVAL when the server answers NOSCRIPT, with the command's arguments in
// one slice the caller builds (evalArgs, or Put's own, which saves the
// allocations of go-redis's Script.Run on the hot path). Its digest and
// source are converted to interface values once.
type script struct {
	*goredis.Script
	sha, src any
}

func newScript(src string) *script {
	s := goredis.NewScript(src)
	return &script{Script: s, sha: s.Hash(), src: src}
}

// evalArgs returns the arguments of an EVALSHA of keys and args for
// Backend.write: two free places for the command and the digest, the
// number of keys, the keys, the arguments.
func evalArgs(keys []string, args ...any) []any {
	out := make([]any, 3, 3+len(keys)+len(args))
	out[2] = len(keys)
	for _, k := range keys {
		out = append(out, k)
	}
	return append(out, args...)
}

// The Lua scripts below run atomically inside Redis. They are sent with
// EVALSHA and fall back to EVAL when the server answers NOSCRIPT (after a
// restart or SCRIPT FLUSH): Backend.write does that for the write scripts,
// goredis.Script for the others.
//
// A blob is a HASH; its fields in layout 2 (docs/FORMAT.md section 13),
// which every write leaves:
//
//	layout  "2"
//	v       version, "<counter>-<nonce>" (counter: see below; nonce: 16
//	        hex digits chosen by the writer)
//	s       the current slot, "0" or "1"
//	d0, d1  the two slots: d<s> holds the blob, the other one the
//	        previous generation (when pv is present)
//	pv      version of the previous generation
//
// A Put writes the new blob into the slot that is not current and flips
// s, so the previous generation is the blob that already lies in the
// other slot: no old blob is ever read into Lua and written back, which
// is what made layout 1 cost about twice the floor of a script-based
// write on the server (docs/BENCHMARKS.md section 10). A Restore only
// flips s back. Layout 1, which hashes written before layout 2 still hold
// until their first write, has no layout field: v and d (the blob), pv
// and pd (the previous generation). The scripts read both; every write
// of a layout-1 hash turns it into layout 2 (its blob becomes the
// previous generation, its pd is dropped). Any other layout value is a
// later layout this code cannot write: it is refused, never replaced.
//
// The counter of a name grows by one with every Put or Restore of that
// name. A name created (or replaced while unreadable) takes INCR of the
// vault's sequence key, and Delete raises the sequence key to the deleted
// counter first, so a name deleted and created again never goes back to a
// lower counter. (Earlier code took INCR of the sequence key for every
// write; counters it stored keep growing from where they are.) Keeping
// the counter per name saves the update path a command: a Put of an
// existing blob is one HMGET of three short fields and one HSET inside the
// script, which is what brings it near the cost of a script that only
// SETs (docs/BENCHMARKS.md).
//
// Replies: a successful Put or Restore returns the new version as a bare
// string (or, for a Put on the common path, the integer 1: the version is
// the one the client computed); every other outcome is an array whose first element is a status
// word, so that no Redis error string has to be parsed to tell a conflict
// from a missing blob: "notfound", "conflict", "corrupt".

// layoutVersion is the value of the layout field of a hash this code
// writes (docs/FORMAT.md section 13); the scripts spell it '2'.
const layoutVersion = "2"

// getFields are the fields Get reads in one HMGET when it does not know
// which field holds the blob (slotFields when it does): enough to return
// a layout-2 blob (layout, v, s, d0, d1) or a layout-1 one (v, d) without
// a script. Their order is fixed (Get indexes the reply: d0, d1 and d at
// 3+fieldD0, 3+fieldD1 and 3+fieldD).
var getFields = []string{"layout", "v", "s", "d0", "d1", "d"}

// getScript reads the previous generation of a blob, and the current one
// when Get's plain HMGET found no blob (a missing one, a later layout, a
// foreign key: the script tells which atomically).
//
//	KEYS[1] blob hash
//	ARGV[1] largest acceptable length of the blob
//	ARGV[2] "" for the current blob, "p" for the previous one
//
// The blob's length is checked with HSTRLEN before it is read, so an
// oversized value never enters Lua or the reply.
var getScript = goredis.NewScript(`
local r = redis.pcall('HMGET', KEYS[1], 'layout', 'v', 's', 'pv')
if r['err'] then return {'corrupt', 'key holds a ' .. redis.call('TYPE', KEYS[1])['ok']} end
local lay, v, s, pv = r[1], r[2], r[3], r[4]
local df
if lay == '2' then
  if s ~= '0' and s ~= '1' then return {'corrupt', 'malformed slot field'} end
  if not v then return {'corrupt', 'hash lacks the version field'} end
  df = 'd' .. s
  if ARGV[2] == 'p' then
    if not pv then return {'notfound'} end
    v = pv
    if s == '0' then df = 'd1' else df = 'd0' end
  end
elseif lay then
  return {'corrupt', 'hash has a layout this version cannot read'}
else
  df = ARGV[2] .. 'd'
  if ARGV[2] == 'p' then v = pv end
  if not v and redis.call('HEXISTS', KEYS[1], df) == 0 then
    if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound'} end
    if ARGV[2] == 'p' and r[2] then return {'notfound'} end
  end
  if not v then return {'corrupt', 'hash lacks the version or data field'} end
end
if redis.call('HSTRLEN', KEYS[1], df) > tonumber(ARGV[1]) then return {'corrupt', 'stored blob exceeds the size limit'} end
local d = redis.call('HGET', KEYS[1], df)
if not d then return {'corrupt', 'hash lacks the version or data field'} end
return {'ok', v, d}
`)

// putScript stores a blob if its version is as expected.
//
//	KEYS[1] blob hash
//	KEYS[2] name index set
//	KEYS[3] vault sequence key
//	ARGV[1] ifVersion: "" absent, "*" any, else the exact version
//	ARGV[2] blob bytes
//	ARGV[3] the new version if the stored version is ifVersion, computed
//	        by the client: counter max(ifVersion's counter, the highest
//	        this client has seen for the name) + 1, "-", the nonce; ""
//	        when ifVersion is not a version or the previous generation is
//	        not kept (the common path does not apply)
//	ARGV[4] what only the other paths need, separated by single spaces:
//	        the nonce (16 hex digits); "1" to keep the replaced blob as the
//	        previous one, else "0"; the largest acceptable blob length (a
//	        larger stored one is garbage); the lowest counter the new
//	        version may have otherwise (the highest this client has seen
//	        for the name, plus one; "0": none seen, so that after a
//	        failover rolled the name back the client's next write is again
//	        above everything it has seen); the name to add to the index
//	        (empty for the header, which List never returns)
//
// The first branch is the common case, a compare-and-set that matches a
// layout-2 blob: one HMGET of three short fields and one HSET of the new
// blob into the slot that is not current, with the new version, the
// flipped slot and the replaced version as pv; no parsing (the client
// checked ifVersion's shape and computed the version), and no argument
// besides the three it uses (each argument is a Lua string the script
// pays for). Everything else takes the second: a key that does not hold a
// well-formed blob fails a conditional Put with "corrupt"; Put with "*"
// replaces it, and garbage never becomes a previous generation. A
// layout-1 blob is rewritten as layout 2 there, its blob in slot 0 as the
// previous generation.
//
// The first branch replies with the integer 1, which means "stored, with
// ARGV[3] as the version" (the client has it: the reply need not carry
// it back); every other success replies with the version itself.
//
// A Put that go-redis retries after a lost reply finds its own nonce in the
// stored version and reports success instead of a false conflict.
var putScript = newScript(putScriptSrc)

// putScriptSrc is putScript's source; 37 in it is maxVersionLen and 15
// maxCounterDigits.
const putScriptSrc = `
local r = redis.pcall('HMGET', KEYS[1], 'v', 's', 'layout')
local t, cur, s, lay = 'hash', false, false, false
if not r['err'] then cur, s, lay = r[1], r[2], r[3] end
if cur == ARGV[1] and lay == '2' and ARGV[3] ~= '' then
  if s == '0' then
    redis.call('HSET', KEYS[1], 'd1', ARGV[2], 'v', ARGV[3], 's', '1', 'pv', cur)
    return 1
  elseif s == '1' then
    redis.call('HSET', KEYS[1], 'd0', ARGV[2], 'v', ARGV[3], 's', '0', 'pv', cur)
    return 1
  end
end
local nonce, keep, max, floor, name = string.match(ARGV[4], '^(%x+) ([01]) (%d+) (%d+) (.*)$')
if not nonce then return {'corrupt', 'malformed script arguments'} end
max, floor = tonumber(max), tonumber(floor)
if r['err'] or (not cur and not s and not lay) then t = redis.call('TYPE', KEYS[1])['ok'] end
if cur and string.sub(cur, -(#nonce + 1)) == '-' .. nonce then return cur end
if lay and lay ~= '2' then return {'corrupt', 'hash has a layout this version cannot write'} end
local n = cur and #cur <= 37 and string.match(cur, '^([0-9]+)%-[0-9a-f]+$')
local good, old = false, false
if n and #n <= 15 then
  if lay == '2' then
    good = (s == '0' or s == '1') and redis.call('HEXISTS', KEYS[1], 'd' .. s) == 1 and
      redis.call('HSTRLEN', KEYS[1], 'd' .. s) <= max
  elseif not s and redis.call('HSTRLEN', KEYS[1], 'd') <= max then
    old = redis.call('HGET', KEYS[1], 'd')
    good = old and true
  end
end
if ARGV[1] ~= '*' then
  if t ~= 'none' and not good then return {'corrupt', 'key holds a ' .. t .. ' that is not a blob'} end
  if ARGV[1] == '' then
    if cur then return {'conflict'} end
  elseif cur ~= ARGV[1] then
    return {'conflict'}
  end
end
local c
if good then c = tonumber(n) + 1 else c = redis.call('INCR', KEYS[3]) end
if c < floor then c = floor end
local v = string.format('%.0f', c) .. '-' .. nonce
if good and keep == '1' and lay == '2' then
  local o = '1'
  if s == '1' then o = '0' end
  redis.call('HSET', KEYS[1], 'd' .. o, ARGV[2], 'v', v, 's', o, 'pv', cur)
elseif good and keep == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'layout', '2', 'v', v, 's', '1', 'd1', ARGV[2], 'd0', old, 'pv', cur)
else
  if t ~= 'none' then redis.call('DEL', KEYS[1]) end
  redis.call('HSET', KEYS[1], 'layout', '2', 'v', v, 's', '0', 'd0', ARGV[2])
end
if not good and name ~= '' then redis.call('SADD', KEYS[2], name) end
return v
`

// deleteScript removes a blob if its version is as expected, after
// raising the vault's sequence key to the blob's counter (so that the name,
// created again, gets a higher one).
//
//	KEYS[1] blob hash
//	KEYS[2] name index set
//	KEYS[3] vault sequence key
//	ARGV[1] ifVersion: "*" any, else the exact version
//	ARGV[2] name to remove from the index ("" for the header)
var deleteScript = newScript(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then
  if ARGV[2] ~= '' then redis.call('SREM', KEYS[2], ARGV[2]) end
  return {'notfound'}
end
local cur = false
if t == 'hash' then cur = redis.call('HGET', KEYS[1], 'v') end
if ARGV[1] ~= '*' then
  if not cur then return {'corrupt', 'key holds a ' .. t .. ' that is not a blob'} end
  if cur ~= ARGV[1] then return {'conflict'} end
end
local n = cur and #cur <= 37 and string.match(cur, '^([0-9]+)%-[0-9a-f]+$')
if n and #n <= 15 then
  local seq = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
  if tonumber(n) > seq then redis.call('SET', KEYS[3], n) end
end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then redis.call('SREM', KEYS[2], ARGV[2]) end
return {'ok'}
`)

// listScript returns the indexed names whose blob key exists.
//
//	KEYS[1] name index set
//	ARGV[1] blob key prefix ("{prefix}:b:")
//
// The blob keys are built inside the script rather than passed in KEYS:
// they share the index's hash tag, so they live in the same Cluster slot
// and the script stays single-slot.
var listScript = goredis.NewScript(`
local names = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, n in ipairs(names) do
  if redis.call('EXISTS', ARGV[1] .. n) == 1 then out[#out + 1] = n end
end
return out
`)

// releaseScript deletes a lease key if it still holds the caller's token.
//
//	KEYS[1] lease key
//	ARGV[1] owner token
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// extendScript resets a lease's TTL if it still holds the caller's token.
//
//	KEYS[1] lease key
//	ARGV[1] owner token
//	ARGV[2] TTL in milliseconds
var extendScript = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// restoreScript makes the previous generation current again, keeping the
// replaced one as the new previous generation unless ARGV[5] is "0".
//
//	KEYS[1] blob hash
//	KEYS[2] vault sequence key
//	ARGV[1] ifVersion: "*" any, else the exact version
//	ARGV[2] nonce
//	ARGV[3] largest acceptable length of the previous blob
//	ARGV[4] lowest counter the new version may have (as for putScript)
//	ARGV[5] "1": keep the replaced blob as the previous generation; "0":
//	        drop it (a Backend WithKeepPrevious(false) keeps no copy)
//
// In layout 2 no blob moves: s flips back to the previous slot, and pv
// becomes the replaced version. With "*" the current generation may be
// unreadable (that is why one restores): it is then dropped instead of
// kept, as it is whenever ARGV[5] is "0". A layout-1 hash is rewritten as layout 2 (the restored blob in
// slot 0). The restored blob gets a counter above both generations', so
// a client that saw either accepts it.
var restoreScript = newScript(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'none' then return {'notfound'} end
if t ~= 'hash' then return {'corrupt', 'key holds a ' .. t} end
local r = redis.call('HMGET', KEYS[1], 'layout', 'v', 's', 'pv')
local lay, cur, s, pv = r[1], r[2], r[3], r[4]
if cur and string.sub(cur, -(#ARGV[2] + 1)) == '-' .. ARGV[2] then
  return cur
end
if ARGV[1] ~= '*' then
  if not cur then return {'corrupt', 'hash lacks the version field'} end
  if cur ~= ARGV[1] then return {'conflict'} end
end
local cf, pf = 'd', 'pd'
if lay == '2' then
  if s == '0' then cf, pf = 'd0', 'd1' elseif s == '1' then cf, pf = 'd1', 'd0' else
    return {'corrupt', 'malformed slot field'}
  end
elseif lay then
  return {'corrupt', 'hash has a layout this version cannot write'}
end
if not pv or redis.call('HEXISTS', KEYS[1], pf) == 0 then return {'notfound'} end
if redis.call('HSTRLEN', KEYS[1], pf) > tonumber(ARGV[3]) then return {'corrupt', 'previous blob exceeds the size limit'} end
local c = redis.call('INCR', KEYS[2])
for _, x in ipairs({cur, pv}) do
  local n = x and #x <= 37 and string.match(x, '^([0-9]+)%-[0-9a-f]+$')
  if n and #n <= 15 and tonumber(n) + 1 > c then c = tonumber(n) + 1 end
end
local floor = tonumber(ARGV[4])
if c < floor then c = floor end
local v = string.format('%.0f', c) .. '-' .. ARGV[2]
local keep = ARGV[5] == '1' and cur and redis.call('HEXISTS', KEYS[1], cf) == 1
if lay == '2' then
  if keep then
    redis.call('HSET', KEYS[1], 'v', v, 's', string.sub(pf, 2), 'pv', cur)
  else
    redis.call('HDEL', KEYS[1], cf, 'pv')
    redis.call('HSET', KEYS[1], 'v', v, 's', string.sub(pf, 2))
  end
  return v
end
local pd, d = redis.call('HGET', KEYS[1], 'pd'), redis.call('HGET', KEYS[1], 'd')
redis.call('DEL', KEYS[1])
if keep then
  redis.call('HSET', KEYS[1], 'layout', '2', 'v', v, 's', '0', 'd0', pd, 'd1', d, 'pv', cur)
else
  redis.call('HSET', KEYS[1], 'layout', '2', 'v', v, 's', '0', 'd0', pd)
end
return v
`)

// acquireScript takes a lease if it is free, or if the caller already
// holds it (a retry whose first reply was lost), in one round trip.
//
//	KEYS[1] lease key
//	ARGV[1] owner token
//	ARGV[2] TTL in milliseconds
//
// It returns 0 when the caller holds the lease, otherwise the holder's
// remaining TTL in milliseconds (so that a waiter need not poll sooner), or
// -1 when the key has no expiry: not a lease this package set.
var acquireScript = newScript(`
local cur = redis.call('GET', KEYS[1])
if not cur or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then return -1 end
if ttl == 0 then return 1 end
return ttl
`)
