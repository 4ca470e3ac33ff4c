package retired

import (
	"context"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"
)

// RedisClient adapts a go-redis client to Redis: every key of the
// selected database that matches Match (a SCAN glob; "" is every key),
// and every value of each key whatever its type.
type RedisClient struct {
	C     goredis.UniversalClient
	Match string
}

// Keys returns every key, by SCAN.
func (r RedisClient) Keys(ctx context.Context) ([]string, error) {
	var keys []string
	var cursor uint64
	for {
		match := r.Match
		if match == "" {
			match = "*"
		}
		ks, next, err := r.C.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
		if next == 0 {
			return keys, nil
		}
		cursor = next
	}
}

// Values returns every value stored under key: hash fields by name, a
// string as "", set members and list elements by index.
func (r RedisClient) Values(ctx context.Context, key string) (map[string][]byte, error) {
	t, err := r.C.Type(ctx, key).Result()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	switch t {
	case "none":
	case "string":
		v, err := r.C.Get(ctx, key).Bytes()
		if err != nil && err != goredis.Nil {
			return nil, err
		}
		out[""] = v
	case "hash":
		m, err := r.C.HGetAll(ctx, key).Result()
		if err != nil {
			return nil, err
		}
		for f, v := range m {
			out[f] = []byte(v)
		}
	case "set":
		ms, err := r.C.SMembers(ctx, key).Result()
		if err != nil {
			return nil, err
		}
		for i, m := range ms {
			out[strconv.Itoa(i)] = []byte(m)
		}
	case "list":
		ls, err := r.C.LRange(ctx, key, 0, -1).Result()
		if err != nil {
			return nil, err
		}
		for i, m := range ls {
			out[strconv.Itoa(i)] = []byte(m)
		}
	default:
		return nil, fmt.Errorf("retired: key %q holds a %s, which the scanner cannot read", key, t)
	}
	return out, nil
}
