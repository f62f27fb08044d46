package batch

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// TestNextDST pins the behaviour across America/New_York's 2012 DST changes:
// the skipped hour (2012-03-11 02:00-03:00) is skipped, the repeated hour
// (2012-11-04 01:00-02:00) runs once for fixed-hour schedules and twice for
// "every hour" schedules.
func TestNextDST(t *testing.T) {
	for _, tc := range []struct {
		name, schedule, from string
		zone                 string // default America/New_York
		want                 []string
		robfig               []string // raw robfig/cron, where it differs
	}{
		{
			name: "spring forward: 02:30 daily does not run on 2012-03-11", schedule: "30 2 * * *",
			from: "2012-03-10T02:30:00-05:00",
			want: []string{"2012-03-12T02:30:00-04:00", "2012-03-13T02:30:00-04:00"},
		},
		{
			name: "spring forward: hourly jumps from 01:00 EST to 03:00 EDT", schedule: "@hourly",
			from: "2012-03-11T00:30:00-05:00",
			want: []string{"2012-03-11T01:00:00-05:00", "2012-03-11T03:00:00-04:00"},
		},
		{
			name: "fall back: 01:30 daily runs once", schedule: "30 1 * * *",
			from:   "2012-11-04T00:00:00-04:00",
			want:   []string{"2012-11-04T01:30:00-04:00", "2012-11-05T01:30:00-05:00"},
			robfig: []string{"2012-11-04T01:30:00-04:00", "2012-11-04T01:30:00-05:00"},
		},
		{
			name: "fall back: every 30 minutes in hour 1 runs once per wall-clock time", schedule: "*/30 1 * * *",
			from: "2012-11-04T00:59:00-04:00",
			want: []string{"2012-11-04T01:00:00-04:00", "2012-11-04T01:30:00-04:00", "2012-11-05T01:00:00-05:00"},
		},
		{
			name: "fall back: hourly runs in both 01:00 hours", schedule: "0 * * * *",
			from: "2012-11-04T00:30:00-04:00",
			want: []string{"2012-11-04T01:00:00-04:00", "2012-11-04T01:00:00-05:00", "2012-11-04T02:00:00-05:00"},
		},
		{
			name: "a midnight that does not exist is skipped", schedule: "@daily", zone: "America/Sao_Paulo",
			from: "2018-11-03T12:00:00-03:00",
			want: []string{"2018-11-05T00:00:00-02:00", "2018-11-06T00:00:00-02:00"},
		},
		{
			name: "@daily around both changes", schedule: "@daily",
			from: "2012-11-03T12:00:00-04:00",
			want: []string{"2012-11-04T00:00:00-04:00", "2012-11-05T00:00:00-05:00"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchedule(tc.schedule, ptr(cmpOr(tc.zone, "America/New_York")))
			if err != nil {
				t.Fatal(err)
			}
			assertSeq(t, s, tc.from, tc.want)
			if tc.robfig != nil {
				raw, err := cron.ParseStandard("CRON_TZ=" + cmpOr(tc.zone, "America/New_York") + " " + tc.schedule)
				if err != nil {
					t.Fatal(err)
				}
				assertSeq(t, raw, tc.from, tc.robfig)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func assertSeq(t *testing.T, s cron.Schedule, from string, want []string) {
	t.Helper()
	at := mustTime(t, from)
	for i, w := range want {
		at = s.Next(at)
		if !at.Equal(mustTime(t, w)) {
			t.Fatalf("slot %d: got %s, want %s", i, at.Format(time.RFC3339), w)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, tc := range []struct {
		schedule string
		tz       *string
		path     string
		msg      string
	}{
		{"CRON_TZ=Europe/Paris 0 * * * *", nil, "spec.schedule", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"},
		{"TZ=UTC @daily", nil, "spec.schedule", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"},
		{"0 * * * *", ptr("Mars/Olympus"), "spec.timeZone", "unknown time zone Mars/Olympus"},
		{"0 * * * *", ptr("Local"), "spec.timeZone", "explicit time zone"},
		{"0 * * * *", ptr(""), "spec.timeZone", "explicit time zone"},
		{"0 * * *", nil, "spec.schedule", "expected exactly 5 fields"},
		{"61 * * * *", nil, "spec.schedule", "end of range (61) above maximum (59)"},
		{"@fortnightly", nil, "spec.schedule", "unrecognized descriptor"},
		{"0 0 31 2 *", nil, "spec.schedule", "schedule never fires"},
		{"", nil, "spec.schedule", "empty spec string"},
	} {
		_, err := ParseSchedule(tc.schedule, tc.tz)
		var fe *field.Error
		if !errors.As(err, &fe) {
			t.Errorf("%q: got %v, want a *field.Error", tc.schedule, err)
			continue
		}
		if fe.Field != tc.path || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: got %q at %s, want %q at %s", tc.schedule, err, fe.Field, tc.msg, tc.path)
		}
	}
	for _, ok := range []string{"*/5 * * * *", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@every 90m", "0 9 * * MON-FRI"} {
		if _, err := ParseSchedule(ok, ptr("Europe/Berlin")); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestUnmetSlots(t *testing.T) {
	for _, tc := range []struct {
		name, schedule, after, now string
		wantRecent                 string // "" for none
		wantMissed                 int
	}{
		{"none yet", "0 * * * *", "2024-01-01T10:00:00Z", "2024-01-01T10:59:59Z", "", 0},
		{"exactly on the slot", "0 * * * *", "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z", "2024-01-01T11:00:00Z", 1},
		{"three missed", "0 * * * *", "2024-01-01T10:00:00Z", "2024-01-01T13:30:00Z", "2024-01-01T13:00:00Z", 3},
		{"exactly 100", "* * * * *", "2024-01-01T00:00:00Z", "2024-01-01T01:40:00Z", "2024-01-01T01:40:00Z", 100},
		{"101 caps", "* * * * *", "2024-01-01T00:00:00Z", "2024-01-01T01:41:00Z", "2024-01-01T01:41:00Z", 101},
		{"years of minutes", "* * * * *", "2014-01-01T00:00:00Z", "2024-06-01T12:34:56Z", "2024-06-01T12:34:00Z", 101},
		{"weekdays across a weekend", "0 9 * * 1-5", "2024-01-01T00:00:00Z", "2024-07-07T08:00:00Z", "2024-07-05T09:00:00Z", 101},
		{"yearly over decades", "@yearly", "1990-06-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-01-01T00:00:00Z", 34},
		{"clock went backwards", "0 * * * *", "2024-01-01T10:00:00Z", "2024-01-01T09:00:00Z", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchedule(tc.schedule, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := UnmetSlots(s, mustTime(t, tc.after), mustTime(t, tc.now))
			var recent string
			if !got.MostRecent.IsZero() {
				recent = got.MostRecent.UTC().Format(time.RFC3339)
			}
			if recent != tc.wantRecent || got.Missed != tc.wantMissed {
				t.Fatalf("got %s/%d, want %s/%d", recent, got.Missed, tc.wantRecent, tc.wantMissed)
			}
			if got.TooMany() != (tc.wantMissed > MaxMissedSlots) {
				t.Fatal("TooMany disagrees with Missed")
			}
		})
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "@daily", "0 0 31 2 *", "TZ=UTC 0 * * * *", "@every 1s", "1-59/7 2,4 */3 jan-mar mon"} {
		f.Add(s, "America/New_York")
	}
	f.Fuzz(func(t *testing.T, schedule, tz string) {
		s, err := ParseSchedule(schedule, &tz)
		if err != nil {
			var fe *field.Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *field.Error", err)
			}
			return
		}
		from := validationEpoch
		for range 3 {
			n := s.Next(from)
			if n.IsZero() {
				return
			}
			if !n.After(from) {
				t.Fatalf("Next(%s) = %s does not advance", from, n)
			}
			from = n
		}
	})
}
