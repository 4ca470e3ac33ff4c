package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress reports how far a long run is, on stderr: a bar redrawn in
// place when stderr is a terminal, else a line every few seconds once the
// run has lasted long enough to be worth reporting. Short runs print
// nothing. It never prints a session's content, only counts.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	total int
	start time.Time
	last  time.Time
	drawn bool
	now   func() time.Time
}

func (a *app) newProgress(label string, total int) *progress {
	return &progress{w: a.stderr, tty: a.stderrTTY, label: label, total: total, start: time.Now(), now: time.Now}
}

// update reports that done of total items are finished.
func (p *progress) update(done int) {
	if p == nil || p.total < progressMin {
		return
	}
	now := p.now()
	if p.tty {
		if now.Sub(p.last) < progressRedraw && done < p.total {
			return
		}
		p.last = now
		p.drawn = true
		const width = 30
		fill := width * done / p.total
		fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, p.total)
		return
	}
	if now.Sub(p.start) < progressAfter || now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	p.drawn = true
	fmt.Fprintf(p.w, "%s: %d/%d\n", p.label, done, p.total)
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p != nil && p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
