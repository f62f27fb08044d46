package cli

import (
	"fmt"
	"time"
)

// humanDuration formats d the way kubectl's AGE column does: two
// significant units while they matter ("5m10s", "3h20m", "2d5h", "2y10d"),
// one unit beyond ("45m", "12h", "30d"). Clock skew up to a second reads
// as "0s"; more is "<invalid>".
func humanDuration(d time.Duration) string {
	seconds := int64(d / time.Second)
	switch {
	case seconds < -1:
		return "<invalid>"
	case seconds < 0:
		return "0s"
	case seconds < 60*2:
		return fmt.Sprintf("%ds", seconds)
	}
	minutes := int64(d / time.Minute)
	switch {
	case minutes < 10:
		return twoUnits(minutes, "m", seconds%60, "s")
	case minutes < 60*3:
		return fmt.Sprintf("%dm", minutes)
	}
	hours := int64(d / time.Hour)
	days := hours / 24
	const year = 365
	switch {
	case hours < 8:
		return twoUnits(hours, "h", minutes%60, "m")
	case hours < 48:
		return fmt.Sprintf("%dh", hours)
	case hours < 24*8:
		return twoUnits(days, "d", hours%24, "h")
	case days < year*2:
		return fmt.Sprintf("%dd", days)
	case days < year*8:
		return twoUnits(days/year, "y", days%year, "d")
	}
	return fmt.Sprintf("%dy", days/year)
}

// twoUnits prints "<a><ua><b><ub>", dropping a zero second unit.
func twoUnits(a int64, ua string, b int64, ub string) string {
	if b == 0 {
		return fmt.Sprintf("%d%s", a, ua)
	}
	return fmt.Sprintf("%d%s%d%s", a, ua, b, ub)
}

// age is humanDuration(now - t), or "<unknown>" for a zero time.
func age(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return humanDuration(now.Sub(t))
}
