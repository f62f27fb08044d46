package cli

import (
	"testing"
	"time"
)

func TestHumanDuration(t *testing.T) {
	const day = 24 * time.Hour
	cases := []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "<invalid>"},
		{-time.Second, "0s"},
		{0, "0s"},
		{45 * time.Second, "45s"},
		{119 * time.Second, "119s"},
		{2 * time.Minute, "2m"},
		{5*time.Minute + 10*time.Second, "5m10s"},
		{10 * time.Minute, "10m"},
		{179 * time.Minute, "179m"},
		{3 * time.Hour, "3h"},
		{3*time.Hour + 20*time.Minute, "3h20m"},
		{8 * time.Hour, "8h"},
		{47 * time.Hour, "47h"},
		{2 * day, "2d"},
		{2*day + 5*time.Hour, "2d5h"},
		{8 * day, "8d"},
		{400 * day, "400d"},
		{730 * day, "2y"},
		{740 * day, "2y10d"},
		{9 * 365 * day, "9y"},
	}
	for _, tc := range cases {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("héllo wörld", 8); got != "héllo..." {
		t.Errorf("got %q", got)
	}
	if got := truncate("short", 8); got != "short" {
		t.Errorf("got %q", got)
	}
}

func TestShortDuration(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{-time.Millisecond, "<invalid>"},
		{0, "0ms"},
		{158 * time.Millisecond, "158ms"},
		{999 * time.Millisecond, "999ms"},
		{time.Second, "1.0s"},
		{1249 * time.Millisecond, "1.2s"},
		{9940 * time.Millisecond, "9.9s"},
		{42 * time.Second, "42s"},
		{5*time.Minute + 10*time.Second, "5m10s"},
	}
	for _, c := range cases {
		if got := shortDuration(c.d); got != c.want {
			t.Errorf("shortDuration(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}
