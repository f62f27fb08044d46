package batch

import (
	"strings"
	"time"
	_ "time/tzdata" // time zones must not depend on the host's zoneinfo

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MaxMissedSlots is how many missed start times the scheduler tolerates
// before it warns (TooManyMissedTimes). It still runs the most recent one.
const MaxMissedSlots = 100

var (
	schedulePath = field.NewPath("spec", "schedule")
	timeZonePath = field.NewPath("spec", "timeZone")
	// validationEpoch is the fixed reference from which ParseSchedule checks
	// that a schedule fires at all, so validation never reads the clock.
	validationEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// ParseSchedule parses a CronJob's spec.schedule in the zone named by
// spec.timeZone (UTC when nil). The error, if any, is a *field.Error whose
// path is spec.schedule or spec.timeZone, with Kubernetes' wording.
//
// The returned schedule's Next skips a repeated wall-clock time at the end of
// daylight-saving time when the hour field is fixed (see the package doc).
func ParseSchedule(schedule string, timeZone *string) (cron.Schedule, error) {
	loc, ferr := loadZone(timeZone)
	if ferr != nil {
		return nil, ferr
	}
	if strings.Contains(schedule, "TZ") {
		return nil, field.Invalid(schedulePath, schedule,
			"cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
	}
	parsed, err := cron.ParseStandard(schedule)
	if err != nil {
		return nil, field.Invalid(schedulePath, schedule, err.Error())
	}
	s := &zonedSchedule{inner: parsed}
	if spec, ok := parsed.(*cron.SpecSchedule); ok {
		spec.Location = loc
		s.spec = spec
	}
	// A schedule like "0 0 31 2 *" parses but never fires; robfig/cron
	// returns the zero time for it.
	if s.Next(validationEpoch).IsZero() {
		return nil, field.Invalid(schedulePath, schedule, "schedule never fires")
	}
	return s, nil
}

func loadZone(timeZone *string) (*time.Location, *field.Error) {
	if timeZone == nil {
		return time.UTC, nil
	}
	name := *timeZone
	if name == "" || strings.EqualFold(name, "Local") {
		return nil, field.Invalid(timeZonePath, name,
			"timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, field.Invalid(timeZonePath, name, err.Error())
	}
	return loc, nil
}

// zonedSchedule wraps robfig/cron's schedule to run a fixed-hour slot once
// when daylight-saving time ends and a wall-clock hour repeats.
type zonedSchedule struct {
	inner cron.Schedule
	spec  *cron.SpecSchedule // nil for @every
}

var _ cron.Schedule = (*zonedSchedule)(nil)

const allHours = 1<<24 - 1

// Next returns the first slot strictly after t, or the zero time if the
// schedule does not fire within five years (robfig/cron's horizon).
func (s *zonedSchedule) Next(t time.Time) time.Time {
	n := s.inner.Next(t)
	for i := 0; i < 4 && !n.IsZero() && s.repeatsWallClock(n); i++ {
		n = s.inner.Next(n)
	}
	return n
}

// repeatsWallClock reports whether slot n shows the same wall-clock time as
// an earlier instant at most three hours before it (the second pass through
// a repeated hour), for a schedule whose hour field is not "*".
func (s *zonedSchedule) repeatsWallClock(n time.Time) bool {
	if s.spec == nil || s.spec.Hour&allHours == allHours {
		return false
	}
	local := n.In(s.spec.Location)
	_, offNow := local.Zone()
	_, offBefore := local.Add(-3 * time.Hour).Zone()
	if offBefore <= offNow {
		return false
	}
	earlier := local.Add(-time.Duration(offBefore-offNow) * time.Second)
	y1, m1, d1 := local.Date()
	y2, m2, d2 := earlier.Date()
	h1, mi1, s1 := local.Clock()
	h2, mi2, s2 := earlier.Clock()
	return y1 == y2 && m1 == m2 && d1 == d2 && h1 == h2 && mi1 == mi2 && s1 == s2
}

// Slots is the outcome of looking for unmet start times in (After, Now].
type Slots struct {
	// MostRecent is the latest slot in the window, zero if none.
	MostRecent time.Time
	// Missed counts slots in the window, exactly up to MaxMissedSlots and
	// then capped at MaxMissedSlots+1.
	Missed int
}

// TooMany reports whether more than MaxMissedSlots slots were missed.
func (s Slots) TooMany() bool { return s.Missed > MaxMissedSlots }

// UnmetSlots finds the slots of sched in (after, now]. It walks at most
// MaxMissedSlots+1 slots forward from after and then jumps to the most
// recent slot by searching backwards from now, so its cost does not grow
// with the length of an outage.
func UnmetSlots(sched cron.Schedule, after, now time.Time) Slots {
	var out Slots
	for t := sched.Next(after); !t.IsZero() && !t.After(now); t = sched.Next(t) {
		out.Missed++
		out.MostRecent = t
		if out.Missed > MaxMissedSlots {
			out.MostRecent = lastSlotUpTo(sched, t, now)
			break
		}
	}
	return out
}

// lastSlotUpTo returns the latest slot <= now, given that known is a slot
// <= now. It doubles a look-back window from now until the window holds a
// slot, then walks forward within it.
func lastSlotUpTo(sched cron.Schedule, known, now time.Time) time.Time {
	for w := time.Minute; ; w *= 2 {
		start := now.Add(-w)
		if !start.After(known) {
			return walkUpTo(sched, known, now)
		}
		if t := sched.Next(start); !t.IsZero() && !t.After(now) {
			return walkUpTo(sched, t, now)
		}
	}
}

func walkUpTo(sched cron.Schedule, t, now time.Time) time.Time {
	for {
		n := sched.Next(t)
		if n.IsZero() || n.After(now) {
			return t
		}
		t = n
	}
}
