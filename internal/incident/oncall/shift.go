package oncall

import "time"

// Shift names as stored in rotations.shift. Shifts are defined on the
// hospital's local wall clock: DAY [08:00,16:00), EVENING [16:00,24:00) and
// NIGHT [00:00,08:00).
const (
	// ShiftDay is the day shift, 08:00 to 16:00 local time.
	ShiftDay = "DAY"
	// ShiftEvening is the evening shift, 16:00 to midnight local time.
	ShiftEvening = "EVENING"
	// ShiftNight is the night shift, midnight to 08:00 local time.
	ShiftNight = "NIGHT"
)

// ShiftAt returns the shift covering t in the time zone loc and the ISO
// weekday (1 Monday .. 7 Sunday) of t's local date. Because the shift is read
// from the local wall clock, a night shift that spans a daylight-saving change
// simply lasts seven or nine real hours. A nil loc means UTC.
func ShiftAt(t time.Time, loc *time.Location) (shift string, weekday int) {
	if loc == nil {
		loc = time.UTC
	}
	local := t.In(loc)
	weekday = int(local.Weekday())
	if weekday == 0 {
		weekday = 7
	}
	switch h := local.Hour(); {
	case h < 8:
		return ShiftNight, weekday
	case h < 16:
		return ShiftDay, weekday
	default:
		return ShiftEvening, weekday
	}
}
