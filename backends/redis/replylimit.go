package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// ErrBadReply means that the server (or something between it and the
// client, on a plain redis:// link) sent a reply that breaks the RESP
// protocol or the size limits of this package: a forged length, more
// nesting than any command of this package produces, an oversized line or
// reply, bytes that are not RESP. The connection is closed before go-redis
// reads any of it, so such a reply costs the client at most the bytes it
// buffered. The Backend's errors that match it match ErrCorrupt too.
var ErrBadReply = errors.New("redis: reply breaks the protocol or its size limit")

// DialFunc is the type of go-redis's Options.Dialer and
// FailoverOptions.Dialer.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// LimitReplies wraps dial so that every connection it makes checks the
// replies it reads as they arrive, before go-redis parses them: a reply
// over MaxReplyBytes (counting what go-redis allocates for it: the bytes of
// its strings and 16 bytes per element of its arrays and maps), a bulk
// string over the blob limit plus one KiB, nesting deeper than
// maxReplyDepth, a header line over maxReplyLine, or bytes that are not
// RESP2/RESP3 end the connection with an error matching ErrBadReply. A
// client whose connections all come from the wrapped dialer can neither
// panic on a forged length nor allocate more than a small multiple of
// MaxReplyBytes for one reply.
//
// NewFromURL does this for its own client. Use LimitReplies for a client
// given to New, for example
//
//	opt := &goredis.FailoverOptions{MasterName: "sv", SentinelAddrs: addrs}
//	opt.Dialer = redis.LimitReplies(nil) // nil: go-redis's default TCP dialer, without TLS
//
// A nil dial is a net.Dialer with go-redis's default 5 s connect timeout
// (no TLS): for TLS, wrap a dialer that does the handshake, such as
// (*goredis.Options).NewDialer().
func LimitReplies(dial DialFunc) DialFunc {
	if dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		dial = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &limitedConn{Conn: c}, nil
	}
}

// limitedConn scans the RESP stream read from Conn. It keeps no reply
// bytes: only the header line being read (at most maxReplyLine bytes), the
// count of body bytes still to come, and the open aggregates.
type limitedConn struct {
	net.Conn
	err error

	line  []byte  // header line read so far
	body  int64   // bytes of the current bulk string still to come, CRLF included
	open  []int64 // elements still to come in each open aggregate
	spent int64   // budget spent on the current top-level reply
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if e := c.scan(p[:n]); e != nil {
			c.err = e
			c.Conn.Close()
			return 0, e
		}
	}
	return n, err
}

// SyscallConn gives go-redis's pool the raw socket for its health check
// (a non-blocking peek for a closed or desynchronised connection before
// reuse), as it has without the wrapper. Bytes the peek sees are not
// consumed; they are scanned when read.
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

func badReply(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadReply}, args...)...)
}

// scan advances the parser over p.
func (c *limitedConn) scan(p []byte) error {
	for len(p) > 0 {
		if c.body > 0 {
			k := int64(len(p))
			if k > c.body {
				k = c.body
			}
			// The last two bytes of a body are its CRLF.
			if c.body <= k+1 && c.body >= 2 && p[c.body-2] != '\r' ||
				c.body <= k && p[c.body-1] != '\n' {
				return badReply("bulk string not followed by CRLF")
			}
			c.body -= k
			p = p[k:]
			if c.body == 0 {
				c.done()
			}
			continue
		}
		i := 0
		for i < len(p) && p[i] != '\n' {
			i++
		}
		if len(c.line)+i > maxReplyLine {
			return badReply("header line longer than %d bytes", maxReplyLine)
		}
		if i == len(p) {
			c.line = append(c.line, p...)
			return nil
		}
		c.line = append(c.line, p[:i+1]...)
		p = p[i+1:]
		if err := c.header(c.line); err != nil {
			return err
		}
		c.line = c.line[:0]
	}
	return nil
}

// header handles one complete header line, CRLF included.
func (c *limitedConn) header(line []byte) error {
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return badReply("line not ended by CRLF")
	}
	line = line[:len(line)-2]
	if err := c.spend(int64(len(line)) + 2); err != nil {
		return err
	}
	switch line[0] {
	case '+', '-', ':', ',', '(', '#', '_':
		// Simple types: the line is the whole element.
		c.done()
		return nil
	case '$', '=', '!':
		n, ok := length(line[1:])
		if !ok {
			return badReply("bulk length is not a number")
		}
		if n == -1 && line[0] == '$' {
			c.done() // RESP2 null bulk string
			return nil
		}
		if n < 0 || n > maxReplyBulk {
			return badReply("bulk string of %d bytes (limit %d)", n, maxReplyBulk)
		}
		if err := c.spend(n); err != nil {
			return err
		}
		c.body = n + 2
		return nil
	case '*', '~', '>', '%':
		n, ok := length(line[1:])
		if !ok {
			return badReply("aggregate length is not a number")
		}
		if n == -1 && line[0] == '*' {
			c.done() // RESP2 null array
			return nil
		}
		if n < 0 || n > MaxReplyBytes/replyElemCost {
			return badReply("aggregate of %d elements", n)
		}
		if line[0] == '%' {
			n *= 2 // a map of n pairs holds 2n elements
		}
		if err := c.spend(n * replyElemCost); err != nil {
			return err
		}
		if n == 0 {
			c.done()
			return nil
		}
		if len(c.open) == maxReplyDepth {
			return badReply("reply nested deeper than %d", maxReplyDepth)
		}
		c.open = append(c.open, n)
		return nil
	}
	// '|' (attributes), '$?' streamed strings and anything else: no
	// command of this package gets them from Redis.
	return badReply("unexpected reply type %q", line[0])
}

// spend charges n bytes to the current top-level reply.
func (c *limitedConn) spend(n int64) error {
	c.spent += n
	if c.spent > MaxReplyBytes {
		return badReply("reply larger than %d bytes", MaxReplyBytes)
	}
	return nil
}

// done ends one element: of the innermost open aggregate, or the whole
// reply.
func (c *limitedConn) done() {
	for len(c.open) > 0 {
		top := len(c.open) - 1
		c.open[top]--
		if c.open[top] > 0 {
			return
		}
		c.open = c.open[:top]
	}
	c.spent = 0
}

// length parses a RESP length: an optional '-' and at most 18 digits.
func length(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
