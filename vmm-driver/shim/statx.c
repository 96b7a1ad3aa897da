/*
 * Preloaded into every process of a sprite (LD_PRELOAD=/.corral/statx-shim.so).
 *
 * The runsc in Debian 12 (20221219) answers statx(2) with EINVAL when the flags hold
 * AT_NO_AUTOMOUNT, and coreutils (ls, stat, cp, du ...) passes that flag on every call,
 * so `ls` fails inside a sprite. gVisor has no automounts, so the flag means nothing
 * there: this wrapper drops it and makes the system call itself.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct statx;

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf)
{
    return (int)syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}
