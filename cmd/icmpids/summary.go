package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/output/report"
)

// sensorTap lets a command watch the pipeline that newSensor wires: sink
// gets every attack event before the outputs do, observer every packet the
// rules see (it runs as the engine's last rule and must never report).
type sensorTap struct {
	sink     detector.Sink
	observer detector.Rule
}

// progress is the replay's progress line on stderr: files, bytes, packets,
// packets/s and the time left, drawn by schollz/progressbar. It is only
// made when stderr is a terminal or --progress asks for it.
type progress struct {
	bar    *progressbar.ProgressBar
	set    *capture.Set
	total  int64
	last   time.Time
	frames uint64 // at last
	pps    float64
}

// progressEvery is how many frames pass between two progress updates; an
// update redraws at most every progressRedraw.
const (
	progressEvery  = 2048
	progressRedraw = 200 * time.Millisecond
)

func newProgress(w io.Writer, set *capture.Set) *progress {
	p := &progress{set: set, last: time.Now()}
	pr := set.Progress()
	p.total = pr.Total
	max := pr.Total
	if max <= 0 {
		max = -1 // standard input: size unknown, a spinner
	}
	p.bar = progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(p.describe(pr)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(24),
		// update() throttles; the bar itself must draw every call, or the
		// description and the count drawn could lag one update behind.
		progressbar.OptionThrottle(0),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionSpinnerType(14),
	)
	return p
}

func (p *progress) describe(pr capture.Progress) string {
	return fmt.Sprintf("files %d/%d done · %s packets · %s pkt/s", pr.FilesDone, pr.Files,
		report.Count(pr.Frames), report.Count(uint64(p.pps)))
}

// update redraws the line if progressRedraw has passed.
func (p *progress) update() {
	if p == nil {
		return
	}
	now := time.Now()
	dt := now.Sub(p.last)
	if dt < progressRedraw {
		return
	}
	pr := p.set.Progress()
	p.pps = float64(pr.Frames-p.frames) / dt.Seconds()
	p.last, p.frames = now, pr.Frames
	if p.total > 0 {
		// Stop one short of the end: the bar finishes in finish().
		p.bar.Set64(min(pr.Bytes, p.total-1))
	} else {
		p.bar.Set64(pr.Bytes)
	}
	p.bar.Describe(p.describe(pr))
}

// clear wipes the line so that a log line or an alert can be written; the
// next update draws it again.
func (p *progress) clear() {
	if p != nil {
		p.bar.Clear()
	}
}

// finish removes the line for good.
func (p *progress) finish() {
	if p != nil {
		p.bar.Finish()
		p.bar.Clear()
		p.bar.Exit()
	}
}

// clearingWriter clears the progress line before each write, so that log
// lines on the same terminal are not drawn over it.
type clearingWriter struct {
	w io.Writer
	p **progress
}

func (c clearingWriter) Write(b []byte) (int, error) {
	(*c.p).clear()
	return c.w.Write(b)
}

// summaryFiles lists the set's files as the summary shows them.
func summaryFiles(set *capture.Set) []report.File {
	var out []report.File
	for _, f := range set.Files() {
		rf := report.File{Path: f.Path, Packets: f.Frames, Size: f.Size, First: f.First.UTC(), Last: f.Last.UTC()}
		switch f.State {
		case capture.FileDamaged:
			rf.Status = "damaged"
		case capture.FileSkipped:
			rf.Status = "skipped"
		default:
			rf.Status = "ok"
		}
		if f.First.IsZero() {
			rf.First, rf.Last = time.Time{}, time.Time{}
		}
		if f.Err != nil {
			rf.Error = f.Err.Error()
		}
		out = append(out, rf)
	}
	return out
}
