// Package e2e holds moor's end-to-end tests: they build the moor binary and
// drive it against real components started by the test itself — a bare Git
// repository pushed to with the git CLI, Debian's docker-registry on
// loopback holding images built from busybox-static, and a private
// containerd + runc. They need root and skip with a message otherwise.
package e2e
