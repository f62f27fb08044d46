package manifest

import (
	"os"
	"runtime"
	"time"
)

func watchdog(data []byte) func() bool {
	t := time.AfterFunc(3*time.Second, func() {
		os.WriteFile("/tmp/slow.in", data, 0o644)
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		os.WriteFile("/tmp/slow.stack", buf[:n], 0o644)
	})
	return t.Stop
}
