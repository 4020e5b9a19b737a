package nkms

import "syscall"

// heavyNice is the nice value of the Heavy pool's threads: the lowest
// priority a thread can give itself without privileges.
const heavyNice = 19

// lowerThreadPriority gives the calling OS thread (locked to its goroutine)
// the lowest scheduling priority. On Linux, nice is per thread. A failure
// leaves the thread as it was: the pool still bounds the operations.
func lowerThreadPriority() {
	syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), heavyNice) //nolint:errcheck // best effort
}
